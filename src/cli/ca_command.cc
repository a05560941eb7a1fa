// `hallmark ca ...`: the production-line CA.
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "ca/authority.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/key_stores.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/file.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

struct CaOptions {
  std::string dir = "hallmark-ca";
  std::string passphrase_file;
  std::string pin_file;
};

// LoadSecrets reads what unlocks the CA's keys: the key files' passphrase, the token's PIN.
Result<ca::KeySecrets> LoadSecrets(const CaOptions& o) {
  auto passphrase = LoadPassphrase(o.passphrase_file);
  if (!passphrase) {
    return passphrase.error();
  }
  auto pin = LoadPin(o.pin_file);
  if (!pin) {
    return pin.error();
  }
  return ca::KeySecrets{std::move(*passphrase), std::move(*pin)};
}

Result<ca::Authority> OpenAuthority(const CaOptions& o) {
  auto secrets = LoadSecrets(o);
  if (!secrets) {
    return secrets.error();
  }
  return ca::Authority::Open(o.dir, std::move(*secrets), &SystemClock());
}

// ParseValidity turns --validity / --no-expiry into the pair the CA takes.
Result<std::optional<int64_t>> ParseValidity(const std::string& text) {
  if (text.empty()) {
    return std::optional<int64_t>();
  }
  auto d = ParseDuration(text);
  if (!d) {
    return d.error();
  }
  return std::optional<int64_t>(*d);
}

json CertJson(const Certificate& c) {
  return {{"serial", c.SerialHex()},
          {"subject", c.Subject()},
          {"issuer", c.Issuer()},
          {"not_before", FormatTime(c.NotBefore())},
          {"not_after", FormatTime(c.NotAfter())},
          {"device_id", c.Key().DeviceId()},
          {"key", c.Key().Algorithm().Describe()},
          {"sha256_fingerprint", c.Sha256Fingerprint()}};
}

json RecordJson(const ca::IssuedRecord& r) {
  json j = {{"serial", r.serial},
            {"issuer", r.issuer},
            {"profile", r.profile},
            {"subject", r.subject},
            {"device_id", r.device_id},
            {"not_before", FormatTime(r.not_before)},
            {"not_after", FormatTime(r.not_after)},
            {"issued_at", FormatTime(r.issued_at)},
            {"revoked", r.revoked_at.has_value()}};
  if (r.revoked_at.has_value()) {
    j["revoked_at"] = FormatTime(*r.revoked_at);
    j["revocation_reason"] = std::string(RevocationReasonName(r.reason));
  }
  return j;
}

