// Certificate: an immutable X.509 certificate, and DistinguishedName, the subject fields hallmark
// writes.
#ifndef HALLMARK_CORE_CERTIFICATE_H_
#define HALLMARK_CORE_CERTIFICATE_H_

#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/key.h"
#include "core/ossl.h"
#include "core/status.h"

namespace hallmark {

// kNoWellDefinedExpiration is RFC 5280 section 4.1.2.5's 99991231235959Z, as seconds since the
// epoch: the notAfter of a certificate "with no well-defined expiration date" (IEEE 802.1AR
// IDevIDs).
inline constexpr int64_t kNoWellDefinedExpiration = 253402300799;

// DistinguishedName holds the subject attributes hallmark issues. Empty fields are omitted.
// serialNumber and countryName are encoded as PrintableString, the rest as UTF8String.
struct DistinguishedName {
  std::string country;
  std::string organization;
  std::string organizational_unit;
  std::string common_name;
  std::string serial_number;
};

// FormatTime returns "2026-11-28T23:51:53Z", or "never (99991231235959Z)" for
// kNoWellDefinedExpiration.
std::string FormatTime(int64_t epoch_seconds);

// Certificate is an immutable X.509 certificate. Copyable (shares the X509); thread-safe.
class Certificate {
 public:
  // FromPem parses the first CERTIFICATE block of `pem`. kInvalidArgument if there is none.
  static Result<Certificate> FromPem(std::string_view pem);
  // FromDer parses one DER certificate; trailing bytes are an error.
  static Result<Certificate> FromDer(std::span<const uint8_t> der);
  // ChainFromPem parses every CERTIFICATE block of `pem` in order. kInvalidArgument if there is
  // none or one does not parse.
  static Result<std::vector<Certificate>> ChainFromPem(std::string_view pem);
  // ChainFromFile reads a PEM file of one or more certificates. Errors of ReadFile, or
  // kInvalidArgument naming the file.
  static Result<std::vector<Certificate>> ChainFromFile(const std::string& path);
  // FromNative takes another reference on `cert`. kInvalidArgument if its public key does not
  // decode: OpenSSL's d2i_X509 accepts such certificates (it leaves the key empty), so a peer
  // can send one.
  static Result<Certificate> FromNative(X509* cert);
  // FromSigned adopts a certificate just built and signed for `key`, without decoding the key
  // again (OpenSSL 3's decoders cost more than the signature). `key` must be the certificate's
  // subject key.
  static Certificate FromSigned(OsslPtr<X509> cert, PublicKey key);

  std::string ToPem() const;
  Bytes ToDer() const;

  // Subject and Issuer in RFC 2253 form ("CN=...,O=...").
  std::string Subject() const;
  std::string Issuer() const;
  // SubjectAttribute returns the first value of a subject attribute by OpenSSL short name
  // ("CN", "serialNumber", "O").
  std::optional<std::string> SubjectAttribute(std::string_view short_name) const;
  // SerialHex returns the serial number as lowercase hex without leading zero bytes.
  std::string SerialHex() const;
  int64_t NotBefore() const;
  int64_t NotAfter() const;
  // IsCa reports whether the certificate has basicConstraints with cA=TRUE (keyUsage alone, or
  // a v1 certificate, does not make a CA here).
  bool IsCa() const;
  PublicKey Key() const;
  // Sha256Fingerprint is the lowercase hex SHA-256 of the DER encoding.
  std::string Sha256Fingerprint() const;

  bool operator==(const Certificate& other) const { return ToDer() == other.ToDer(); }

  // native returns the certificate as OpenSSL's X509, fully parsed (for one made by
  // `FromSigned`, parsed again from its DER on first use).
  X509* native() const;

 private:
  static Result<Certificate> Wrap(OsslPtr<X509> cert);
  Certificate(std::shared_ptr<X509> cert, PublicKey key)
      : cert_(std::move(cert)), key_(std::move(key)) {}
  // A certificate built in memory carries its subject key as bytes only (OpenSSL's decoders
  // are not run on the issuance path), so OpenSSL APIs that need the key get a parsed copy.
  struct Reparsed {
    std::once_flag once;
    OsslPtr<X509> x509;
  };
  std::shared_ptr<X509> cert_;
  std::shared_ptr<Reparsed> reparsed_;
  // der_ caches the encoding of a certificate built in memory, whose X509 would otherwise be
  // re-encoded (every extension) on each ToDer.
  std::shared_ptr<const Bytes> der_;
  PublicKey key_;
};

// ChainToPem concatenates PEM encodings.
std::string ChainToPem(std::span<const Certificate> chain);

// VerifyOptions controls `VerifyCertificate`.
struct VerifyOptions {
  int64_t at_time = 0;         // 0 = now
  bool partial_chain = false;  // accept a chain ending at a non-self-signed anchor
  bool require_client_auth = false;
};

// VerifyCertificate checks `leaf` against `anchors` with `intermediates` as untrusted helpers,
// through OpenSSL's X509_verify_cert. kUnauthenticated with OpenSSL's reason if it fails.
Status VerifyCertificate(const Certificate& leaf, std::span<const Certificate> intermediates,
                         std::span<const Certificate> anchors, const VerifyOptions& options = {});

}  // namespace hallmark

#endif  // HALLMARK_CORE_CERTIFICATE_H_
