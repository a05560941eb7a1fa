// `hallmark demo`, second half: the owner's registry fed by a factory manifest, the mutual-TLS
// server, and hundreds of devices of both provisioning paths saying hello.
#include <spdlog/spdlog.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/demo.h"
#include "cli/enroll_config.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/file.h"
#include "device/key_store.h"
#include "device/tls_client.h"
#include "registry/manifest.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"
#include "registry/serving_directory.h"

namespace hallmark::cli {

Demo::~Demo() {
  if (server_) {
    server_->Stop();
  }
  if (server_thread_.joinable()) {
    server_thread_.join();
  }
}

Status Demo::MakeRegistry() {
  std::cout << "\n[7] Extract path: the factory reads each device's public key into a signed "
               "manifest; the owner imports it\n";
  auto registrar = registry::RegistrarKey::Create(dir_ + "/registrar.key", std::nullopt);
  if (!registrar) {
    return registrar.error();
  }
  if (auto s = WriteFileAtomic(dir_ + "/registrar.key.pub", registrar->Public().ToPem(), 0644);
      !s) {
    return s;
  }
  auto reg = registry::Registry::Create(dir_ + "/registry.db", *registrar, &SystemClock());
  if (!reg) {
    return reg.error();
  }
  auto factory = PrivateKey::Generate(KeyType::kP256);
  if (!factory) {
    return factory.error();
  }
  std::ostringstream manifest;
  for (int i = 1; i <= devices_; ++i) {
    auto key = PrivateKey::Generate(KeyType::kP256);
    if (!key) {
      return key.error();
    }
    std::ostringstream serial;
    serial << "THERMO-" << std::setw(6) << std::setfill('0') << i;
    auto line = registry::FormatManifestLine(key->Public(), serial.str(), *factory);
    if (!line) {
      return line.error();
    }
    manifest << *line << "\n";
    extracted_.push_back(std::move(*key));
  }
  if (auto s = WriteFileAtomic(dir_ + "/manifest.jsonl", manifest.str(), 0644); !s) {
    return s;
  }
  std::istringstream in(manifest.str());
  registry::ImportOptions options;
  options.owner = "ACME Thermostats";
  Stopwatch t;
  auto summary = reg->Import(*registrar, in, factory->Public(), options);
  if (!summary) {
    return summary.error();
  }
  double ms = t.Ms();
  std::cout << "      imported " << summary->counts.imported << " identities (signatures checked, "
            << "one transaction) in " << std::fixed << std::setprecision(1) << ms
            << " ms; tree head " << summary->head.tree_size << " signed by the registrar\n";
  summary_["registry_imported"] = summary->counts.imported;
  auto directory = registry::ServingDirectory::Open(dir_ + "/registry.db", registrar->Public());
  if (!directory) {
    return directory.error();
  }
  directory_ = std::move(*directory);
  auto report = reg->Verify(registrar->Public());
  Check("registry verify (records, Merkle log, signed head)", report.has_value() && report->clean(),
        report ? (report->clean() ? "clean" : "findings") : report.error().message());
  return OkStatus();
}

Status Demo::StartServer() {
  std::cout << "\n[8] The owner's server: TLS 1.3 mutual authentication on 127.0.0.1, one listener "
               "per policy\n";
  // The server's certificate comes from ACME's CA; devices pin ACME's intermediate.
  device::FileKeyStore store(dir_ + "/server.key", std::nullopt);
  if (auto pub = store.Create(KeyType::kP256); !pub) {
    return pub.error();
  }
  auto key = store.Load();
  if (!key) {
    return key.error();
  }
  auto issuer = ca_->IssuerFor("acme");
  if (!issuer) {
    return issuer.error();
  }
  auto csr =
      Csr::Create(*key, {}, std::vector<SubjectAltName>{*ParseSubjectAltName("ip:127.0.0.1")});
  if (!csr) {
    return csr.error();
  }
  auto cert = issuer->Issue(ca::IssueRequest{*csr, ca::Profile::kServer, {}, {}, {}, false});
  if (!cert) {
    return cert.error();
  }
  if (auto s = WriteFileAtomic(dir_ + "/server.pem",
                               cert->certificate.ToPem() + issuer->certificate().ToPem(), 0644);
      !s) {
    return s;
  }
  // The demo narrates; the server's own log (which warns of each refused clone or CSR the demo
  // sends) would interleave with it.
  spdlog::set_level(spdlog::level::err);
  server::ServerConfig config;
  config.certificate = dir_ + "/server.pem";
  config.private_key = dir_ + "/server.key";
  config.threads = 2;
  config.handshake_timeout = std::chrono::milliseconds(2000);
  config.registry_refresh = std::chrono::milliseconds(50);
  config.listeners.push_back({{"127.0.0.1", 0},
                              "ca",
                              {ca_->CustomerCertPath("acme")},
                              {dir_ + "/ca/customers/acme/crl.pem"}});
  config.listeners.push_back({{"127.0.0.1", 0}, "registry", {}, {}});
  server::ListenerConfig field{{"127.0.0.1", 0}, "registry", {}, {}};
  field.admit_unknown = true;
  config.listeners.push_back(field);
  auto srv = server::Server::Create(config, directory_.get(), &SystemClock());
  if (!srv) {
    return srv.error();
  }
  server_ = std::move(*srv);
  // The enrollment endpoints (docs/enrollment.md), mounted as `hallmark serve` mounts its
  // [enroll] table. The server gets its own enrollment key: the registrar key stays offline.
  auto enrollment = registry::RegistrarKey::Create(dir_ + "/enrollment.key", std::nullopt);
  if (!enrollment) {
    return enrollment.error();
  }
  enrollment_key_ = enrollment->Public();
  enroll::EnrollConfig enroll;
  enroll.registry_db = dir_ + "/registry.db";
  enroll.registrar_public_key = dir_ + "/registrar.key.pub";
  enroll.enrollment_key = dir_ + "/enrollment.key";
  enroll.ca_dir = dir_ + "/ca";
  enroll.ca_name = "acme";
  // Every simulated device connects from 127.0.0.1, which the per-address limit would throttle.
  enroll.rate_per_source = {1000.0, 1000.0};
  if (auto s = MountEnrollHandlers(*server_, directory_.get(), enroll); !s) {
    return s;
  }
  if (auto s = server_->Start(); !s) {
    return s;
  }
  auto listeners = server_->Listeners();
  ca_port_ = listeners[0].endpoint.port;
  registry_port_ = listeners[1].endpoint.port;
  enroll_port_ = listeners[2].endpoint.port;
  server_thread_ = std::thread([this]() { server_->Run(); });
  std::cout << "      ca policy       on 127.0.0.1:" << ca_port_
            << "  (anchor: ACME's intermediate, ACME's CRL)\n"
            << "      registry policy on 127.0.0.1:" << registry_port_
            << "  (signed records, registrar public key only)\n"
            << "      enrollment      on 127.0.0.1:" << enroll_port_
            << "  (registry policy; unknown keys may only claim or ask for approval)\n";
  return OkStatus();
}

device::ClientOptions Demo::Client(uint16_t port) {
  device::ClientOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  if (auto pin = ca_->CustomerCertificate("acme"); pin) {
    options.trust.push_back(*pin);
  }
  options.timeout = std::chrono::milliseconds(5000);
  return options;
}

bool Demo::Hello(const PrivateKey& key, const std::vector<Certificate>& chain, uint16_t port,
                 std::string* out_outcome) {
  auto reply = device::Get(key, chain, Client(port), "/v1/hello");
  if (!reply) {
    *out_outcome = "refused (" + reply.error().message() + ")";
    return false;
  }
  auto body = nlohmann::json::parse(reply->body, nullptr, false);
  *out_outcome = reply->status == 200 && !body.is_discarded()
                     ? "hello, " + body.value("serial", std::string("?")) + " (" +
                           body.value("policy", std::string("?")) + ")"
                     : "HTTP " + std::to_string(reply->status);
  return reply->status == 200;
}

std::optional<double> Demo::HelloUntil(const PrivateKey& key, const std::vector<Certificate>& chain,
                                       uint16_t port, bool accepted, std::string* out_outcome) {
  Stopwatch t;
  for (int i = 0; i < 500; ++i) {
    if (Hello(key, chain, port, out_outcome) == accepted) {
      return t.Ms();
    }
  }
  return std::nullopt;
}

Status Demo::Hellos() {
  std::cout << "\n[9] \"Hello, is that you?\" Every device connects and asks who the server "
               "thinks it is\n";
  int ok = 0;
  int expected = 0;
  std::string sample;
  Stopwatch t;
  for (const std::string& name : acme_devices_) {
    if (name == revoked_device_) {
      continue;
    }
    ++expected;
    device::FileKeyStore store(DevicePath(name, "key.pem"), std::nullopt);
    auto key = store.Load();
    auto pem = ReadFile(DevicePath(name, "cert.pem"));
    auto cert = pem ? Certificate::FromPem(*pem) : Result<Certificate>(pem.error());
    if (!key || !cert) {
      return !key ? key.error() : cert.error();
    }
    std::string outcome;
    ok += Hello(*key, {*cert}, ca_port_, &outcome) ? 1 : 0;
    if (sample.empty()) {
      sample = outcome;
    }
  }
  double ca_ms = t.Ms();
  Check(
      "inject path: ACME IDevIDs on the ca listener", ok == expected,
      std::to_string(ok) + "/" + std::to_string(expected) + " said hello, e.g. \"" + sample + "\"");
  int reg_ok = 0;
  Stopwatch t2;
  for (const PrivateKey& key : extracted_) {
    auto self = device::SelfSignedCertificate(key, SystemClock());
    if (!self) {
      return self.error();
    }
    std::string outcome;
    reg_ok += Hello(key, {*self}, registry_port_, &outcome) ? 1 : 0;
    if (&key == &extracted_.front()) {
      sample = outcome;
    }
  }
  double reg_ms = t2.Ms();
  Check("extract path: registered keys, self-signed certs",
        reg_ok == static_cast<int>(extracted_.size()),
        std::to_string(reg_ok) + "/" + std::to_string(extracted_.size()) + " said hello, e.g. \"" +
            sample + "\"");
  std::cout << "      " << expected + static_cast<int>(extracted_.size())
            << " full mutual-TLS handshakes + GET /v1/hello in " << std::fixed
            << std::setprecision(0) << ca_ms + reg_ms << " ms (one connection at a time, client "
            << "and server on the same 2 cores)\n";
  summary_["hellos"] = {{"ca", ok}, {"registry", reg_ok}};
  return OkStatus();
}

Status Demo::TlsRefusals() {
  std::cout << "\n[10] Ways in that must fail, each next to a legitimate twin above\n";
  std::string outcome;
  auto attempt = [&](const std::string& what, const PrivateKey& key,
                     const std::vector<Certificate>& chain, uint16_t port) {
    bool accepted = Hello(key, chain, port, &outcome);
    Check(what, !accepted, accepted ? "ACCEPTED: " + outcome : "refused");
  };
  auto load = [&](const std::string& name) -> Result<std::pair<PrivateKey, Certificate>> {
    device::FileKeyStore store(DevicePath(name, "key.pem"), std::nullopt);
    auto key = store.Load();
    auto pem = ReadFile(DevicePath(name, "cert.pem"));
    auto cert = pem ? Certificate::FromPem(*pem) : Result<Certificate>(pem.error());
    if (!key || !cert) {
      return !key ? key.error() : cert.error();
    }
    return std::make_pair(std::move(*key), std::move(*cert));
  };
  auto globex = load(globex_device_);
  auto revoked = load(revoked_device_);
  if (!globex || !revoked) {
    return !globex ? globex.error() : revoked.error();
  }
  attempt("Globex device (same vendor root) on ACME's server", globex->first, {globex->second},
          ca_port_);
  attempt("ACME device revoked on the CRL", revoked->first, {revoked->second}, ca_port_);
  auto stranger = PrivateKey::Generate(KeyType::kP256);
  auto stranger_cert = device::SelfSignedCertificate(*stranger, SystemClock());
  if (!stranger || !stranger_cert) {
    return !stranger ? stranger.error() : stranger_cert.error();
  }
  attempt("unknown key, self-signed, on the ca listener", *stranger, {*stranger_cert}, ca_port_);
  attempt("unknown key, self-signed, on the registry listener", *stranger, {*stranger_cert},
          registry_port_);
  auto acme_issuer = ca_->IssuerFor("acme");
  if (!acme_issuer) {
    return acme_issuer.error();
  }
  attempt("ACME's intermediate CA presented as a device", acme_issuer->key(),
          {acme_issuer->certificate()}, ca_port_);

  // Revoke one extracted device in the registry: the server's cache refreshes within 50 ms.
  auto session = OpenRegistrar();
  if (!session) {
    return session.error();
  }
  const PrivateKey& victim = extracted_.back();
  auto victim_cert = device::SelfSignedCertificate(victim, SystemClock());
  if (!victim_cert) {
    return victim_cert.error();
  }
  if (auto r = session->registry.Revoke(session->registrar, victim.Public().DeviceId(),
                                        "reported stolen");
      !r) {
    return r.error();
  }
  auto ms = HelloUntil(victim, {*victim_cert}, registry_port_, /*accepted=*/false, &outcome);
  Check("extracted device revoked in the registry", ms.has_value(),
        ms ? "refused " + std::to_string(static_cast<int>(*ms)) + " ms after revoke"
           : "still accepted");
  std::cout << "      server metrics: " << server_->metrics().handshakes() << " handshakes, "
            << server_->metrics().failures(server::HandshakeFailure::kPolicyRejected)
            << " refused by policy\n";
  return OkStatus();
}

}  // namespace hallmark::cli
