#include "ca/authority.h"

#include "core/certificate_builder.h"
#include "core/file.h"

namespace hallmark::ca {
namespace {

constexpr int64_t kBackdate = 60;

std::string DbPath(const std::string& dir) { return dir + "/ca.db"; }

std::string CustomerKeyLabel(const std::string& name) { return "customer/" + name; }

IssuedRecord RecordFor(const Certificate& cert, const std::string& issuer, Profile profile,
                       int64_t now) {
  IssuedRecord r;
  r.serial = cert.SerialHex();
  r.issuer = issuer;
  r.profile = std::string(ProfileName(profile));
  r.subject = cert.Subject();
  r.device_id = cert.Key().DeviceId();
  r.not_before = cert.NotBefore();
  r.not_after = cert.NotAfter();
  r.issued_at = now;
  r.der = cert.ToDer();
  return r;
}

}  // namespace

Status ValidateCustomerName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63 && name != kRootName;
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    ok = alnum || (i > 0 && (c == '.' || c == '_' || c == '-'));
  }
  if (!ok) {
    return Error(Code::kInvalidArgument,
                 "invalid customer name '" + std::string(name) +
                     "': use 1-63 characters a-z, 0-9, '.', '_' or '-', starting with a letter "
                     "or digit (and not 'root')");
  }
  return OkStatus();
}

Result<Authority> Authority::Init(const std::string& dir, const InitOptions& options,
                                  std::optional<SecretBytes> passphrase, const Clock* clock) {
  return Init(dir, options, std::make_unique<FileKeyStore>(dir + "/keys", std::move(passphrase)),
              clock);
}

Result<Authority> Authority::Init(const std::string& dir, const InitOptions& options,
                                  std::unique_ptr<KeyStore> keys, const Clock* clock) {
  if (FileExists(DbPath(dir))) {
    return Error(Code::kAlreadyExists, "a CA already exists in " + dir);
  }
  if (options.organization.empty()) {
    return Error(Code::kInvalidArgument, "organization name must not be empty");
  }
  if (auto s = MakeDirectory(dir, 0700); !s) {
    return s.error();
  }
  auto key = keys->Generate(kRootName, options.key_type);
  if (!key) {
    return key.error();
  }
  const int64_t now = clock->Now();
  CertificateTemplate t;
  t.serial = NewSerial();
  t.subject.organization = options.organization;
  t.subject.common_name = options.organization + " Root CA";
  t.not_before = now - kBackdate;
  ProfileLimits limits = LimitsFor(Profile::kRoot);
  t.not_after = options.no_expiry ? kNoWellDefinedExpiration
                                  : now + options.validity.value_or(limits.default_validity);
  t.is_ca = true;
  // pathLen 1: the root signs customer intermediates, which sign only end entities.
  t.path_len = 1;
  t.key_usage = kKeyCertSign | kCrlSign;
  auto root = SignCertificate(t, key->Public(), nullptr, *key);
  if (!root) {
    return root.error();
  }
  auto log = IssuanceLog::Open(DbPath(dir));
  if (!log) {
    return log.error();
  }
  AuthorityRecord a;
  a.name = std::string(kRootName);
  a.kind = "root";
  a.organization = options.organization;
  a.cert_der = root->ToDer();
  a.key_ref = keys->Reference(kRootName);
  a.created_at = now;
  if (auto s = log->AddAuthority(a, RecordFor(*root, a.name, Profile::kRoot, now)); !s) {
    if (s.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "a CA already exists in " + dir);
    }
    return s.error();
  }
  if (auto s = WriteFileAtomic(dir + "/root.pem", root->ToPem(), 0644); !s) {
    return s.error();
  }
  return Authority(dir, std::move(keys), std::make_unique<IssuanceLog>(std::move(*log)),
                   std::move(*root), clock);
}

Result<Authority> Authority::Open(const std::string& dir, std::optional<SecretBytes> passphrase,
                                  const Clock* clock) {
  return Open(dir, KeySecrets{std::move(passphrase), std::nullopt}, clock);
}

