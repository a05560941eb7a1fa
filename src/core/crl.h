// Crl: an X.509 certificate revocation list, and SignCrl, which builds one.
#ifndef HALLMARK_CORE_CRL_H_
#define HALLMARK_CORE_CRL_H_

#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.h"
#include "core/encoding.h"
#include "core/key.h"
#include "core/status.h"

namespace hallmark {

// RevocationReason is CRLReason (RFC 5280 section 5.3.1).
enum class RevocationReason {
  kUnspecified = 0,
  kKeyCompromise = 1,
  kCaCompromise = 2,
  kAffiliationChanged = 3,
  kSuperseded = 4,
  kCessationOfOperation = 5,
  kCertificateHold = 6,
  kPrivilegeWithdrawn = 9,
};

// ParseRevocationReason accepts RFC 5280's names ("keyCompromise", "superseded", ...), also in
// lowercase with dashes ("key-compromise").
Result<RevocationReason> ParseRevocationReason(std::string_view name);
std::string_view RevocationReasonName(RevocationReason reason);

struct RevokedEntry {
  Bytes serial;
  int64_t revoked_at = 0;
  RevocationReason reason = RevocationReason::kUnspecified;
};

struct CrlTemplate {
  int64_t this_update = 0;
  int64_t next_update = 0;
  uint64_t crl_number = 0;  // monotonically increasing per issuer (RFC 5280 section 5.2.3)
  std::vector<RevokedEntry> revoked;
};

// Crl is an immutable, parsed CRL. Copyable; thread-safe.
class Crl {
 public:
  static Result<Crl> FromPem(std::string_view pem);
  static Result<Crl> FromDer(std::span<const uint8_t> der);

  std::string ToPem() const;
  Bytes ToDer() const;
  std::string Issuer() const;
  int64_t ThisUpdate() const;
  int64_t NextUpdate() const;
  // IsRevoked reports whether `cert`'s serial is listed.
  bool IsRevoked(const Certificate& cert) const;
  size_t RevokedCount() const;
  // VerifySignature checks the CRL against its issuer's certificate.
  Status VerifySignature(const Certificate& issuer) const;

  X509_CRL* native() const { return crl_.get(); }

 private:
  friend Result<Crl> SignCrl(const CrlTemplate&, const Certificate&, const PrivateKey&);
  explicit Crl(std::shared_ptr<X509_CRL> crl) : crl_(std::move(crl)) {}
  std::shared_ptr<X509_CRL> crl_;
};

// SignCrl builds a v2 CRL with cRLNumber and authorityKeyIdentifier, signed by `issuer_key`.
// Entries with reason kUnspecified carry no reasonCode (RFC 5280 section 5.3.1).
Result<Crl> SignCrl(const CrlTemplate& tmpl, const Certificate& issuer,
                    const PrivateKey& issuer_key);

}  // namespace hallmark

#endif  // HALLMARK_CORE_CRL_H_
