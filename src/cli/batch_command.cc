// `hallmark batch ...`: batch secrets for devices that enroll themselves in the field
// (docs/enrollment.md).
#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/registry_options.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/file.h"
#include "core/random.h"
#include "device/enroll_client.h"
#include "registry/batch.h"
#include "registry/registrar_key.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

json BatchJson(const registry::BatchInfo& info) {
  const registry::BatchDefinition& b = info.definition;
  json j = {{"batch_id", b.batch_id},
            {"status", std::string(registry::BatchStatusName(b.status))},
            {"owner", b.owner},
            {"size", b.size},
            {"claims", info.claims},
            {"clone_alerts", info.clone_alerts},
            {"expires_at", b.expires_at},
            {"created_at", b.created_at},
            {"verifier", Base64Encode(b.verifier)},
            {"enrollment_key", Base64Encode(b.enrollment_key)},
            {"seq", info.first_seq}};
  if (b.status == registry::BatchStatus::kRevoked) {
    j["revoked_at"] = b.updated_at;
    j["reason"] = b.reason;
  }
  return j;
}

std::string KeyFingerprint(std::span<const uint8_t> spki) {
  return DeviceIdFromSpki(spki).substr(0, 16);
}

// OpenTrusted opens the registry with the registrar public key to verify batches against.
Result<std::pair<registry::Registry, TrustedKey>> OpenTrusted(const RegistryOptions& o) {
  auto reg = OpenRegistry(o);
  if (!reg) {
    return reg.error();
  }
  auto trusted = LoadTrustedKey(o, *reg);
  if (!trusted) {
    return trusted.error();
  }
  return std::make_pair(std::move(*reg), std::move(*trusted));
}

void AddEnrollmentKey(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "enrollment-key",
      "Create the server's Ed25519 enrollment key (KEY and KEY.pub): batches name it, and it "
      "signs the records of devices that claim");
  auto out = std::make_shared<std::string>();
  cmd->add_option("--out", *out, "Key file to create (mode 0600)")->required();
  cmd->callback(Run(ctx, [&ctx, o, out]() -> Status {
    const std::string pub = *out + ".pub";
    if (FileExists(pub)) {
      return Error(Code::kAlreadyExists, pub + " already exists; keys are never overwritten");
    }
    auto passphrase = LoadPassphrase(o->passphrase_file);
    if (!passphrase) {
      return passphrase.error();
    }
    auto key = registry::RegistrarKey::Create(*out, *passphrase);
    if (!key) {
      return key.error();
    }
    if (auto s = WriteFileAtomic(pub, key->Public().ToPem(), 0644, /*exclusive=*/true); !s) {
      ::unlink(out->c_str());
      return s.error();
    }
    Succeed(ctx,
            json{{"key", *out},
                 {"public_key", pub},
                 {"fingerprint", KeyFingerprint(key->Public().SpkiDer())}},
            "Created enrollment key " + *out +
                " (give it to the server: [enroll] "
                "enrollment_key)\n  public key:  " +
                pub + " (name it in `batch create --enrollment-pub`)\n  fingerprint: " +
                KeyFingerprint(key->Public().SpkiDer()) + "\n");
    return OkStatus();
  }));
}

