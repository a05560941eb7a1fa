// External keys: a `PrivateKey` whose private half lives elsewhere (a PKCS#11 token, a TPM 2.0)
// and signs through a callback, so that the TLS handshake, CSRs, certificates and CRLs sign
// with it exactly as with a file key.
#ifndef HALLMARK_CORE_EXTERNAL_KEY_H_
#define HALLMARK_CORE_EXTERNAL_KEY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/encoding.h"
#include "core/key.h"
#include "core/status.h"

namespace hallmark {

// ExternalSigner signs message digests with a key that never leaves its hardware.
// Implementations must be thread-safe: OpenSSL may call `SignDigest` from any thread that uses
// the key.
class ExternalSigner {
 public:
  virtual ~ExternalSigner() = default;
  // SignDigest returns the DER ECDSA-Sig-Value over `digest` (already hashed with the key's
  // digest: SHA-256 for P-256, SHA-384 for P-384). Any error fails the signing operation.
  virtual Result<Bytes> SignDigest(std::span<const uint8_t> digest) = 0;
};

// WrapExternalKey returns a PrivateKey for the EC public key `public_key` that signs by calling
// `signer`. The key works wherever a PrivateKey does (TLS client and server, CSR, certificate
// and CRL signing, `Sign`), but it cannot be exported: `ToPem` fails. `signer` lives as long as
// any copy of the returned key. kInvalidArgument if `public_key` is not an EC key (external
// Ed25519 keys are not supported).
Result<PrivateKey> WrapExternalKey(const PublicKey& public_key,
                                   std::shared_ptr<ExternalSigner> signer);

// IsExternalKey reports whether `key` came from WrapExternalKey.
bool IsExternalKey(const PrivateKey& key);

// EcPublicKeyOf returns the public half of the EC key `key` (from any provider, such as a
// TPM's) as an ordinary public key. kInternal if `key` cannot report its curve and point.
Result<PublicKey> EcPublicKeyOf(EVP_PKEY* key);

// EcPublicKeyFromPoint builds an EC public key from what hardware reports: the curve's OpenSSL
// short name ("prime256v1", "secp384r1"; "P-256" and "P-384" are accepted too) and the encoded
// point. kInvalidArgument if the curve is unknown or the point is not on it.
Result<PublicKey> EcPublicKeyFromPoint(std::string_view group, std::span<const uint8_t> point);

}  // namespace hallmark

#endif  // HALLMARK_CORE_EXTERNAL_KEY_H_