void AddInit(CLI::App* ca, Context& ctx, std::shared_ptr<CaOptions> o) {
  auto* cmd = ca->add_subcommand("init", "Create the manufacturer root CA in --dir");
  struct Opts {
    std::string org = "hallmark Manufacturer";
    std::string key_type = "p256";
    std::string validity;
    bool no_expiry = false;
    std::string keystore;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--org", opts->org, "Organization name in the root's subject")
      ->capture_default_str();
  cmd->add_option("--keystore", opts->keystore,
                  "Where the CA keys live: file (DIR/keys, default) or "
                  "pkcs11:module=SO;token=LABEL (generated inside the token; --pin-file)");
  cmd->add_option("--key-type", opts->key_type, "Root key: p256, p384 or ed25519")
      ->capture_default_str();
  cmd->add_option("--validity", opts->validity, "Root validity, e.g. 30y (default 30y)");
  cmd->add_flag("--no-expiry", opts->no_expiry,
                "Root never expires (notAfter 99991231235959Z, RFC 5280)");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto type = ParseKeyType(opts->key_type);
    if (!type) {
      return type.error();
    }
    auto validity = ParseValidity(opts->validity);
    if (!validity) {
      return validity.error();
    }
    auto secrets = LoadSecrets(*o);
    if (!secrets) {
      return secrets.error();
    }
    auto keys = ca::OpenKeyStore(opts->keystore, o->dir, std::move(*secrets));
    if (!keys) {
      return keys.error();
    }
    ca::InitOptions init;
    init.organization = opts->org;
    init.key_type = *type;
    init.validity = *validity;
    init.no_expiry = opts->no_expiry;
    auto authority = ca::Authority::Init(o->dir, init, std::move(*keys), &SystemClock());
    if (!authority) {
      return authority.error();
    }
    const Certificate& root = authority->root();
    json j = CertJson(root);
    j["dir"] = o->dir;
    j["certificate_path"] = authority->RootCertPath();
    std::ostringstream h;
    h << "Created manufacturer root CA in " << o->dir << "\n"
      << "  subject:     " << root.Subject() << "\n"
      << "  key:         " << root.Key().Algorithm().Describe() << "\n"
      << "  valid until: " << FormatTime(root.NotAfter()) << "\n"
      << "  certificate: " << authority->RootCertPath() << "\n";
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

void AddCustomer(CLI::App* ca, Context& ctx, std::shared_ptr<CaOptions> o) {
  auto* customer = ca->add_subcommand("customer", "Per-customer intermediate CAs");
  customer->require_subcommand(1);

  auto* add = customer->add_subcommand("add", "Create customer NAME's intermediate CA");
  struct AddOpts {
    std::string name;
    std::string org;
    std::string key_type = "p256";
    std::string validity;
    bool no_expiry = false;
  };
  auto a = std::make_shared<AddOpts>();
  add->add_option("name", a->name, "Customer name (a-z, 0-9, '.', '_', '-')")->required();
  add->add_option("--org", a->org, "Organization name in the subject (default: NAME)");
  add->add_option("--key-type", a->key_type, "Key: p256, p384 or ed25519")->capture_default_str();
  add->add_option("--validity", a->validity, "Validity, e.g. 20y (default 20y, capped at root)");
  add->add_flag("--no-expiry", a->no_expiry, "No expiry (capped at the root's notAfter)");
  add->callback(Run(ctx, [&ctx, o, a]() -> Status {
    auto type = ParseKeyType(a->key_type);
    if (!type) {
      return type.error();
    }
    auto validity = ParseValidity(a->validity);
    if (!validity) {
      return validity.error();
    }
    auto authority = OpenAuthority(*o);
    if (!authority) {
      return authority.error();
    }
    ca::CustomerOptions opts;
    opts.organization = a->org;
    opts.key_type = *type;
    opts.validity = *validity;
    opts.no_expiry = a->no_expiry;
    auto start = std::chrono::steady_clock::now();
    auto cert = authority->AddCustomer(a->name, opts);
    if (!cert) {
      return cert.error();
    }
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    json j = CertJson(*cert);
    j["customer"] = a->name;
    j["certificate_path"] = authority->CustomerCertPath(a->name);
    j["chain_path"] = authority->CustomerChainPath(a->name);
    j["milliseconds"] = ms;
    std::ostringstream h;
    h << "Created customer '" << a->name << "' in " << std::fixed << std::setprecision(1) << ms
      << " ms\n"
      << "  subject:     " << cert->Subject() << "\n"
      << "  valid until: " << FormatTime(cert->NotAfter()) << "\n"
      << "  certificate: " << authority->CustomerCertPath(a->name) << "\n"
      << "  chain:       " << authority->CustomerChainPath(a->name) << "\n";
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));

  auto* list = customer->add_subcommand("list", "List customers");
  list->callback(Run(ctx, [&ctx, o]() -> Status {
    auto authority = OpenAuthority(*o);
    if (!authority) {
      return authority.error();
    }
    auto customers = authority->Customers();
    if (!customers) {
      return customers.error();
    }
    json arr = json::array();
    std::ostringstream h;
    h << std::left << std::setw(24) << "CUSTOMER" << std::setw(10) << "ISSUED"
      << "VALID UNTIL\n";
    for (const ca::CustomerInfo& c : *customers) {
      json j = CertJson(c.certificate);
      j["customer"] = c.name;
      j["organization"] = c.organization;
      j["issued"] = c.issued;
      arr.push_back(j);
      h << std::left << std::setw(24) << c.name << std::setw(10) << c.issued
        << FormatTime(c.certificate.NotAfter()) << "\n";
    }
    Succeed(ctx, json{{"customers", arr}}, h.str());
    return OkStatus();
  }));
}

void AddIssue(CLI::App* ca, Context& ctx, std::shared_ptr<CaOptions> o) {
  auto* cmd = ca->add_subcommand(
      "issue", "Issue certificates from CSRs (several CSRs: one transaction, all or nothing)");
  struct Opts {
    std::string customer;
    std::string profile;
    std::vector<std::string> csrs;
    std::string serial;
    std::vector<std::string> sans;
    std::string validity;
    bool no_expiry = false;
    std::string out;
    std::string out_dir;
    bool chain = false;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--customer", opts->customer, "Customer whose intermediate signs")->required();
  cmd->add_option("--profile", opts->profile, "device, server or operational")->required();
  cmd->add_option("csr", opts->csrs, "CSR files (PEM or DER; '-' reads standard input)")
      ->required();
  cmd->add_option("--serial", opts->serial,
                  "Device serial number (must match the CSR's serialNumber if it has one)");
  cmd->add_option("--san", opts->sans,
                  "subjectAltName for server certificates: dns:NAME, ip:ADDR (repeatable)")
      ->allow_extra_args(false);  // one value per --san, so a CSR path after it stays a CSR
  cmd->add_option("--validity", opts->validity, "Validity, e.g. 397d (default: the profile's)");
  cmd->add_flag("--no-expiry", opts->no_expiry,
                "Device profile: notAfter 99991231235959Z (capped at the issuer's notAfter)");
  cmd->add_option("--out", opts->out, "Write the certificate here (one CSR only)");
  cmd->add_option("--out-dir", opts->out_dir, "Write each certificate as DIR/<csr name>.pem");
  cmd->add_flag("--chain", opts->chain, "Append the customer intermediate to each certificate");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto profile = ca::ParseIssuableProfile(opts->profile);
    if (!profile) {
      return profile.error();
    }
    auto validity = ParseValidity(opts->validity);
    if (!validity) {
      return validity.error();
    }
    if (!opts->out.empty() && opts->csrs.size() != 1) {
      return Error(Code::kInvalidArgument, "--out takes one CSR; use --out-dir for several");
    }
    if (!opts->serial.empty() && opts->csrs.size() != 1) {
      return Error(Code::kInvalidArgument, "--serial applies to one CSR only");
    }
    std::vector<SubjectAltName> sans;
    for (const std::string& s : opts->sans) {
      auto san = ParseSubjectAltName(s);
      if (!san) {
        return san.error();
      }
      sans.push_back(*san);
    }
    // Parse every CSR before touching the CA, so one bad file costs nothing.
    std::vector<ca::IssueRequest> requests;
    for (const std::string& path : opts->csrs) {
      Result<std::string> bytes =
          path == "-"
              ? Result<std::string>(std::string(std::istreambuf_iterator<char>(std::cin), {}))
              : ReadFile(path);
      if (!bytes) {
        return bytes.error();
      }
      auto csr = Csr::Parse(AsBytes(*bytes));
      if (!csr) {
        return csr.error().WithContext(path);
      }
      ca::IssueRequest r{*csr, *profile, std::nullopt, sans, *validity, opts->no_expiry};
      if (!opts->serial.empty()) {
        r.serial_number = opts->serial;
      }
      requests.push_back(std::move(r));
    }
    auto authority = OpenAuthority(*o);
    if (!authority) {
      return authority.error();
    }
    auto issuer = authority->IssuerFor(opts->customer);
    if (!issuer) {
      return issuer.error();
    }
    auto results = issuer->IssueBatch(requests, /*all_or_nothing=*/true);
    std::string refusals;
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i] && results[i].error().code() != Code::kFailedPrecondition) {
        refusals +=
            (refusals.empty() ? "" : "; ") + opts->csrs[i] + ": " + results[i].error().message();
      }
    }
    if (!refusals.empty()) {
      // Report the first refusal's code, naming every refused file.
      for (auto& r : results) {
        if (!r && r.error().code() != Code::kFailedPrecondition) {
          return Error(r.error().code(), (results.size() > 1 ? "nothing issued: " : "") + refusals,
                       r.error().detail());
        }
      }
    }
    for (auto& r : results) {
      if (!r) {
        return r.error();
      }
    }
    // Every certificate is in the issuance log now; only then is it handed out.
    json arr = json::array();
    std::ostringstream h;
    std::string chain_pem = opts->chain ? issuer->certificate().ToPem() : "";
    for (size_t i = 0; i < results.size(); ++i) {
      const Certificate& cert = results[i]->certificate;
      std::string pem = cert.ToPem() + chain_pem;
      json j = CertJson(cert);
      j["csr"] = opts->csrs[i];
      j["notes"] = results[i]->notes;
      std::string dest;
      if (!opts->out.empty()) {
        dest = opts->out;
      } else if (!opts->out_dir.empty()) {
        std::filesystem::path p(opts->csrs[i]);
        dest = opts->out_dir + "/" + p.stem().string() + ".pem";
      }
      if (!dest.empty()) {
        if (auto s = WriteFileAtomic(dest, pem, 0644); !s) {
          return s.error().WithContext("certificate " + cert.SerialHex() +
                                       " is issued and logged, but");
        }
        j["path"] = dest;
        h << "Issued " << cert.SerialHex() << " " << cert.Subject() << " -> " << dest << "\n";
      } else {
        h << pem;
      }
      for (const std::string& note : results[i]->notes) {
        std::cerr << "hallmark: note: " << opts->csrs[i] << ": " << note << "\n";
      }
      if (dest.empty()) {
        j["pem"] = pem;
      }
      arr.push_back(std::move(j));
    }
    Succeed(ctx, json{{"issued", arr}}, h.str());
    return OkStatus();
  }));
}