void AddCreate(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "create", "Create a batch and print its secret, once (the registry keeps only a verifier)");
  struct Opts {
    uint64_t size = 0;
    std::string expires;
    std::string owner;
    std::string id;
    std::string enrollment_pub;
    std::string secret_out;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--size", opts->size, "How many devices may claim")->required();
  cmd->add_option("--expires", opts->expires, "Claims are refused after this long (30d, 12h)")
      ->required();
  cmd->add_option("--owner", opts->owner, "Owner recorded for the devices that claim");
  cmd->add_option("--id", opts->id, "Batch ID (default: a random one)");
  cmd->add_option("--enrollment-pub", opts->enrollment_pub,
                  "The server's enrollment public key (from `batch enrollment-key`)")
      ->required();
  cmd->add_option("--secret-out", opts->secret_out,
                  "Write the secret to this file (mode 0600) instead of printing it");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto lifetime = ParseDuration(opts->expires);
    if (!lifetime) {
      return lifetime.error();
    }
    std::string id = opts->id.empty() ? "b-" + HexEncode(RandomBytes(5)) : opts->id;
    if (auto s = registry::ValidateBatchId(id); !s) {
      return s.error();
    }
    auto pem = ReadFile(opts->enrollment_pub);
    if (!pem) {
      return pem.error();
    }
    auto enrollment = PublicKey::FromPem(*pem);
    if (!enrollment) {
      return enrollment.error().WithContext(opts->enrollment_pub);
    }
    if (!opts->secret_out.empty() && FileExists(opts->secret_out)) {
      return Error(Code::kAlreadyExists, opts->secret_out + " already exists");
    }
    auto session = OpenAsRegistrar(*o, "batch create");
    if (!session) {
      return session.error();
    }
    SecretBytes secret = device::GenerateBatchSecret();
    auto verifier = device::DeriveBatchKey(secret, id);
    if (!verifier) {
      return verifier.error();
    }
    int64_t expires_at = SystemClock().Now() + *lifetime;
    auto batch = session->registry.CreateBatch(
        session->registrar, registry::BatchRequest{id, opts->owner, opts->size, expires_at,
                                                   verifier->Public(), *enrollment});
    if (!batch) {
      return batch.error();
    }
    SecretBytes text = device::FormatBatchSecret(secret);
    std::string_view shown = text.view(SecretAccess::Grant());
    json j = {{"batch_id", id},
              {"size", batch->size},
              {"expires_at", batch->expires_at},
              {"owner", batch->owner},
              {"seq", batch->seq}};
    std::ostringstream h;
    h << "Created batch " << id << ": " << batch->size << " devices, claims until "
      << FormatTime(batch->expires_at) << "\n";
    if (!opts->secret_out.empty()) {
      if (auto s = WriteFileAtomic(opts->secret_out, std::string(shown) + "\n", 0600,
                                   /*exclusive=*/true);
          !s) {
        return s.error().WithContext(
            "the batch exists, but its secret could not be saved; "
            "revoke it and create another");
      }
      j["secret_file"] = opts->secret_out;
      h << "  secret written to " << opts->secret_out << " (mode 0600)\n";
    } else {
      j["secret"] = std::string(shown);
      h << "  secret: " << shown << "\n"
        << "  Put it in the batch's firmware now: it is shown only once, and the registry "
           "keeps only a verifier.\n";
    }
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

void AddList(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand("list", "List batches with the claims each has used");
  cmd->callback(Run(ctx, [&ctx, o]() -> Status {
    auto opened = OpenTrusted(*o);
    if (!opened) {
      return opened.error();
    }
    auto& [reg, trusted] = *opened;
    auto batches = reg.ListBatches(trusted.key);
    if (!batches) {
      return batches.error();
    }
    json arr = json::array();
    std::ostringstream h;
    h << std::left << std::setw(22) << "BATCH" << std::setw(9) << "STATUS" << std::setw(16)
      << "CLAIMS" << std::setw(22) << "EXPIRES" << std::setw(8) << "CLONES"
      << "OWNER\n";
    for (const registry::BatchInfo& info : *batches) {
      const registry::BatchDefinition& b = info.definition;
      arr.push_back(BatchJson(info));
      h << std::left << std::setw(22) << b.batch_id << std::setw(9)
        << registry::BatchStatusName(b.status) << std::setw(16)
        << (std::to_string(info.claims) + "/" + std::to_string(b.size)) << std::setw(22)
        << FormatTime(b.expires_at) << std::setw(8) << info.clone_alerts << b.owner << "\n";
    }
    Succeed(ctx, json{{"batches", arr}, {"verified_with", trusted.source}}, h.str());
    return OkStatus();
  }));
}

void AddShow(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand("show", "Show one batch, its claims and clone alerts");
  auto id = std::make_shared<std::string>();
  cmd->add_option("batch_id", *id, "Batch ID")->required();
  cmd->callback(Run(ctx, [&ctx, o, id]() -> Status {
    auto opened = OpenTrusted(*o);
    if (!opened) {
      return opened.error();
    }
    auto& [reg, trusted] = *opened;
    auto info = reg.FindBatch(trusted.key, *id);
    if (!info) {
      return info.error();
    }
    auto alerts = reg.CloneAlerts(*id);
    if (!alerts) {
      return alerts.error();
    }
    const registry::BatchDefinition& b = info->definition;
    json j = BatchJson(*info);
    std::ostringstream h;
    h << "batch:          " << b.batch_id << "\n"
      << "status:         " << registry::BatchStatusName(b.status)
      << (b.reason.empty() ? "" : " (" + b.reason + ")") << "\n"
      << "owner:          " << b.owner << "\n"
      << "claims:         " << info->claims << " of " << b.size << "\n"
      << "expires:        " << FormatTime(b.expires_at) << "\n"
      << "created:        " << FormatTime(b.created_at) << " (log entry " << info->first_seq
      << ")\n"
      << "enrollment key: " << KeyFingerprint(b.enrollment_key) << "\n"
      << "verified with:  " << trusted.source << "\n";
    json arr = json::array();
    if (!alerts->empty()) {
      h << "possible clones (a second key claimed an enrolled serial):\n";
    }
    for (const registry::CloneAlert& a : *alerts) {
      arr.push_back({{"serial", a.serial},
                     {"device_id", a.device_id},
                     {"claimed_by", a.claimed_by},
                     {"peer", a.peer},
                     {"at", a.at}});
      h << "  " << FormatTime(a.at) << "  serial " << a.serial << "  refused key "
        << a.device_id.substr(0, 16) << " from " << a.peer << " (held by "
        << a.claimed_by.substr(0, 16) << ")\n";
    }
    j["clone_alerts"] = arr;
    j["verified_with"] = trusted.source;
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

void AddRevoke(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand("revoke", "Stop all further claims of a batch (signed)");
  struct Opts {
    std::string id;
    std::string reason;
    bool revoke_devices = false;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("batch_id", opts->id, "Batch ID")->required();
  cmd->add_option("--reason", opts->reason, "Why, recorded in the signed entry");
  cmd->add_flag("--revoke-devices", opts->revoke_devices,
                "Also revoke every device enrolled through the batch");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto session = OpenAsRegistrar(*o, "batch revoke");
    if (!session) {
      return session.error();
    }
    auto revoked = session->registry.RevokeBatch(session->registrar, opts->id, opts->reason,
                                                 opts->revoke_devices);
    if (!revoked) {
      return revoked.error();
    }
    Succeed(ctx,
            json{{"batch_id", opts->id},
                 {"status", "revoked"},
                 {"revoked_devices", revoked->revoked_devices},
                 {"seq", revoked->definition.seq}},
            "Revoked batch " + opts->id + "; no further claims" +
                (opts->revoke_devices
                     ? ", and revoked " + std::to_string(revoked->revoked_devices.size()) +
                           " device(s) enrolled through it"
                     : std::string()) +
                "\n");
    return OkStatus();
  }));
}

}  // namespace

void AddBatchCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "batch", "Batch secrets: devices enroll themselves within limits the registrar signed");
  group->require_subcommand(1);
  auto o = std::make_shared<RegistryOptions>();
  AddRegistryOptions(group, o.get());
  AddEnrollmentKey(group, ctx, o);
  AddCreate(group, ctx, o);
  AddList(group, ctx, o);
  AddShow(group, ctx, o);
  AddRevoke(group, ctx, o);
}

}  // namespace hallmark::cli