Result<Authority> Authority::Open(const std::string& dir, KeySecrets secrets, const Clock* clock) {
  if (!FileExists(DbPath(dir))) {
    return Error(Code::kFailedPrecondition,
                 "no CA in " + dir + " (run 'hallmark ca init --dir " + dir + "' first)");
  }
  auto log = IssuanceLog::Open(DbPath(dir));
  if (!log) {
    return log.error();
  }
  auto root_record = log->FindAuthority(std::string(kRootName));
  if (!root_record) {
    return Error(Code::kFailedPrecondition, "CA in " + dir + " has no root; it is incomplete");
  }
  auto root = Certificate::FromDer(root_record->cert_der);
  if (!root) {
    return Error(Code::kDataLoss, "root certificate in " + DbPath(dir) + " is corrupt");
  }
  auto keys = OpenKeyStore(root_record->key_ref, dir, std::move(secrets));
  if (!keys) {
    return keys.error().WithContext("root key reference in " + DbPath(dir));
  }
  return Authority(dir, std::move(*keys), std::make_unique<IssuanceLog>(std::move(*log)),
                   std::move(*root), clock);
}

Result<Certificate> Authority::AddCustomer(const std::string& name,
                                           const CustomerOptions& options) {
  if (auto s = ValidateCustomerName(name); !s) {
    return s.error();
  }
  if (auto existing = log_->FindAuthority(name); existing) {
    return Error(Code::kAlreadyExists, "customer '" + name + "' already exists");
  } else if (existing.error().code() != Code::kNotFound) {
    return existing.error();
  }
  auto root = IssuerFor(std::string(kRootName));
  if (!root) {
    return root.error();
  }
  // No committed state refers to this label yet, so a key left by a crashed attempt is replaced.
  auto key = keys_->Generate(CustomerKeyLabel(name), options.key_type);
  if (!key) {
    return key.error();
  }
  DistinguishedName subject;
  subject.organization = options.organization.empty() ? name : options.organization;
  subject.common_name = subject.organization + " Device CA";
  ProfileLimits limits = LimitsFor(Profile::kCustomerCa);
  auto cert =
      root->SignCustomerCa(key->Public(), subject,
                           options.validity.value_or(limits.default_validity), options.no_expiry);
  if (!cert) {
    return cert.error();
  }
  const int64_t now = clock_->Now();
  AuthorityRecord a;
  a.name = name;
  a.kind = "customer";
  a.organization = subject.organization;
  a.cert_der = cert->ToDer();
  a.key_ref = keys_->Reference(CustomerKeyLabel(name));
  a.created_at = now;
  if (auto s = log_->AddAuthority(
          a, RecordFor(*cert, std::string(kRootName), Profile::kCustomerCa, now));
      !s) {
    return s.error();
  }
  // The log is the source of truth; these files are convenience copies for other tools.
  if (auto s = MakeDirectory(dir_ + "/customers/" + name, 0755); !s) {
    return s.error();
  }
  if (auto s = WriteFileAtomic(CustomerCertPath(name), cert->ToPem(), 0644); !s) {
    return s.error();
  }
  if (auto s = WriteFileAtomic(CustomerChainPath(name), cert->ToPem() + root_.ToPem(), 0644); !s) {
    return s.error();
  }
  return cert;
}

Result<std::vector<CustomerInfo>> Authority::Customers() {
  auto all = log_->Authorities();
  if (!all) {
    return all.error();
  }
  std::vector<CustomerInfo> out;
  for (const AuthorityRecord& a : *all) {
    if (a.kind != "customer") {
      continue;
    }
    auto cert = Certificate::FromDer(a.cert_der);
    if (!cert) {
      return Error(Code::kDataLoss, "certificate of customer '" + a.name + "' is corrupt");
    }
    auto issued = log_->CountIssued(a.name);
    if (!issued) {
      return issued.error();
    }
    out.push_back(CustomerInfo{a.name, a.organization, std::move(*cert), a.created_at, *issued});
  }
  return out;
}