void AddRevoke(CLI::App* ca, Context& ctx, std::shared_ptr<CaOptions> o) {
  auto* cmd = ca->add_subcommand("revoke", "Revoke a certificate by serial number");
  struct Opts {
    std::string serial;
    std::string reason = "unspecified";
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("serial", opts->serial, "Serial number (hex, as 'ca list' prints it)")
      ->required();
  cmd->add_option("--reason", opts->reason,
                  "keyCompromise, cACompromise, affiliationChanged, superseded, "
                  "cessationOfOperation, certificateHold, privilegeWithdrawn, unspecified")
      ->capture_default_str();
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto reason = ParseRevocationReason(opts->reason);
    if (!reason) {
      return reason.error();
    }
    auto authority = OpenAuthority(*o);
    if (!authority) {
      return authority.error();
    }
    auto record = authority->Revoke(opts->serial, *reason);
    if (!record) {
      return record.error();
    }
    std::ostringstream h;
    h << "Revoked " << record->serial << " (" << RevocationReasonName(*reason) << ")\n"
      << "  subject: " << record->subject << "\n"
      << "  issuer:  " << record->issuer << "\n"
      << "Publish a new CRL: hallmark ca crl "
      << (record->issuer == ca::kRootName ? "--root" : "--customer " + record->issuer) << "\n";
    Succeed(ctx, RecordJson(*record), h.str());
    return OkStatus();
  }));
}

