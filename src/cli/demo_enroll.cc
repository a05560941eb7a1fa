// `hallmark demo`, third part: enrollment in the field (docs/enrollment.md). Devices with a batch
// secret in their firmware claim with keys they make themselves, over mutual TLS; an operator
// approves a device in front of them; EST gives a claimed device an operational certificate that
// stock openssl checks.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/demo.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/file.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

constexpr char kOwner[] = "ACME Thermostats";
constexpr char kFieldBatch[] = "acme-field-1";
constexpr uint64_t kFieldBatchSize = 50;
constexpr char kTinyBatch[] = "acme-tiny-1";
constexpr int kMaxClaimers = 40;

std::string Serial(std::string_view prefix, int i) {
  std::ostringstream serial;
  serial << prefix << std::setw(6) << std::setfill('0') << i;
  return serial.str();
}

bool Answered(const Result<device::ServerReply>& reply, int status) {
  return reply.has_value() && reply->status == status;
}

// Answer describes the server's reply to a claim or an approval request: "HTTP 403: <reason>".
std::string Answer(const Result<device::ServerReply>& reply) {
  if (!reply) {
    return "no answer: " + reply.error().message();
  }
  auto body = json::parse(reply->body, nullptr, false);
  std::string reason = body.is_object() ? body.value("error", std::string()) : std::string();
  return "HTTP " + std::to_string(reply->status) + (reason.empty() ? "" : ": " + reason);
}

std::string Milliseconds(double ms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(ms < 10 ? 1 : 0) << ms << " ms";
  return out.str();
}

}  // namespace

Result<SecretBytes> Demo::CreateBatch(RegistrarSession& session, const std::string& id,
                                      uint64_t size) {
  SecretBytes secret = device::GenerateBatchSecret();
  auto verifier = device::DeriveBatchKey(secret, id);
  if (!verifier) {
    return verifier.error();
  }
  auto batch = session.registry.CreateBatch(
      session.registrar, registry::BatchRequest{id, kOwner, size, SystemClock().Now() + 86400,
                                                verifier->Public(), *enrollment_key_});
  if (!batch) {
    return batch.error();
  }
  std::cout << "      batch " << id << ": " << size << " devices, claims until "
            << FormatTime(batch->expires_at) << ", signed by the registrar (log entry "
            << batch->seq << ")\n";
  return secret;
}

Result<device::ServerReply> Demo::ClaimAs(const PrivateKey& key, const std::string& batch_id,
                                          const std::string& serial, const SecretBytes& secret) {
  return device::Claim(key, Client(enroll_port_), device::BatchClaim{batch_id, serial, &secret},
                       SystemClock());
}

Status Demo::BatchClaims() {
  std::cout << "\n[11] Batch secret: devices in the field make their own keys and claim a place "
               "in the registry\n";
  auto session = OpenRegistrar();
  if (!session) {
    return session.error();
  }
  auto secret = CreateBatch(*session, kFieldBatch, kFieldBatchSize);
  if (!secret) {
    return secret.error();
  }
  batch_secret_ = std::move(*secret);
  std::cout << "      the secret goes into the batch's firmware; the registry keeps only a "
               "verifier (an Ed25519 public key)\n";
  const int n = std::min(devices_, kMaxClaimers);
  std::string refusal;
  Stopwatch t;
  for (int i = 1; i <= n; ++i) {
    auto key = PrivateKey::Generate(KeyType::kP256);
    if (!key) {
      return key.error();
    }
    auto reply = ClaimAs(*key, kFieldBatch, Serial("FIELD-", i), batch_secret_);
    if (Answered(reply, 201)) {
      claimed_.emplace_back(std::move(*key), Serial("FIELD-", i));
    } else if (refusal.empty()) {
      refusal = ", first refusal: " + Answer(reply);
    }
  }
  double claim_ms = t.Ms();
  const int enrolled = static_cast<int>(claimed_.size());
  Check("claims: own key, secret proven on the TLS connection", enrolled == n,
        std::to_string(enrolled) + "/" + std::to_string(n) + " enrolled (HTTP 201)" + refusal);
  if (claimed_.empty()) {
    return Error(Code::kInternal,
                 "no device could claim through batch " + std::string(kFieldBatch) + refusal);
  }
  int hellos = 0;
  std::string sample;
  Stopwatch t2;
  for (const auto& [key, serial] : claimed_) {
    auto self = device::SelfSignedCertificate(key, SystemClock());
    if (!self) {
      return self.error();
    }
    std::string outcome;
    hellos += Hello(key, {*self}, registry_port_, &outcome) ? 1 : 0;
    if (sample.empty()) {
      sample = outcome;
    }
  }
  double hello_ms = t2.Ms();
  Check("claimed devices say hello with their own key", hellos == enrolled,
        std::to_string(hellos) + "/" + std::to_string(enrolled) +
            " on the registry listener, e.g. \"" + sample + "\"");
  std::cout << "      " << n << " claims (key generation, TLS 1.3 handshake, proof, signed "
            << "registry record) in " << Milliseconds(claim_ms) << ", " << enrolled << " hellos in "
            << Milliseconds(hello_ms) << "\n";
  summary_["enrollment"] = {
      {"claimed", enrolled}, {"hellos", hellos}, {"claims_ms", claim_ms}, {"hellos_ms", hello_ms}};
  return OkStatus();
}

