#include "ca/issuer.h"

#include <algorithm>

#include "core/duration.h"
#include "core/random.h"

namespace hallmark::ca {
namespace {

// Certificates start a minute in the past so that a device whose clock is slightly behind
// accepts a certificate issued just now.
constexpr int64_t kBackdate = 60;
constexpr int kSerialAttempts = 3;

Status ValidateSerialNumber(const std::string& serial) {
  if (serial.empty() || serial.size() > 64) {
    return Error(Code::kInvalidArgument,
                 "serial number must be 1 to 64 characters, got " + std::to_string(serial.size()));
  }
  if (!IsPrintableString(serial)) {
    return Error(Code::kInvalidArgument,
                 "serial number '" + serial +
                     "' has characters outside PrintableString (letters, digits, space and "
                     "'()+,-./:=?)");
  }
  return OkStatus();
}

}  // namespace

Status CheckKeyPolicy(const PublicKey& key, const KeyPolicy& policy) {
  KeyAlgorithm alg = key.Algorithm();
  std::string allowed = "policy allows EC P-256, P-384, P-521, Ed25519 or RSA >= " +
                        std::to_string(policy.min_rsa_bits);
  switch (alg.family) {
    case KeyAlgorithm::Family::kEc:
      if (alg.curve == "P-256" || alg.curve == "P-384" || alg.curve == "P-521") {
        return OkStatus();
      }
      break;
    case KeyAlgorithm::Family::kEd25519:
      return OkStatus();
    case KeyAlgorithm::Family::kRsa:
      if (alg.bits >= policy.min_rsa_bits) {
        return OkStatus();
      }
      break;
    case KeyAlgorithm::Family::kEd448:
    case KeyAlgorithm::Family::kOther:
      break;
  }
  return Error(Code::kPermissionDenied, "key is " + alg.Describe() + "; " + allowed);
}

Bytes NewSerial() {
  Bytes serial = RandomBytes(16);
  // RFC 5280 section 4.1.2.2: positive; clearing the top bit keeps 127 random bits.
  serial[0] &= 0x7f;
  if (serial[0] == 0) {
    serial[0] = 0x01;  // keep the encoding 16 octets long
  }
  return serial;
}

int64_t ClampValidity(int64_t now, std::optional<int64_t> validity, bool no_expiry,
                      int64_t issuer_not_after, bool* out_capped) {
  int64_t end = no_expiry || !validity.has_value() ? kNoWellDefinedExpiration : now + *validity;
  *out_capped = end > issuer_not_after;
  return std::min(end, issuer_not_after);
}

Result<std::pair<CertificateTemplate, std::vector<std::string>>> Issuer::Authorize(
    const IssueRequest& request) const {
  const int64_t now = clock_->Now();
  if (now < not_before_ || now > not_after_) {
    return Error(Code::kFailedPrecondition,
                 "CA '" + name_ + "' is not valid now: it is valid from " +
                     FormatTime(not_before_) + " to " + FormatTime(not_after_));
  }
  if (request.profile != Profile::kDevice && request.profile != Profile::kServer &&
      request.profile != Profile::kOperational) {
    return Error(Code::kInvalidArgument, "profile " + std::string(ProfileName(request.profile)) +
                                             " cannot be issued from a CSR");
  }
  const std::string profile_name(ProfileName(request.profile));
  const Csr& csr = request.csr;
  if (auto s = csr.VerifySignature(); !s) {
    return s.error();
  }
  if (auto s = CheckKeyPolicy(csr.Key(), key_policy_); !s) {
    return Error(Code::kPermissionDenied, "CSR " + s.error().message());
  }
  if (csr.RequestsCa()) {
    return Error(Code::kPermissionDenied, "CSR asks for basicConstraints CA:TRUE; the " +
                                              profile_name +
                                              " profile issues end-entity certificates only");
  }

  std::vector<std::string> notes;
  CertificateTemplate t;
  t.serial = NewSerial();
  t.subject.organization = organization_;
  t.key_usage = kDigitalSignature;

  for (const RequestedExtension& ext : csr.RequestedExtensions()) {
    if (ext.name == "subjectAltName" && request.profile == Profile::kServer) {
      continue;
    }
    if (ext.name == "basicConstraints") {
      continue;  // cA=FALSE requested: the profile sets it anyway
    }
    notes.push_back("ignored requested extension " + ext.name +
                    (ext.critical ? " (critical)" : "") + ": the " + profile_name +
                    " profile decides extensions");
  }

  if (request.profile == Profile::kServer) {
    auto requested = csr.RequestedSubjectAltNames();
    if (!requested) {
      return requested.error();
    }
    std::vector<SubjectAltName> sans = request.subject_alt_names;
    if (sans.empty()) {
      for (const SubjectAltName& san : *requested) {
        auto checked = ParseSubjectAltName(FormatSubjectAltName(san));
        if (!checked) {
          return checked.error().WithContext("CSR");
        }
        sans.push_back(*checked);
      }
    } else if (!requested->empty() && *requested != sans) {
      return Error(Code::kInvalidArgument,
                   "CSR asks for subjectAltNames that differ from the ones given (--san)");
    }
    if (sans.empty()) {
      return Error(Code::kInvalidArgument,
                   "server profile requires a subjectAltName: give --san dns:NAME or ip:ADDR, "
                   "or put one in the CSR");
    }
    for (const SubjectAltName& san : sans) {
      if (san.type == SubjectAltName::Type::kUri) {
        return Error(Code::kInvalidArgument,
                     "server profile allows only DNS and IP "
                     "subjectAltNames, not " +
                         FormatSubjectAltName(san));
      }
    }
    t.subject.common_name = sans.front().value;
    t.subject_alt_names = std::move(sans);
    t.extended_key_usage = {ExtendedKeyUsage::kServerAuth};
  } else {
    std::optional<std::string> csr_serial = csr.SerialNumber();
    if (request.serial_number.has_value() && csr_serial.has_value() &&
        *request.serial_number != *csr_serial) {
      return Error(Code::kInvalidArgument, "CSR serialNumber '" + *csr_serial +
                                               "' does not match the serial given ('" +
                                               *request.serial_number + "')");
    }
    std::optional<std::string> serial =
        request.serial_number.has_value() ? request.serial_number : csr_serial;
    if (!serial.has_value()) {
      return Error(Code::kInvalidArgument,
                   "the " + profile_name +
                       " profile requires a device serial number: put serialNumber in the CSR "
                       "subject or give --serial");
    }
    if (auto s = ValidateSerialNumber(*serial); !s) {
      return s.error();
    }
    t.subject.serial_number = *serial;
    t.subject.common_name = *serial;
    t.extended_key_usage = {ExtendedKeyUsage::kClientAuth};
    if (!request.subject_alt_names.empty()) {
      return Error(Code::kInvalidArgument,
                   "the " + profile_name + " profile does not take subjectAltNames");
    }
  }

  ProfileLimits limits = LimitsFor(request.profile);
  if (request.no_expiry && !limits.allows_no_expiry) {
    return Error(Code::kInvalidArgument,
                 "the " + profile_name + " profile cannot issue certificates without expiry");
  }
  if (request.validity.has_value() && limits.max_validity > 0 &&
      *request.validity > limits.max_validity) {
    return Error(Code::kOutOfRange, "validity " + FormatDuration(*request.validity) +
                                        " exceeds the " + profile_name + " profile's maximum of " +
                                        FormatDuration(limits.max_validity));
  }
  std::optional<int64_t> validity = request.validity;
  if (!validity.has_value() && limits.default_validity > 0) {
    validity = limits.default_validity;
  }
  t.not_before = std::max(now - kBackdate, not_before_);
  bool capped = false;
  t.not_after = ClampValidity(now, validity, request.no_expiry, not_after_, &capped);
  // A device IDevID lives as long as its issuer by default; say so only when the caller asked
  // for more.
  if (capped && (request.validity.has_value() || request.no_expiry)) {
    notes.push_back("notAfter capped at the issuing CA's notAfter (" + FormatTime(not_after_) +
                    ")");
  }
  return std::make_pair(std::move(t), std::move(notes));
}

Result<Certificate> Issuer::Sign(const CertificateTemplate& tmpl,
                                 const PublicKey& subject_key) const {
  return SignCertificate(tmpl, subject_key, &certificate_, key_);
}

IssuedRecord Issuer::MakeRecord(const Certificate& cert, const CertificateTemplate& tmpl,
                                const PublicKey& subject_key, Profile profile) const {
  IssuedRecord r;
  // The template holds what was signed; reading it back from the certificate costs more.
  size_t skip = 0;
  while (skip + 1 < tmpl.serial.size() && tmpl.serial[skip] == 0) {
    ++skip;
  }
  r.serial = HexEncode(std::span<const uint8_t>(tmpl.serial).subspan(skip));
  r.issuer = name_;
  r.profile = std::string(ProfileName(profile));
  r.subject = cert.Subject();
  r.device_id = subject_key.DeviceId();
  r.not_before = tmpl.not_before;
  r.not_after = tmpl.not_after;
  r.issued_at = clock_->Now();
  r.der = cert.ToDer();
  return r;
}

Result<Issued> Issuer::Issue(const IssueRequest& request) {
  std::vector<Result<Issued>> out = IssueBatch(std::span<const IssueRequest>(&request, 1));
  return std::move(out.front());
}

std::vector<Result<Issued>> Issuer::IssueBatch(std::span<const IssueRequest> requests,
                                               bool all_or_nothing) {
  // Per request: its template and notes once authorized, its error otherwise.
  struct Pending {
    std::optional<Error> error;
    CertificateTemplate tmpl;
    std::vector<std::string> notes;
    std::optional<Certificate> cert;
  };
  std::vector<Pending> pending(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    auto decided = Authorize(requests[i]);
    if (!decided) {
      pending[i].error = decided.error();
      continue;
    }
    pending[i].tmpl = std::move(decided->first);
    pending[i].notes = std::move(decided->second);
  }
  const size_t refused = static_cast<size_t>(std::count_if(
      pending.begin(), pending.end(), [](const Pending& p) { return p.error.has_value(); }));
  if (all_or_nothing && refused > 0) {
    for (Pending& p : pending) {
      if (!p.error.has_value()) {
        p.error =
            Error(Code::kFailedPrecondition, "not issued: " + std::to_string(refused) +
                                                 " other request(s) in the batch were refused");
      }
    }
  }

  for (int attempt = 0; attempt < kSerialAttempts; ++attempt) {
    std::vector<IssuedRecord> records;
    records.reserve(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      Pending& p = pending[i];
      if (p.error.has_value()) {
        continue;
      }
      if (attempt > 0) {
        p.tmpl.serial = NewSerial();
      }
      auto cert = Sign(p.tmpl, requests[i].csr.Key());
      if (!cert) {
        p.error = cert.error();
        continue;
      }
      records.push_back(MakeRecord(*cert, p.tmpl, requests[i].csr.Key(), requests[i].profile));
      p.cert = std::move(*cert);
    }
    Status s = records.empty() ? OkStatus() : log_->Record(records);
    if (s) {
      break;
    }
    // A serial collision (2^-127 per pair) is retried with fresh serials; any other failure
    // fails every request, since none of them was recorded.
    if (s.error().code() != Code::kAlreadyExists || attempt + 1 == kSerialAttempts) {
      for (Pending& p : pending) {
        if (!p.error.has_value()) {
          p.error = s.error().WithContext("issuance log");
        }
      }
      break;
    }
  }

  std::vector<Result<Issued>> out;
  out.reserve(requests.size());
  for (Pending& p : pending) {
    if (p.error.has_value()) {
      out.emplace_back(std::move(*p.error));
    } else {
      out.emplace_back(Issued{std::move(*p.cert), std::move(p.notes)});
    }
  }
  return out;
}

Result<Certificate> Issuer::SignCustomerCa(const PublicKey& subject_key,
                                           const DistinguishedName& subject, int64_t validity,
                                           bool no_expiry) {
  const int64_t now = clock_->Now();
  CertificateTemplate t;
  t.serial = NewSerial();
  t.subject = subject;
  t.not_before = std::max(now - kBackdate, not_before_);
  bool capped = false;
  t.not_after = ClampValidity(now, validity, no_expiry, not_after_, &capped);
  t.is_ca = true;
  t.path_len = 0;
  t.key_usage = kKeyCertSign | kCrlSign;
  return Sign(t, subject_key);
}

}  // namespace hallmark::ca