void AddCrl(CLI::App* ca, Context& ctx, std::shared_ptr<CaOptions> o) {
  auto* cmd = ca->add_subcommand("crl", "Sign a CRL for a customer intermediate or the root");
  struct Opts {
    std::string customer;
    bool root = false;
    std::string out;
    std::string next_update = "7d";
  };
  auto opts = std::make_shared<Opts>();
  auto* cust = cmd->add_option("--customer", opts->customer, "Customer whose CRL to sign");
  auto* root = cmd->add_flag("--root", opts->root, "Sign the root's CRL (revoked intermediates)");
  cust->excludes(root);
  cmd->add_option("--out", opts->out, "Write the CRL (PEM) here instead of standard output");
  cmd->add_option("--next-update", opts->next_update, "How long the CRL is valid")
      ->capture_default_str();
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    if (opts->customer.empty() && !opts->root) {
      return Error(Code::kInvalidArgument, "give --customer NAME or --root");
    }
    auto validity = ParseDuration(opts->next_update);
    if (!validity) {
      return validity.error();
    }
    auto authority = OpenAuthority(*o);
    if (!authority) {
      return authority.error();
    }
    std::string name = opts->root ? std::string(ca::kRootName) : opts->customer;
    auto crl = authority->MakeCrl(name, *validity);
    if (!crl) {
      return crl.error();
    }
    json j = {{"authority", name},
              {"revoked", crl->RevokedCount()},
              {"this_update", FormatTime(crl->ThisUpdate())},
              {"next_update", FormatTime(crl->NextUpdate())}};
    std::string human;
    if (!opts->out.empty()) {
      if (auto s = WriteFileAtomic(opts->out, crl->ToPem(), 0644); !s) {
        return s.error();
      }
      j["path"] = opts->out;
      human = "Wrote CRL for " + name + " with " + std::to_string(crl->RevokedCount()) +
              " revoked certificate(s) to " + opts->out + " (next update " +
              FormatTime(crl->NextUpdate()) + ")\n";
    } else {
      j["pem"] = crl->ToPem();
      human = crl->ToPem();
    }
    Succeed(ctx, j, human);
    return OkStatus();
  }));
}

