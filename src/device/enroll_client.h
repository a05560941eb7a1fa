// The device side of enrollment in the field (docs/enrollment.md): claiming through a batch
// secret, asking for operator approval, and EST (RFC 7030) operational certificates. It also
// defines the protocol's shared pieces (the batch secret's format, the key derived from it, the
// claim proof, the comparison code), which the server's `enroll` part uses to check them.
#ifndef HALLMARK_DEVICE_ENROLL_CLIENT_H_
#define HALLMARK_DEVICE_ENROLL_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.h"
#include "core/csr.h"
#include "core/encoding.h"
#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "device/tls_client.h"

namespace hallmark::device {

// Endpoints on the device listener.
inline constexpr std::string_view kClaimPath = "/v1/claim";
inline constexpr std::string_view kPendingPath = "/v1/claim/pending";
inline constexpr std::string_view kEstCaCertsPath = "/.well-known/est/cacerts";
inline constexpr std::string_view kEstSimpleEnrollPath = "/.well-known/est/simpleenroll";
inline constexpr std::string_view kEstSimpleReenrollPath = "/.well-known/est/simplereenroll";

// The TLS 1.3 exporter (RFC 8446 section 7.5) that binds a claim to its connection.
inline constexpr std::string_view kClaimExporterLabel = "EXPORTER-hallmark-batch-claim";
inline constexpr std::string_view kClaimExporterContext = "hallmark-batch-claim/1";
inline constexpr size_t kClaimExporterLength = 32;

// A batch secret is 32 random bytes, written as 43 characters of unpadded base64url.
inline constexpr size_t kBatchSecretLength = 32;

// GenerateBatchSecret returns a new secret from OpenSSL's CSPRNG.
SecretBytes GenerateBatchSecret();
// FormatBatchSecret returns the secret's text form (itself secret).
SecretBytes FormatBatchSecret(const SecretBytes& secret);
// ParseBatchSecret accepts the text form (surrounding whitespace ignored). kInvalidArgument if it
// is not 32 bytes of base64url.
Result<SecretBytes> ParseBatchSecret(std::string_view text);

// DeriveBatchKey derives the batch's Ed25519 proof key from the secret: HKDF-SHA256 (RFC 5869)
// with salt "hallmark-batch-key/1" and info = the batch ID gives the 32-byte Ed25519 seed. The
// server stores only the public half (the batch's verifier), from which the secret cannot be
// recovered; binding the batch ID means a secret reused for two batches gives two verifiers.
Result<PrivateKey> DeriveBatchKey(const SecretBytes& secret, std::string_view batch_id);

// ClaimProofMessage returns the bytes a claim proof signs:
//   "hallmark-batch-claim/1\n" "batch_id=<id>\n" "serial=<serial>\n"
//   "device_id=<SHA-256 of the TLS client key's SPKI, hex>\n" "exporter=<hex of the exporter>\n"
// so a proof is bound to the batch, the serial, the key and the very TLS connection.
Bytes ClaimProofMessage(std::string_view batch_id, std::string_view serial,
                        std::string_view device_id, std::span<const uint8_t> exporter);

// ComparisonCode returns the short code an operator compares before approving a device: the
// first 40 bits of the device ID in Crockford base32, as "XXXX-XXXX".
std::string ComparisonCode(const PublicKey& key);

// ParseCertsOnly decodes an EST response body: base64 (whitespace ignored) of a DER PKCS#7
// SignedData "certs-only" message (RFC 7030 section 4.1.3). kInvalidArgument otherwise.
Result<std::vector<Certificate>> ParseCertsOnly(std::string_view body);

// RenewalTime returns when a certificate should be renewed: after two thirds of its lifetime.
int64_t RenewalTime(const Certificate& cert);

// ServerReply is what the server answered.
struct ServerReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// ClaimRequest is what a device claims with.
struct BatchClaim {
  std::string batch_id;
  std::string serial;
  const SecretBytes* secret = nullptr;
};

// Claim connects to the server with a self-signed certificate over `key` and claims through the
// batch: the proof is computed on this connection (TLS exporter), so it is useless on any other.
// Returns the server's reply (201 enrolled, 200 already enrolled, 4xx refused with a JSON
// {"error": ...}). kUnavailable / kUnauthenticated as `Get` for connection failures;
// kInvalidArgument for a bad secret.
Result<ServerReply> Claim(const PrivateKey& key, const ClientOptions& options,
                          const BatchClaim& claim, const Clock& clock);

// RequestApproval asks to be enrolled by an operator (the "engineer present" path), sending
// `serial` (may be empty). Reply 202 with the comparison code, 200 if already active.
Result<ServerReply> RequestApproval(const PrivateKey& key, const ClientOptions& options,
                                    std::string_view serial, const Clock& clock);

// FetchCaCerts asks for the EST CA certificates (`chain` may be a self-signed certificate).
// kUnavailable with the server's answer if it is not a certs-only response.
Result<std::vector<Certificate>> FetchCaCerts(const PrivateKey& key,
                                              std::span<const Certificate> chain,
                                              const ClientOptions& options);

// EstEnroll sends `csr` to simpleenroll (or simplereenroll with `reenroll`), authenticating with
// `key` and `chain`, and returns the issued certificate. kPermissionDenied with the server's
// reason if it refuses (HTTP 4xx); kUnavailable for other failures.
Result<Certificate> EstEnroll(const PrivateKey& key, std::span<const Certificate> chain,
                              const ClientOptions& options, const Csr& csr, bool reenroll);

}  // namespace hallmark::device

#endif  // HALLMARK_DEVICE_ENROLL_CLIENT_H_
