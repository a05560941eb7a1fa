// `hallmark demo`: the end-to-end story, runnable in seconds, checked by tools nobody here wrote.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "ca/authority.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/demo.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/file.h"
#include "core/subprocess.h"
#include "device/key_store.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

}  // namespace

void Demo::Check(const std::string& what, bool as_expected, const std::string& outcome) {
  std::cout << "      " << std::left << std::setw(52) << what << " -> " << outcome
            << (as_expected ? "" : "   [UNEXPECTED]") << "\n";
  summary_["checks"].push_back({{"check", what}, {"outcome", outcome}, {"ok", as_expected}});
  if (!as_expected) {
    ++failures_;
  }
}

Result<std::pair<int, std::string>> Demo::Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunProcess(argv);
  if (!r) {
    return r.error();
  }
  std::string text = r->out + r->err;
  // openssl verify prints "error 23 at 0 depth lookup: certificate revoked" among other lines;
  // keep the most telling one.
  std::string best;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("error") != std::string::npos && line.find("lookup") != std::string::npos) {
      best = line.substr(line.find("lookup:") == std::string::npos ? 0 : line.find("lookup:") + 8);
      break;
    }
    if (best.empty() && !line.empty()) {
      best = line;
    }
  }
  return std::make_pair(r->exit_code, best);
}

Status Demo::MakeCa() {
  std::cout << "[1] The manufacturer's root CA and one intermediate per customer\n";
  Stopwatch t;
  ca::InitOptions init;
  init.organization = "Demo Silicon Ltd";
  auto authority = ca::Authority::Init(dir_ + "/ca", init, std::nullopt, &SystemClock());
  if (!authority) {
    return authority.error();
  }
  ca_.emplace(std::move(*authority));
  std::cout << "      root: " << ca_->root().Subject() << ", "
            << ca_->root().Key().Algorithm().Describe() << ", valid until "
            << FormatTime(ca_->root().NotAfter()) << " (" << std::fixed << std::setprecision(1)
            << t.Ms() << " ms)\n";
  for (const char* name : {"acme", "globex"}) {
    Stopwatch tc;
    ca::CustomerOptions opts;
    opts.organization = std::string(name) == "acme" ? "ACME Thermostats" : "Globex Meters";
    auto cert = ca_->AddCustomer(name, opts);
    if (!cert) {
      return cert.error();
    }
    double ms = tc.Ms();
    std::cout << "      customer " << std::left << std::setw(7) << name << cert->Subject() << "  ("
              << std::setprecision(1) << ms << " ms)\n";
    summary_["customer_ca_ms"][name] = ms;
  }
  return OkStatus();
}

Result<std::string> Demo::MakeDevice(const std::string& customer, const std::string& serial) {
  std::string name = customer + "-" + serial;
  if (auto s = MakeDirectory(dir_ + "/devices/" + name, 0700); !s) {
    return s.error();
  }
  // The key is made "on the device" (its key store); the CA only ever sees the CSR.
  device::FileKeyStore store(DevicePath(name, "key.pem"), std::nullopt);
  if (auto pub = store.Create(KeyType::kP256); !pub) {
    return pub.error();
  }
  auto key = store.Load();
  if (!key) {
    return key.error();
  }
  DistinguishedName subject;
  subject.serial_number = serial;
  auto csr = Csr::Create(*key, subject);
  if (!csr) {
    return csr.error();
  }
  if (auto s = WriteFileAtomic(DevicePath(name, "csr.pem"), csr->ToPem(), 0644); !s) {
    return s.error();
  }
  return name;
}

