// PublicKey and PrivateKey: ECDSA P-256 (the default), P-384 and Ed25519 keys over OpenSSL 3.
//
// A PrivateKey may be backed by a file, or by hardware through an OpenSSL provider or engine
// (PKCS#11, TPM 2.0); everything that signs takes a PrivateKey, so all back ends sign alike.
#ifndef HALLMARK_CORE_KEY_H_
#define HALLMARK_CORE_KEY_H_

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/ossl.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark {

// KeyType names the key algorithms hallmark generates.
enum class KeyType { kP256, kP384, kEd25519 };

// ParseKeyType accepts "p256" (alias "ecdsa-p256"), "p384" and "ed25519".
Result<KeyType> ParseKeyType(std::string_view name);
std::string_view KeyTypeName(KeyType type);

// KeyAlgorithm is what a key (possibly made elsewhere, e.g. in a CSR) turned out to be.
struct KeyAlgorithm {
  enum class Family { kEc, kEd25519, kEd448, kRsa, kOther };
  Family family = Family::kOther;
  int bits = 0;       // security-relevant size: curve bits or RSA modulus bits
  std::string curve;  // EC only: "P-256", "P-384", "P-521", or OpenSSL's name otherwise
  // Describe returns "EC P-256", "Ed25519", "RSA-2048", ...
  std::string Describe() const;
};

// PublicKey is an immutable public key. Copyable (shares the underlying EVP_PKEY); thread-safe.
class PublicKey {
 public:
  // FromDer parses a DER SubjectPublicKeyInfo. kInvalidArgument if it does not parse.
  static Result<PublicKey> FromDer(std::span<const uint8_t> spki);
  // FromPem parses a "PUBLIC KEY" PEM block. kInvalidArgument if it does not parse.
  static Result<PublicKey> FromPem(std::string_view pem);
  // FromNative takes another reference on `key`. Encodes the key through OpenSSL's encoders,
  // which is slow (tens of microseconds); prefer FromX509Pubkey for parsed objects.
  static Result<PublicKey> FromNative(EVP_PKEY* key);
  // FromX509Pubkey wraps the already decoded key of a parsed certificate or CSR. `spki` must
  // stay valid as long as `owner` lives (an aliasing pointer into the parent object).
  static Result<PublicKey> FromX509Pubkey(std::shared_ptr<X509_PUBKEY> spki);

  // SpkiDer returns the DER SubjectPublicKeyInfo.
  const Bytes& SpkiDer() const { return spki_; }
  std::string ToPem() const;
  // DeviceId returns the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo: hallmark's
  // self-certifying device identity.
  std::string DeviceId() const;
  KeyAlgorithm Algorithm() const;

  // Verify checks `signature` over `data` (ECDSA with SHA-256/384 by curve, or Ed25519).
  // kUnauthenticated if the signature does not verify.
  Status Verify(std::span<const uint8_t> data, std::span<const uint8_t> signature) const;

  bool operator==(const PublicKey& other) const { return spki_ == other.spki_; }

  EVP_PKEY* native() const { return key_.get(); }
  // native_spki is the key as an X509_PUBKEY, for copying into certificates without
  // re-encoding.
  const X509_PUBKEY* native_spki() const { return x509_pubkey_.get(); }

 private:
  PublicKey(std::shared_ptr<EVP_PKEY> key, std::shared_ptr<X509_PUBKEY> x509_pubkey, Bytes spki)
      : key_(std::move(key)), x509_pubkey_(std::move(x509_pubkey)), spki_(std::move(spki)) {}
  std::shared_ptr<EVP_PKEY> key_;
  std::shared_ptr<X509_PUBKEY> x509_pubkey_;
  Bytes spki_;
};

// DeviceIdFromSpki returns the device ID of a DER SubjectPublicKeyInfo without parsing it.
std::string DeviceIdFromSpki(std::span<const uint8_t> spki);

// PrivateKey is a private key. Movable, not copyable; `Share()` takes another reference.
// Signing is thread-safe for file keys; hardware back ends document their own limits.
class PrivateKey {
 public:
  // Generate makes a new key of `type` with OpenSSL's CSPRNG.
  static Result<PrivateKey> Generate(KeyType type);
  // FromPem parses a PKCS#8 or traditional PEM private key. With `passphrase`, decrypts an
  // "ENCRYPTED PRIVATE KEY". kFailedPrecondition if the key is encrypted and no passphrase was
  // given; kPermissionDenied if the passphrase is wrong; kInvalidArgument if it does not parse.
  static Result<PrivateKey> FromPem(std::string_view pem, const SecretBytes* passphrase = nullptr);
  // FromDer parses an unencrypted PKCS#8 DER private key.
  static Result<PrivateKey> FromDer(std::span<const uint8_t> der);
  // FromNative takes ownership of `key`, for keys loaded by hardware back ends.
  static Result<PrivateKey> FromNative(OsslPtr<EVP_PKEY> key);

  PrivateKey(PrivateKey&&) = default;
  PrivateKey& operator=(PrivateKey&&) = default;

  // ToPem returns the unencrypted PKCS#8 PEM. The result is secret.
  Result<SecretBytes> ToPem(SecretAccess) const;
  // ToEncryptedPem returns PKCS#8 PEM encrypted with AES-256-CBC under a PBKDF2 key derived
  // from `passphrase`.
  Result<std::string> ToEncryptedPem(const SecretBytes& passphrase) const;

  const PublicKey& Public() const { return public_; }

  // Sign returns a signature over `data`: ECDSA (DER, SHA-256 for P-256, SHA-384 for P-384) or
  // Ed25519.
  Result<Bytes> Sign(std::span<const uint8_t> data) const;

  // SigningDigest returns the digest to pass to OpenSSL's X509_sign family for this key, or
  // nullptr for Ed25519, which signs without a separate digest.
  const EVP_MD* SigningDigest() const;

  // NewSigningContext returns a context initialised for signing with this key and
  // SigningDigest(), for OpenSSL's *_sign_ctx functions. It copies a context prepared once per
  // key, which skips OpenSSL 3's per-call algorithm lookups (falling back to a fresh
  // initialisation for keys whose provider cannot copy contexts). Thread-safe.
  Result<OsslPtr<EVP_MD_CTX>> NewSigningContext() const;

  EVP_PKEY* native() const { return key_.get(); }

 private:
  struct SigningTemplate;
  PrivateKey(std::shared_ptr<EVP_PKEY> key, PublicKey pub);
  Result<OsslPtr<EVP_MD_CTX>> FreshSigningContext() const;

  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_;
  std::shared_ptr<SigningTemplate> signing_template_;
};

// Sha256 returns the SHA-256 digest of `data`.
Bytes Sha256(std::span<const uint8_t> data);

}  // namespace hallmark

#endif  // HALLMARK_CORE_KEY_H_