void AddList(CLI::App* ca, Context& ctx, std::shared_ptr<CaOptions> o) {
  auto* cmd = ca->add_subcommand("list", "List issued certificates, newest first");
  struct Opts {
    std::string customer;
    int limit = 100;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--customer", opts->customer, "Only those issued by this customer's CA");
  cmd->add_option("--limit", opts->limit, "At most this many")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto authority = OpenAuthority(*o);
    if (!authority) {
      return authority.error();
    }
    auto records = authority->log().List(opts->customer, opts->limit);
    if (!records) {
      return records.error();
    }
    json arr = json::array();
    std::ostringstream h;
    h << std::left << std::setw(34) << "SERIAL" << std::setw(12) << "ISSUER" << std::setw(13)
      << "PROFILE" << std::setw(9) << "STATUS"
      << "SUBJECT\n";
    for (const ca::IssuedRecord& r : *records) {
      arr.push_back(RecordJson(r));
      h << std::left << std::setw(34) << r.serial << std::setw(12) << r.issuer << std::setw(13)
        << r.profile << std::setw(9) << (r.revoked_at ? "revoked" : "valid") << r.subject << "\n";
    }
    Succeed(ctx, json{{"certificates", arr}}, h.str());
    return OkStatus();
  }));
}

void AddShow(CLI::App* ca, Context& ctx, std::shared_ptr<CaOptions> o) {
  auto* cmd = ca->add_subcommand("show", "Show one issued certificate");
  auto serial = std::make_shared<std::string>();
  cmd->add_option("serial", *serial, "Serial number (hex)")->required();
  cmd->callback(Run(ctx, [&ctx, o, serial]() -> Status {
    auto authority = OpenAuthority(*o);
    if (!authority) {
      return authority.error();
    }
    auto r = authority->Find(*serial);
    if (!r) {
      return r.error();
    }
    auto cert = Certificate::FromDer(r->der);
    if (!cert) {
      return Error(Code::kDataLoss, "certificate " + *serial + " in the issuance log is corrupt");
    }
    json j = RecordJson(*r);
    j["pem"] = cert->ToPem();
    std::ostringstream h;
    h << "serial:     " << r->serial << "\n"
      << "issuer:     " << r->issuer << "\n"
      << "profile:    " << r->profile << "\n"
      << "subject:    " << r->subject << "\n"
      << "device id:  " << r->device_id << "\n"
      << "valid:      " << FormatTime(r->not_before) << " .. " << FormatTime(r->not_after) << "\n"
      << "status:     "
      << (r->revoked_at ? "revoked " + FormatTime(*r->revoked_at) + " (" +
                              std::string(RevocationReasonName(r->reason)) + ")"
                        : std::string("valid"))
      << "\n"
      << cert->ToPem();
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

}  // namespace

void AddCaCommands(CLI::App& app, Context& ctx) {
  auto* ca = app.add_subcommand("ca", "Production-line certificate authority");
  ca->require_subcommand(1);
  auto o = std::make_shared<CaOptions>();
  ca->add_option("--dir", o->dir, "CA directory")
      ->envname("HALLMARK_CA_DIR")
      ->capture_default_str();
  AddPassphraseOption(ca, &o->passphrase_file);
  AddPinOption(ca, &o->pin_file);
  AddInit(ca, ctx, o);
  AddCustomer(ca, ctx, o);
  AddIssue(ca, ctx, o);
  AddRevoke(ca, ctx, o);
  AddCrl(ca, ctx, o);
  AddList(ca, ctx, o);
  AddShow(ca, ctx, o);
}

}  // namespace hallmark::cli