Status Demo::MakeDevices() {
  std::cout << "\n[2] Devices on the line make their own keys; the CA signs their CSRs\n";
  std::vector<ca::IssueRequest> requests;
  for (int i = 1; i <= devices_; ++i) {
    std::ostringstream serial;
    serial << "ACME-" << std::setw(6) << std::setfill('0') << i;
    auto name = MakeDevice("acme", serial.str());
    if (!name) {
      return name.error();
    }
    auto pem = ReadFile(DevicePath(*name, "csr.pem"));
    auto csr = pem ? Csr::Parse(AsBytes(*pem)) : Result<Csr>(pem.error());
    if (!csr) {
      return csr.error();
    }
    requests.push_back(ca::IssueRequest{*csr, ca::Profile::kDevice, std::nullopt, {}, {}, false});
    acme_devices_.push_back(*name);
  }
  auto issuer = ca_->IssuerFor("acme");
  if (!issuer) {
    return issuer.error();
  }
  Stopwatch t;
  auto results = issuer->IssueBatch(requests, true);
  double ms = t.Ms();
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) {
      return results[i].error();
    }
    Status s = WriteFileAtomic(DevicePath(acme_devices_[i], "cert.pem"),
                               results[i]->certificate.ToPem(), 0644);
    if (!s) {
      return s;
    }
  }
  std::cout << "      issued " << results.size()
            << " ACME IDevIDs in one transaction: " << std::setprecision(1) << ms << " ms ("
            << std::setprecision(0) << static_cast<double>(results.size()) / (ms / 1000.0)
            << " per second, CSR checks and log included)\n";
  const Certificate& first = results.front()->certificate;
  std::cout << "      e.g. " << first.Subject() << ", serial " << first.SerialHex() << ", notAfter "
            << FormatTime(first.NotAfter()) << "\n";
  summary_["devices_issued"] = results.size();
  summary_["issue_batch_ms"] = ms;

  auto globex = MakeDevice("globex", "GLX-000001");
  if (!globex) {
    return globex.error();
  }
  globex_device_ = *globex;
  auto gpem = ReadFile(DevicePath(globex_device_, "csr.pem"));
  auto gcsr = gpem ? Csr::Parse(AsBytes(*gpem)) : Result<Csr>(gpem.error());
  if (!gcsr) {
    return gcsr.error();
  }
  auto gissuer = ca_->IssuerFor("globex");
  if (!gissuer) {
    return gissuer.error();
  }
  auto gcert = gissuer->Issue(ca::IssueRequest{*gcsr, ca::Profile::kDevice, {}, {}, {}, false});
  if (!gcert) {
    return gcert.error();
  }
  return WriteFileAtomic(DevicePath(globex_device_, "cert.pem"), gcert->certificate.ToPem(), 0644);
}

Status Demo::VerifyWithOpenssl() {
  std::cout << "\n[3] openssl verify -CAfile root.pem -untrusted customers/acme/ca.pem cert.pem\n";
  int ok = 0;
  std::string first_line;
  for (const std::string& name : acme_devices_) {
    auto r = Openssl({"verify", "-CAfile", ca_->RootCertPath(), "-untrusted",
                      ca_->CustomerCertPath("acme"), DevicePath(name, "cert.pem")});
    if (!r) {
      return r.error();
    }
    if (r->first == 0) {
      ++ok;
    }
    if (first_line.empty()) {
      first_line = r->second;
    }
  }
  std::cout << "      " << first_line << "\n";
  Check("ACME devices verified by openssl", ok == static_cast<int>(acme_devices_.size()),
        std::to_string(ok) + "/" + std::to_string(acme_devices_.size()) + " OK");
  return OkStatus();
}

Status Demo::PerCustomerTrust() {
  std::cout << "\n[4] Per-customer trust: ACME's server trusts ACME's intermediate, not the "
               "vendor root\n";
  auto mine = Openssl({"verify", "-partial_chain", "-CAfile", ca_->CustomerCertPath("acme"),
                       DevicePath(acme_devices_.front(), "cert.pem")});
  auto theirs = Openssl({"verify", "-partial_chain", "-CAfile", ca_->CustomerCertPath("acme"),
                         DevicePath(globex_device_, "cert.pem")});
  auto vendor = Openssl({"verify", "-CAfile", ca_->RootCertPath(), "-untrusted",
                         ca_->CustomerCertPath("globex"), DevicePath(globex_device_, "cert.pem")});
  if (!mine || !theirs || !vendor) {
    return !mine ? mine.error() : !theirs ? theirs.error() : vendor.error();
  }
  Check("ACME device, anchor = ACME intermediate", mine->first == 0,
        mine->first == 0 ? "accepted" : "refused: " + mine->second);
  Check("Globex device, vendor root as anchor", vendor->first == 0,
        vendor->first == 0 ? "accepted (the root proves only who made it)" : vendor->second);
  Check("Globex device, anchor = ACME intermediate", theirs->first != 0,
        theirs->first != 0 ? "refused: " + theirs->second : "accepted");
  return OkStatus();
}

