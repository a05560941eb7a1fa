// Issuer: one certificate authority (the root or a customer intermediate) that signs
// certificates from CSRs under a profile, recording each in the issuance log before handing it
// out.
#ifndef HALLMARK_CA_ISSUER_H_
#define HALLMARK_CA_ISSUER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ca/issuance_log.h"
#include "ca/profile.h"
#include "core/certificate.h"
#include "core/certificate_builder.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/key.h"
#include "core/status.h"

namespace hallmark::ca {

// IssueRequest is what a caller asks for. The CSR proposes; the profile and the CA decide.
struct IssueRequest {
  Csr csr;
  Profile profile = Profile::kDevice;
  // serial_number: the device's serial for the subject. Must match the CSR's serialNumber if
  // the CSR has one; device and operational profiles require one from either place.
  std::optional<std::string> serial_number;
  // subject_alt_names: for the server profile. If empty, the CSR's requested SANs are used after
  // validation; if both are given they must agree.
  std::vector<SubjectAltName> subject_alt_names;
  // validity: seconds from now; nullopt = the profile's default. `no_expiry` asks for
  // 99991231235959Z (device profile only).
  std::optional<int64_t> validity;
  bool no_expiry = false;
};

// Issued is a certificate that is in the issuance log, with notes on what the CA changed or
// ignored in the request.
struct Issued {
  Certificate certificate;
  std::vector<std::string> notes;
};

// KeyPolicy says which subject keys the CA certifies: EC P-256/P-384/P-521, Ed25519, and RSA of
// at least `min_rsa_bits`.
struct KeyPolicy {
  int min_rsa_bits = 2048;
};

// CheckKeyPolicy returns kPermissionDenied naming the key and the policy if `key` is not allowed.
Status CheckKeyPolicy(const PublicKey& key, const KeyPolicy& policy);

// NewSerial returns a random positive 16-octet serial number (127 random bits).
Bytes NewSerial();

// Issuer signs with one CA key. It does not own the log. Not thread-safe (the log is not).
class Issuer {
 public:
  Issuer(std::string name, Certificate certificate, PrivateKey key, IssuanceLog* log,
         const Clock* clock, KeyPolicy key_policy = {})
      : name_(std::move(name)),
        certificate_(std::move(certificate)),
        key_(std::move(key)),
        log_(log),
        clock_(clock),
        key_policy_(key_policy),
        not_before_(certificate_.NotBefore()),
        not_after_(certificate_.NotAfter()),
        organization_(certificate_.SubjectAttribute("O").value_or("")) {}

  // Authorize checks `request` against the profile and the key policy, and returns the
  // certificate template to sign plus notes. It has no side effects. kInvalidArgument for a bad
  // or inconsistent request (signature does not verify, missing serial, bad SAN);
  // kPermissionDenied for a disallowed key or a CSR asking for CA:TRUE; kFailedPrecondition if
  // this CA is outside its own validity.
  Result<std::pair<CertificateTemplate, std::vector<std::string>>> Authorize(
      const IssueRequest& request) const;

  // Issue authorizes, signs and records one certificate in one transaction. On any failure
  // nothing is recorded and no certificate is returned.
  Result<Issued> Issue(const IssueRequest& request);

  // IssueBatch issues every request, recording all certificates in one transaction (group
  // commit: one fsync for the batch). Returns one result per request; requests that fail
  // authorization get their error and do not stop the others. If recording fails, every request
  // gets that error and nothing is recorded. With `all_or_nothing`, one refused request stops
  // the whole batch: nothing is signed or recorded, and the accepted requests get
  // kFailedPrecondition.
  std::vector<Result<Issued>> IssueBatch(std::span<const IssueRequest> requests,
                                         bool all_or_nothing = false);

  // IssueCustomerCa signs an intermediate for `subject_key` (the root's job). Not recorded: the
  // caller records it together with the new authority.
  Result<Certificate> SignCustomerCa(const PublicKey& subject_key, const DistinguishedName& subject,
                                     int64_t validity, bool no_expiry);

  const std::string& name() const { return name_; }
  const Certificate& certificate() const { return certificate_; }
  const PrivateKey& key() const { return key_; }

 private:
  Result<Certificate> Sign(const CertificateTemplate& tmpl, const PublicKey& subject_key) const;
  IssuedRecord MakeRecord(const Certificate& cert, const CertificateTemplate& tmpl,
                          const PublicKey& subject_key, Profile profile) const;

  std::string name_;
  Certificate certificate_;
  PrivateKey key_;
  IssuanceLog* log_;
  const Clock* clock_;
  KeyPolicy key_policy_;
  // Cached from `certificate_`: they are read on every issuance.
  int64_t not_before_;
  int64_t not_after_;
  std::string organization_;
};

// ClampValidity returns the notAfter for a certificate starting `now` that asks for `validity`
// seconds (or no expiry), never later than `issuer_not_after`. Sets `out_capped` if it had to cap.
int64_t ClampValidity(int64_t now, std::optional<int64_t> validity, bool no_expiry,
                      int64_t issuer_not_after, bool* out_capped);

}  // namespace hallmark::ca

#endif  // HALLMARK_CA_ISSUER_H_
