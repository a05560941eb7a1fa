// Csr: a PKCS#10 certificate signing request, as a device makes it and a CA reads it.
#ifndef HALLMARK_CORE_CSR_H_
#define HALLMARK_CORE_CSR_H_

#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.h"
#include "core/encoding.h"
#include "core/key.h"
#include "core/ossl.h"
#include "core/status.h"

struct HALLMARK_CSR;

namespace hallmark {

// SubjectAltName is one subjectAltName entry hallmark understands.
struct SubjectAltName {
  enum class Type { kDns, kIp, kUri };
  Type type;
  std::string value;  // IP addresses in their usual text form
  bool operator==(const SubjectAltName&) const = default;
};

// ParseSubjectAltName accepts "dns:NAME", "ip:ADDR" and "uri:URI", and a bare name (DNS) or
// address (IP). Checks the DNS name's syntax (RFC 1123 labels, no wildcard) and the address.
Result<SubjectAltName> ParseSubjectAltName(std::string_view text);
std::string FormatSubjectAltName(const SubjectAltName& san);

// RequestedExtension is an extension a CSR asks for.
struct RequestedExtension {
  std::string oid;   // dotted OID
  std::string name;  // OpenSSL's short name, or the OID if unknown
  bool critical = false;
};

// Csr is a parsed PKCS#10 request. Copyable (shares the X509_REQ); thread-safe.
class Csr {
 public:
  // Parse accepts PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or DER.
  // kInvalidArgument, naming the problem, for anything else (truncated, garbage, trailing bytes).
  static Result<Csr> Parse(std::span<const uint8_t> bytes);
  static Result<Csr> FromPem(std::string_view pem);
  static Result<Csr> FromDer(std::span<const uint8_t> der);

  // Create makes a request over `key`'s public key, signed by `key` (proof of possession).
  static Result<Csr> Create(const PrivateKey& key, const DistinguishedName& subject,
                            std::span<const SubjectAltName> sans = {});

  // VerifySignature checks the proof of possession: the request is signed by the private key
  // matching its public key, with an acceptable digest. kInvalidArgument if not, or if the
  // signature uses MD5 or SHA-1.
  Status VerifySignature() const;

  const PublicKey& Key() const { return key_; }
  std::optional<std::string> CommonName() const { return Attribute(NID_commonName); }
  std::optional<std::string> SerialNumber() const { return Attribute(NID_serialNumber); }
  std::string Subject() const;

  // RequestedExtensions lists the extensions in the request's extensionRequest attribute.
  std::vector<RequestedExtension> RequestedExtensions() const;
  // RequestedSubjectAltNames returns the request's SANs. kInvalidArgument if there is a SAN type
  // hallmark does not issue (otherName, email, directoryName, ...).
  Result<std::vector<SubjectAltName>> RequestedSubjectAltNames() const;
  // RequestsCa reports whether the request asks for basicConstraints cA=TRUE.
  bool RequestsCa() const;

  std::string ToPem() const;
  Bytes ToDer() const;

 private:
  Csr(std::shared_ptr<HALLMARK_CSR> req, PublicKey key)
      : req_(std::move(req)), key_(std::move(key)) {}
  std::optional<std::string> Attribute(int nid) const;
  // Extensions returns the extensionRequest attribute's extensions (null if there are none).
  // kInvalidArgument if the attribute does not parse.
  Result<OsslPtr<STACK_OF(X509_EXTENSION)>> Extensions() const;

  // Parsed without OpenSSL's X509_REQ so that the key is decoded by the fast path (see
  // core/internal/asn1_types.h).
  std::shared_ptr<HALLMARK_CSR> req_;
  PublicKey key_;
};

// BuildName returns `name` as an X509_NAME. kInvalidArgument if a field cannot be encoded (for
// example a serialNumber with characters outside PrintableString).
Result<OsslPtr<X509_NAME>> BuildName(const DistinguishedName& name);

// IsPrintableString reports whether `s` uses only ASN.1 PrintableString characters.
bool IsPrintableString(std::string_view s);

}  // namespace hallmark

#endif  // HALLMARK_CORE_CSR_H_