Status Demo::Revocation() {
  std::cout << "\n[5] Revocation: revoke one ACME device and publish ACME's CRL\n";
  const std::string victim = acme_devices_.size() > 1 ? acme_devices_[1] : acme_devices_[0];
  revoked_device_ = victim;
  auto pem = ReadFile(DevicePath(victim, "cert.pem"));
  auto cert = pem ? Certificate::FromPem(*pem) : Result<Certificate>(pem.error());
  if (!cert) {
    return cert.error();
  }
  if (auto r = ca_->Revoke(cert->SerialHex(), RevocationReason::kKeyCompromise); !r) {
    return r.error();
  }
  auto crl = ca_->MakeCrl("acme", 7 * 86400);
  if (!crl) {
    return crl.error();
  }
  std::string crl_path = dir_ + "/ca/customers/acme/crl.pem";
  if (auto s = WriteFileAtomic(crl_path, crl->ToPem(), 0644); !s) {
    return s;
  }
  auto parsed = Openssl({"crl", "-in", crl_path, "-noout", "-crlnumber"});
  auto revoked = Openssl({"verify", "-crl_check", "-CAfile", ca_->RootCertPath(), "-untrusted",
                          ca_->CustomerCertPath("acme"), "-CRLfile", crl_path,
                          DevicePath(victim, "cert.pem")});
  auto good = Openssl({"verify", "-crl_check", "-CAfile", ca_->RootCertPath(), "-untrusted",
                       ca_->CustomerCertPath("acme"), "-CRLfile", crl_path,
                       DevicePath(acme_devices_.front(), "cert.pem")});
  if (!parsed || !revoked || !good) {
    return !parsed ? parsed.error() : !revoked ? revoked.error() : good.error();
  }
  Check("openssl crl parses the CRL", parsed->first == 0, parsed->second);
  Check("revoked device, openssl verify -crl_check", revoked->first != 0,
        revoked->first != 0 ? "refused: " + revoked->second : "accepted");
  Check("other device, openssl verify -crl_check", good->first == 0,
        good->first == 0 ? "accepted" : "refused: " + good->second);
  return OkStatus();
}

Status Demo::Refusals() {
  std::cout << "\n[6] Bad requests are refused; nothing is issued or logged\n";
  auto before = ca_->log().CountIssued("acme");
  if (!before) {
    return before.error();
  }
  auto issuer = ca_->IssuerFor("acme");
  if (!issuer) {
    return issuer.error();
  }
  auto try_csr = [&](const std::string& what, std::string_view bytes) {
    auto csr = Csr::Parse(AsBytes(bytes));
    if (!csr) {
      Check(what, true, "refused: " + csr.error().message());
      return;
    }
    auto r = issuer->Issue(ca::IssueRequest{*csr, ca::Profile::kDevice, {}, {}, {}, false});
    Check(what, !r, r ? "ISSUED" : "refused: " + r.error().message());
  };
  std::string weak = dir_ + "/weak.csr";
  auto made = RunProcess({"openssl", "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout",
                          "/dev/null", "-subj", "/serialNumber=WEAK-1", "-out", weak});
  if (made && made->exit_code == 0) {
    auto text = ReadFile(weak);
    try_csr("RSA-1024 CSR made by openssl req", text ? *text : "");
  }
  std::string ca_req = dir_ + "/ca-request.csr";
  made =
      RunProcess({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", "/dev/null", "-subj", "/serialNumber=ROGUE-1", "-addext",
                  "basicConstraints=critical,CA:TRUE", "-out", ca_req});
  if (made && made->exit_code == 0) {
    auto text = ReadFile(ca_req);
    try_csr("CSR asking for CA:TRUE", text ? *text : "");
  }
  auto good = ReadFile(DevicePath(acme_devices_.front(), "csr.pem"));
  if (good) {
    auto csr = Csr::Parse(AsBytes(*good));
    if (csr) {
      Bytes der = csr->ToDer();
      der[der.size() - 5] ^= 0x01;  // inside the signature
      try_csr("CSR with a tampered signature",
              std::string_view(reinterpret_cast<const char*>(der.data()), der.size()));
      std::string truncated = good->substr(0, good->size() / 2);
      try_csr("truncated CSR", truncated);
    }
  }
  try_csr("random garbage bytes", "\x30\x82\xff\xff garbage \x01\x02");
  auto unknown = ca_->IssuerFor("initech");
  Check("unknown customer 'initech'", !unknown,
        unknown ? "accepted" : "refused: " + unknown.error().message());
  auto after = ca_->log().CountIssued("acme");
  if (!after) {
    return after.error();
  }
  Check("ACME issuance log unchanged", *before == *after,
        std::to_string(*before) + " records before, " + std::to_string(*after) + " after");
  return OkStatus();
}