Result<Certificate> Authority::CustomerCertificate(const std::string& name) {
  auto a = log_->FindAuthority(name);
  if (!a || a->kind != "customer") {
    if (a || a.error().code() == Code::kNotFound) {
      std::string known;
      if (auto all = Customers(); all) {
        for (const CustomerInfo& c : *all) {
          known += known.empty() ? "" : ", ";
          known += c.name;
        }
      }
      return Error(Code::kNotFound,
                   "unknown customer '" + name + "'" +
                       (known.empty() ? " (no customers yet)" : " (customers: " + known + ")"));
    }
    return a.error();
  }
  auto cert = Certificate::FromDer(a->cert_der);
  if (!cert) {
    return Error(Code::kDataLoss, "certificate of customer '" + name + "' is corrupt");
  }
  return cert;
}

Result<Issuer> Authority::IssuerFor(const std::string& name) {
  if (name == kRootName) {
    auto key = keys_->Load(kRootName);
    if (!key) {
      return key.error();
    }
    if (!(key->Public() == root_.Key())) {
      return Error(Code::kDataLoss, "root key does not match the root certificate");
    }
    return Issuer(name, root_, std::move(*key), log_.get(), clock_);
  }
  auto cert = CustomerCertificate(name);
  if (!cert) {
    return cert.error();
  }
  auto key = keys_->Load(CustomerKeyLabel(name));
  if (!key) {
    return key.error();
  }
  if (!(key->Public() == cert->Key())) {
    return Error(Code::kDataLoss, "key of customer '" + name + "' does not match its certificate");
  }
  return Issuer(name, std::move(*cert), std::move(*key), log_.get(), clock_);
}

Result<std::string> NormalizeSerial(std::string_view serial) {
  std::string normalized;
  for (char c : serial) {
    if (c != ':') {
      normalized.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  // Serials are stored as Certificate::SerialHex() prints them: whole octets, no leading zero
  // octet. Accept what `openssl x509 -serial` prints too (uppercase, maybe an odd digit count).
  if (normalized.size() % 2 == 1) {
    normalized.insert(0, "0");
  }
  while (normalized.size() > 2 && normalized.compare(0, 2, "00") == 0) {
    normalized.erase(0, 2);
  }
  if (normalized.empty() || !HexDecode(normalized)) {
    return Error(Code::kInvalidArgument,
                 "serial '" + std::string(serial) + "' is not a hex number");
  }
  return normalized;
}

Result<IssuedRecord> Authority::Find(const std::string& serial) {
  auto normalized = NormalizeSerial(serial);
  if (!normalized) {
    return normalized.error();
  }
  return log_->Find(*normalized);
}

Result<IssuedRecord> Authority::Revoke(const std::string& serial, RevocationReason reason) {
  auto normalized = NormalizeSerial(serial);
  if (!normalized) {
    return normalized.error();
  }
  if (auto s = log_->Revoke(*normalized, reason, clock_->Now()); !s) {
    return s.error();
  }
  return log_->Find(*normalized);
}

Result<Crl> Authority::MakeCrl(const std::string& name, int64_t validity) {
  auto issuer = IssuerFor(name);
  if (!issuer) {
    return issuer.error();
  }
  const int64_t now = clock_->Now();
  auto revoked = log_->Revoked(name, now);
  if (!revoked) {
    return revoked.error();
  }
  auto number = log_->NextCrlNumber(name);
  if (!number) {
    return number.error();
  }
  CrlTemplate t;
  t.this_update = now;
  t.next_update = now + validity;
  t.crl_number = *number;
  for (const IssuedRecord& r : *revoked) {
    auto serial = HexDecode(r.serial);
    if (!serial) {
      return Error(Code::kDataLoss, "serial " + r.serial + " in the issuance log is not hex");
    }
    t.revoked.push_back(RevokedEntry{std::move(*serial), *r.revoked_at, r.reason});
  }
  return SignCrl(t, issuer->certificate(), issuer->key());
}

}  // namespace hallmark::ca