Status Demo::ClaimRefusals() {
  std::cout << "\n[12] Claims that must fail, each next to a legitimate twin\n";
  auto stranger = PrivateKey::Generate(KeyType::kP256);
  auto clone = PrivateKey::Generate(KeyType::kP256);
  if (!stranger || !clone) {
    return !stranger ? stranger.error() : clone.error();
  }
  SecretBytes wrong = device::GenerateBatchSecret();
  auto reply = ClaimAs(*stranger, kFieldBatch, Serial("FIELD-", 999999), wrong);
  Check("claim with a wrong batch secret", Answered(reply, 403), Answer(reply));

  const auto& [original, serial] = claimed_.front();
  reply = ClaimAs(*clone, kFieldBatch, serial, batch_secret_);
  auto session = OpenRegistrar();
  if (!session) {
    return session.error();
  }
  auto info = session->registry.FindBatch(session->registrar.Public(), kFieldBatch);
  if (!info) {
    return info.error();
  }
  Check("clone: " + serial + " again, another key", Answered(reply, 409) && info->clone_alerts == 1,
        Answer(reply) + " (clone alerts: " + std::to_string(info->clone_alerts) + ")");
  auto self = device::SelfSignedCertificate(original, SystemClock());
  if (!self) {
    return self.error();
  }
  std::string outcome;
  bool kept = Hello(original, {*self}, registry_port_, &outcome);
  Check("the original " + serial + " after the clone's attempt", kept, outcome);

  auto tiny = CreateBatch(*session, kTinyBatch, 2);
  if (!tiny) {
    return tiny.error();
  }
  std::vector<Result<device::ServerReply>> replies;
  for (int i = 1; i <= 3; ++i) {
    auto key = PrivateKey::Generate(KeyType::kP256);
    if (!key) {
      return key.error();
    }
    replies.push_back(ClaimAs(*key, kTinyBatch, Serial("TINY-", i), *tiny));
  }
  Check("claims 1 and 2 of a batch of 2", Answered(replies[0], 201) && Answered(replies[1], 201),
        Answer(replies[0]) + ", " + Answer(replies[1]));
  Check("claim 3 of a batch of 2", Answered(replies[2], 403), Answer(replies[2]));
  return OkStatus();
}

Status Demo::EngineerPresent() {
  std::cout << "\n[13] Engineer present: a device without a secret asks; an operator compares "
               "its code and approves\n";
  auto key = PrivateKey::Generate(KeyType::kP256);
  auto self =
      key ? device::SelfSignedCertificate(*key, SystemClock()) : Result<Certificate>(key.error());
  if (!self) {
    return self.error();
  }
  const std::string device_id = key->Public().DeviceId();
  // What `hallmark device code` shows on the device.
  const std::string device_code = device::ComparisonCode(key->Public());
  auto reply = device::RequestApproval(*key, Client(enroll_port_), "FIELD-ENG-001", SystemClock());
  Check("approval request (POST /v1/claim/pending)", Answered(reply, 202),
        Answered(reply, 202) ? "HTTP 202 pending; the device shows code " + device_code
                             : Answer(reply));
  std::string outcome;
  bool let_in = Hello(*key, {*self}, registry_port_, &outcome);
  Check("pending device on /v1/hello", !let_in,
        let_in ? "ACCEPTED: " + outcome : "refused: a pending request grants nothing");

  auto session = OpenRegistrar();
  if (!session) {
    return session.error();
  }
  auto pending = session->registry.ListPending();
  if (!pending) {
    return pending.error();
  }
  auto row = std::find_if(pending->begin(), pending->end(), [&](const registry::PendingDevice& p) {
    return p.device_id == device_id;
  });
  // The operator's code is recomputed from the key stored with the request, as
  // `hallmark registry pending` shows it; the row itself is unsigned.
  auto stored = row == pending->end() ? Result<PublicKey>(Error(Code::kNotFound, "no request"))
                                      : PublicKey::FromDer(row->public_key);
  std::string operator_code = stored ? device::ComparisonCode(*stored) : "(none)";
  std::cout << "      operator: hallmark registry pending -> " << device_id.substr(0, 16) << "  "
            << operator_code << "  " << (row == pending->end() ? "" : row->serial) << "  ("
            << pending->size() << " waiting)\n";
  Result<registry::DeviceRecord> approved =
      operator_code == device_code
          ? session->registry.Approve(session->registrar, device_id, {kOwner, ""})
          : Result<registry::DeviceRecord>(
                Error(Code::kPermissionDenied, "operator sees " + operator_code));
  Check("operator compares the code, approves", approved.has_value(),
        approved ? "code " + operator_code + " matches; registrar signed the record (log entry " +
                       std::to_string(approved->seq) + ")"
                 : approved.error().message());
  auto ms = approved ? HelloUntil(*key, {*self}, registry_port_, /*accepted=*/true, &outcome)
                     : std::nullopt;
  Check("approved device on /v1/hello", ms.has_value(),
        ms ? outcome + ", " + Milliseconds(*ms) + " after approval" : "refused: " + outcome);

  auto report = session->registry.Verify(session->registrar.Public());
  Check("registry verify (claims within signed batch limits)",
        report.has_value() && report->clean(),
        report ? (report->clean() ? "clean, " + std::to_string(report->log_entries) + " log entries"
                                  : "findings")
               : report.error().message());
  return OkStatus();
}