Status Demo::Run() {
  std::cout << "hallmark demo: provable device identities, from the production line to "
               "\"hello, is that you?\"\n  workspace: "
            << dir_ << "\n\n";
  if (Status s = MakeCa(); !s) {
    return s;
  }
  if (Status s = MakeDevices(); !s) {
    return s;
  }
  auto have_openssl = RunProcess({"openssl", "version"});
  if (!have_openssl || have_openssl->exit_code != 0) {
    return Error(Code::kFailedPrecondition,
                 "the demo checks its certificates with the openssl command; install it "
                 "(apt-get install openssl)");
  }
  for (auto step : {&Demo::VerifyWithOpenssl, &Demo::PerCustomerTrust, &Demo::Revocation,
                    &Demo::Refusals, &Demo::MakeRegistry, &Demo::StartServer, &Demo::Hellos,
                    &Demo::TlsRefusals, &Demo::BatchClaims, &Demo::ClaimRefusals,
                    &Demo::EngineerPresent, &Demo::OperationalCertificates}) {
    if (Status s = (this->*step)(); !s) {
      return s;
    }
  }
  std::cout << "\n"
            << (failures_ == 0 ? "All checks came out as expected."
                               : std::to_string(failures_) +
                                     " check(s) did NOT come out as "
                                     "expected.")
            << "\nTry it yourself:\n  openssl x509 -in "
            << DevicePath(acme_devices_.front(), "cert.pem")
            << " -noout -text\n  hallmark ca list --dir " << dir_ << "/ca\n  hallmark batch --db "
            << dir_ << "/registry.db --registrar-key " << dir_ << "/registrar.key list\n";
  return OkStatus();
}

void AddDemoCommand(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("demo", "Run the end-to-end demonstration");
  struct Opts {
    std::string dir;
    int devices = 200;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--dir", opts->dir, "Workspace (default: a new directory under /tmp)");
  cmd->add_option("--devices", opts->devices, "How many ACME devices to provision")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->callback(Run(ctx, [&ctx, opts]() -> Status {
    std::string dir = opts->dir;
    if (dir.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "hallmark-demo-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) {
        return Error(Code::kUnavailable, "cannot create a workspace under /tmp");
      }
      dir = tmpl;
    } else if (fs::exists(dir) && !fs::is_empty(dir)) {
      return Error(Code::kAlreadyExists, "demo workspace " + dir + " is not empty");
    }
    bool json_out = ctx.json;
    // The demo narrates on stdout; with --json the narration goes to stderr instead.
    std::streambuf* saved = nullptr;
    if (json_out) {
      saved = std::cout.rdbuf(std::cerr.rdbuf());
    }
    Demo demo(dir, opts->devices);
    Status s = demo.Run();
    if (saved != nullptr) {
      std::cout.rdbuf(saved);
    }
    if (!s) {
      return s;
    }
    json j = demo.Summary();
    j["workspace"] = dir;
    if (!demo.AllAsExpected()) {
      if (json_out) {
        std::cout << j.dump(2) << "\n";
      }
      return Error(Code::kInternal, "some demo checks did not come out as expected");
    }
    Succeed(ctx, j, "");
    return OkStatus();
  }));
}

}  // namespace hallmark::cli