Status Demo::OperationalCertificates() {
  std::cout << "\n[14] EST (RFC 7030): a claimed device gets an operational certificate for its "
               "own key\n";
  const auto& [key, serial] = claimed_.front();
  auto self = device::SelfSignedCertificate(key, SystemClock());
  auto stranger = PrivateKey::Generate(KeyType::kP256);
  if (!self || !stranger) {
    return !self ? self.error() : stranger.error();
  }
  const std::vector<Certificate> chain{*self};
  const device::ClientOptions options = Client(registry_port_);
  auto csr = Csr::Create(key, DistinguishedName{"", "", "", serial, serial});
  auto rogue_csr = Csr::Create(*stranger, DistinguishedName{"", "", "", "ROGUE-1", "ROGUE-1"});
  if (!csr || !rogue_csr) {
    return !csr ? csr.error() : rogue_csr.error();
  }
  const std::string device_dir = dir_ + "/devices/field-" + serial;
  if (auto s = MakeDirectory(device_dir, 0700); !s) {
    return s;
  }
  Stopwatch t;
  auto cacerts = device::FetchCaCerts(key, chain, options);
  auto cert = device::EstEnroll(key, chain, options, *csr, /*reenroll=*/false);
  double ms = t.Ms();
  Check("cacerts + simpleenroll by " + serial, cacerts.has_value() && cert.has_value(),
        !cacerts ? cacerts.error().message()
        : !cert  ? cert.error().message()
                 : cert->Subject() + ", until " + FormatTime(cert->NotAfter()) + " (" +
                      Milliseconds(ms) + ")");
  if (cacerts && cert) {
    const std::string cert_path = device_dir + "/operational.pem";
    const std::string chain_path = device_dir + "/est-cacerts.pem";
    if (auto s = WriteFileAtomic(cert_path, cert->ToPem(), 0644); !s) {
      return s;
    }
    if (auto s = WriteFileAtomic(chain_path, ChainToPem(*cacerts), 0644); !s) {
      return s;
    }
    std::cout << "      openssl verify -purpose sslclient -CAfile root.pem -untrusted "
                 "est-cacerts.pem operational.pem\n";
    auto verified = Openssl({"verify", "-purpose", "sslclient", "-CAfile", ca_->RootCertPath(),
                             "-untrusted", chain_path, cert_path});
    if (!verified) {
      return verified.error();
    }
    Check("operational certificate, openssl verify", verified->first == 0, verified->second);
  }
  auto other = device::EstEnroll(key, chain, options, *rogue_csr, /*reenroll=*/false);
  Check("simpleenroll by " + serial + " for another key", !other,
        other ? "ISSUED" : "refused: " + other.error().message());
  auto stranger_self = device::SelfSignedCertificate(*stranger, SystemClock());
  if (!stranger_self) {
    return stranger_self.error();
  }
  auto rogue = device::EstEnroll(*stranger, std::vector<Certificate>{*stranger_self},
                                 Client(enroll_port_), *rogue_csr, /*reenroll=*/false);
  Check("simpleenroll by a key nobody enrolled", !rogue,
        rogue ? "ISSUED" : "refused: " + rogue.error().message());
  return OkStatus();
}

}  // namespace hallmark::cli
