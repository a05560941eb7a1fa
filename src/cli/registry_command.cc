// `hallmark registry ...`: the owner's device registry (docs/registry.md).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/registry_options.h"
#include "core/certificate.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/encoding.h"
#include "core/file.h"
#include "device/enroll_client.h"
#include "registry/batch.h"
#include "registry/record.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;
using registry::DeviceRecord;
using registry::Registry;

std::string Fingerprint(const PublicKey& key) { return key.DeviceId().substr(0, 16); }

json RecordJson(const DeviceRecord& r) {
  return {{"device_id", r.device_id},
          {"public_key", Base64Encode(r.public_key)},
          {"status", std::string(registry::DeviceStatusName(r.status))},
          {"owner", r.owner},
          {"path", std::string(registry::ProvisioningPathName(r.path))},
          {"serial", r.serial},
          {"reason", r.reason},
          {"created_at", r.created_at},
          {"updated_at", r.updated_at},
          {"seq", r.seq},
          {"signer", r.signer},
          {"signature", Base64Encode(r.signature)}};
}

json HeadJson(const registry::TreeHead& h) { return json::parse(registry::TreeHeadToJson(h)); }

// ParseHeadJson reads what `registry head` prints.
Result<registry::TreeHead> ParseHeadJson(const std::string& text, const std::string& path) {
  auto head = registry::TreeHeadFromJson(text);
  if (!head) {
    return head.error().WithContext("file " + path);
  }
  return head;
}

std::string HumanRecord(const DeviceRecord& r) {
  std::ostringstream h;
  h << "device id:  " << r.device_id << "\n"
    << "status:     " << registry::DeviceStatusName(r.status)
    << (r.reason.empty() ? "" : " (" + r.reason + ")") << "\n"
    << "serial:     " << r.serial << "\n"
    << "owner:      " << r.owner << "\n"
    << "path:       " << registry::ProvisioningPathName(r.path) << "\n"
    << "created:    " << FormatTime(r.created_at) << "\n"
    << "updated:    " << FormatTime(r.updated_at) << "\n"
    << "log entry:  " << r.seq << " (signed by " << r.signer << ")\n";
  return h.str();
}

// DeviceKeyFromFiles returns the device key named by exactly one of --pubkey, --cert, --csr,
// and the CSR's serialNumber if it has one.
struct DeviceKeySource {
  std::string pubkey;
  std::string cert;
  std::string csr;
};

Result<std::pair<PublicKey, std::optional<std::string>>> DeviceKeyFromFiles(
    const DeviceKeySource& s) {
  int given = !s.pubkey.empty() + !s.cert.empty() + !s.csr.empty();
  if (given != 1) {
    return Error(Code::kInvalidArgument,
                 "give the device's key with exactly one of --pubkey, --cert or --csr");
  }
  const std::string& path = !s.pubkey.empty() ? s.pubkey : !s.cert.empty() ? s.cert : s.csr;
  auto text = ReadFile(path);
  if (!text) {
    return text.error();
  }
  if (!s.pubkey.empty()) {
    auto key = PublicKey::FromPem(*text);
    if (!key) {
      return key.error().WithContext(path);
    }
    return std::make_pair(*key, std::optional<std::string>());
  }
  if (!s.cert.empty()) {
    auto cert = Certificate::FromPem(*text);
    if (!cert) {
      return cert.error().WithContext(path);
    }
    return std::make_pair(cert->Key(), std::optional<std::string>());
  }
  auto csr = Csr::Parse(AsBytes(*text));
  if (!csr) {
    return csr.error().WithContext(path);
  }
  // A CSR proves possession of the key: refuse one whose signature does not verify.
  if (auto v = csr->VerifySignature(); !v) {
    return v.error().WithContext(path);
  }
  return std::make_pair(csr->Key(), csr->SerialNumber());
}

void AddInit(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "init", "Create a registry database and its Ed25519 registrar key (KEY and KEY.pub)");
  cmd->callback(Run(ctx, [&ctx, o]() -> Status {
    if (o->db.empty() || o->registrar_key.empty()) {
      return Error(Code::kInvalidArgument,
                   "registry init needs --db PATH and --registrar-key KEY (or "
                   "HALLMARK_REGISTRY_DB and HALLMARK_REGISTRAR_KEY)");
    }
    const std::string pub_path = o->registrar_key + ".pub";
    for (const std::string& path : {o->db, o->registrar_key, pub_path}) {
      if (FileExists(path)) {
        return Error(Code::kAlreadyExists, path +
                                               " already exists; registry init never "
                                               "overwrites a database or a key");
      }
    }
    auto passphrase = LoadPassphrase(o->passphrase_file);
    if (!passphrase) {
      return passphrase.error();
    }
    auto key = registry::RegistrarKey::Create(o->registrar_key, *passphrase);
    if (!key) {
      return key.error();
    }
    // From here on, a failure removes what this command created.
    auto undo = [&o, &pub_path](const Error& e) {
      ::unlink(o->registrar_key.c_str());
      ::unlink(pub_path.c_str());
      return e;
    };
    if (auto s = WriteFileAtomic(pub_path, key->Public().ToPem(), 0644, /*exclusive=*/true); !s) {
      return undo(s.error());
    }
    auto created = Registry::Create(o->db, *key, &SystemClock());
    if (!created) {
      return undo(created.error());
    }
    auto head = created->NewestHead();
    if (!head) {
      return head.error();
    }
    json j = {{"db", o->db},
              {"registrar_key", o->registrar_key},
              {"registrar_public_key", pub_path},
              {"registrar_public_key_pem", key->Public().ToPem()},
              {"registrar_fingerprint", Fingerprint(key->Public())},
              {"encrypted", passphrase->has_value()},
              {"head", HeadJson(head->head)}};
    std::ostringstream h;
    h << "Created registry " << o->db << "\n"
      << "  registrar key:  " << o->registrar_key << " (Ed25519, mode 0600"
      << (passphrase->has_value() ? ", encrypted" : "") << "; may live on another machine)\n"
      << "  public key:     " << pub_path << " (give this to the server and to auditors)\n"
      << "  fingerprint:    " << Fingerprint(key->Public()) << "\n";
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

void AddAdd(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand("add", "Register one device as active (signed, path manual)");
  struct Opts {
    DeviceKeySource source;
    std::string serial;
    std::string owner;
  };
  auto opts = std::make_shared<Opts>();
  auto* p = cmd->add_option("--pubkey", opts->source.pubkey, "Device public key (PEM)");
  auto* c = cmd->add_option("--cert", opts->source.cert, "A certificate over the device key (PEM)");
  auto* r =
      cmd->add_option("--csr", opts->source.csr,
                      "A CSR signed by the device key (PEM or DER; its signature is checked)");
  p->excludes(c)->excludes(r);
  c->excludes(r);
  cmd->add_option("--serial", opts->serial,
                  "Human serial number (default: the CSR's serialNumber)");
  cmd->add_option("--owner", opts->owner, "Owner recorded for the device");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto key = DeviceKeyFromFiles(opts->source);
    if (!key) {
      return key.error();
    }
    std::string serial = opts->serial;
    if (key->second.has_value()) {
      if (serial.empty()) {
        serial = *key->second;
      } else if (serial != *key->second) {
        return Error(Code::kInvalidArgument,
                     "--serial " + serial + " differs from the CSR's serialNumber " + *key->second);
      }
    }
    if (serial.empty()) {
      return Error(Code::kInvalidArgument, "give the device's --serial");
    }
    auto registrar = LoadRegistrar(*o, "add");
    if (!registrar) {
      return registrar.error();
    }
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto record = reg->Add(*registrar, registry::AddRequest{key->first, serial, opts->owner});
    if (!record) {
      return record.error();
    }
    Succeed(ctx, RecordJson(*record),
            "Registered device " + record->device_id + " (serial " + record->serial +
                ", log entry " + std::to_string(record->seq) + ")\n");
    return OkStatus();
  }));
}

void AddRevoke(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand("revoke", "Revoke a device (final; signed)");
  struct Opts {
    std::string device_id;
    std::string reason;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("device_id", opts->device_id, "Device ID (64 hex digits)")->required();
  cmd->add_option("--reason", opts->reason, "Why, recorded in the signed record");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto registrar = LoadRegistrar(*o, "revoke");
    if (!registrar) {
      return registrar.error();
    }
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto record = reg->Revoke(*registrar, opts->device_id, opts->reason);
    if (!record) {
      return record.error();
    }
    Succeed(ctx, RecordJson(*record),
            "Revoked device " + record->device_id +
                (record->reason.empty() ? "" : " (" + record->reason + ")") + ", log entry " +
                std::to_string(record->seq) + "\n");
    return OkStatus();
  }));
}

void AddShow(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "show", "Show one device after checking it against the registrar key and the log");
  struct Opts {
    std::string device_id;
    bool history = false;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("device_id", opts->device_id, "Device ID (64 hex digits)")->required();
  cmd->add_flag("--history", opts->history, "Also list the device's log entries");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto record = reg->Find(opts->device_id);
    if (!record) {
      return record.error();
    }
    auto trusted = LoadTrustedKey(*o, *reg);
    if (!trusted) {
      return trusted.error();
    }
    if (auto s = reg->CheckDevice(*record, trusted->key); !s) {
      return s;
    }
    json j = RecordJson(*record);
    j["verified_with"] = trusted->source;
    std::string human = HumanRecord(*record) +
                        "verified:   signature, latest log entry and "
                        "signed tree head (key from " +
                        trusted->source + ")\n";
    if (opts->history) {
      auto history = reg->History(record->device_id);
      if (!history) {
        return history.error();
      }
      json arr = json::array();
      human += "history:\n";
      for (const registry::LogEntry& e : *history) {
        auto parsed = registry::ParseCanonicalRecord(e.entry);
        if (!parsed) {
          return Error(Code::kDataLoss,
                       "log entry " + std::to_string(e.seq) + ": " + parsed.error().message());
        }
        parsed->signature = e.signature;
        arr.push_back(RecordJson(*parsed));
        human += "  " + std::to_string(e.seq) + "  " + FormatTime(parsed->updated_at) + "  " +
                 std::string(registry::DeviceStatusName(parsed->status)) +
                 (parsed->reason.empty() ? "" : " (" + parsed->reason + ")") + "\n";
      }
      j["history"] = arr;
    }
    Succeed(ctx, j, human);
    return OkStatus();
  }));
}

Result<std::optional<registry::DeviceStatus>> ParseStatusFilter(const std::string& text) {
  if (text.empty()) {
    return std::optional<registry::DeviceStatus>();
  }
  auto s = registry::ParseDeviceStatus(text);
  if (!s) {
    return s.error();
  }
  return std::optional<registry::DeviceStatus>(*s);
}

void AddList(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "list", "List devices as stored (unverified; `registry verify` checks them)");
  auto status = std::make_shared<std::string>();
  cmd->add_option("--status", *status, "Only devices in this status: pending, active, revoked");
  cmd->callback(Run(ctx, [&ctx, o, status]() -> Status {
    auto filter = ParseStatusFilter(*status);
    if (!filter) {
      return filter.error();
    }
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    json arr = json::array();
    std::ostringstream h;
    h << std::left << std::setw(66) << "DEVICE ID" << std::setw(9) << "STATUS" << std::setw(20)
      << "SERIAL" << std::setw(10) << "PATH"
      << "OWNER\n";
    uint64_t count = 0;
    Status s = reg->ForEachDevice(*filter, [&](const DeviceRecord& r) -> Status {
      ++count;
      if (ctx.json) {
        arr.push_back(RecordJson(r));
      } else {
        h << std::left << std::setw(66) << r.device_id << std::setw(9)
          << registry::DeviceStatusName(r.status) << std::setw(20) << r.serial << std::setw(10)
          << registry::ProvisioningPathName(r.path) << r.owner << "\n";
      }
      return OkStatus();
    });
    if (!s) {
      return s;
    }
    Succeed(ctx, json{{"devices", arr}, {"count", count}}, h.str());
    return OkStatus();
  }));
}

void AddExport(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand("export",
                                    "Write every device record, with its signature, as JSON Lines");
  struct Opts {
    std::string out;
    std::string status;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--out", opts->out, "Write to this file (default: standard output)");
  cmd->add_option("--status", opts->status, "Only devices in this status");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto filter = ParseStatusFilter(opts->status);
    if (!filter) {
      return filter.error();
    }
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    std::ofstream file;
    std::string tmp;
    if (!opts->out.empty()) {
      if (FileExists(opts->out)) {
        return Error(Code::kAlreadyExists, opts->out + " already exists");
      }
      tmp = opts->out + ".tmp-" + std::to_string(::getpid());
      file.open(tmp, std::ios::binary | std::ios::trunc);
      if (!file) {
        return Error(Code::kUnavailable, "cannot create " + tmp);
      }
    }
    std::ostream& out = opts->out.empty() ? std::cout : file;
    uint64_t count = 0;
    Status s = reg->ForEachDevice(*filter, [&](const DeviceRecord& r) -> Status {
      out << RecordJson(r).dump() << "\n";
      ++count;
      return out ? OkStatus() : Error(Code::kUnavailable, "cannot write the export");
    });
    if (opts->out.empty()) {
      std::cout.flush();
      if (!s) {
        return s;
      }
      ctx.exit_code = kExitOk;
      return OkStatus();
    }
    file.close();
    if (!s || !file || std::rename(tmp.c_str(), opts->out.c_str()) != 0) {
      ::unlink(tmp.c_str());
      return s ? Error(Code::kUnavailable, "cannot write " + opts->out) : s;
    }
    Succeed(ctx, json{{"path", opts->out}, {"count", count}},
            "Exported " + std::to_string(count) + " device record(s) to " + opts->out + "\n");
    return OkStatus();
  }));
}

// LoadTrustedHead reads a head saved by `registry head` and checks it is the registrar's, or
// (after a batch claim) the enrollment key's of a batch the registrar signed.
Result<registry::TreeHead> LoadTrustedHead(const std::string& path, const PublicKey& registrar,
                                           Registry& reg) {
  auto text = ReadFile(path);
  if (!text) {
    return text.error();
  }
  auto head = ParseHeadJson(*text, path);
  if (!head) {
    return head.error();
  }
  std::optional<PublicKey> key = registrar;
  if (auto batch = registry::SignerBatch(head->signer); batch.has_value()) {
    auto info = reg.FindBatch(registrar, *batch);
    auto enrollment = info ? PublicKey::FromDer(info->definition.enrollment_key)
                           : Result<PublicKey>(info.error());
    key = enrollment ? std::optional<PublicKey>(*enrollment) : std::nullopt;
  }
  if (!key.has_value() || !registry::VerifyTreeHead(*key, *head)) {
    return Error(Code::kInvalidArgument,
                 "the trusted head in " + path + " is not signed by the " + head->signer + " key");
  }
  return head;
}

json FindingJson(const registry::Finding& f) {
  json j = {{"kind", std::string(registry::FindingKindName(f.kind))}, {"message", f.message}};
  if (!f.device_id.empty()) {
    j["device_id"] = f.device_id;
  }
  if (f.seq.has_value()) {
    j["seq"] = *f.seq;
  }
  if (f.head_id.has_value()) {
    j["head_id"] = *f.head_id;
  }
  return j;
}

// ReportVerification prints the report and sets exit code 0 (clean) or 8 (findings).
void ReportVerification(Context& ctx, const std::string& db, const registry::VerifyReport& report,
                        const std::string& key_source, double seconds) {
  json findings = json::array();
  std::ostringstream h;
  for (const registry::Finding& f : report.findings) {
    findings.push_back(FindingJson(f));
    h << "  " << std::left << std::setw(17) << registry::FindingKindName(f.kind) << f.message
      << "\n";
  }
  if (report.finding_count > report.findings.size()) {
    h << "  ... and " << report.finding_count - report.findings.size() << " more\n";
  }
  json j = {{"db", db},
            {"clean", report.clean()},
            {"devices", report.devices},
            {"log_entries", report.log_entries},
            {"tree_heads", report.heads},
            {"finding_count", report.finding_count},
            {"findings", findings},
            {"registrar_key_from", key_source},
            {"seconds", seconds}};
  if (report.newest_head.has_value()) {
    j["head"] = HeadJson(*report.newest_head);
  }
  std::ostringstream summary;
  summary << report.devices << " devices, " << report.log_entries << " log entries, "
          << report.heads << " tree heads; registrar key from " << key_source;
  if (report.clean()) {
    Succeed(ctx, j, "Registry " + db + " verifies: " + summary.str() + "\n");
    return;
  }
  Succeed(ctx, j,
          "Registry " + db + " FAILED verification with " + std::to_string(report.finding_count) +
              " finding(s) (" + summary.str() + "):\n" + h.str());
  std::cerr << "hallmark: error: registry " << db
            << " failed verification: " << report.finding_count << " finding(s)" << std::endl;
  ctx.exit_code = kExitDataLoss;
}

void AddVerify(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "verify", "Check records, log and signed tree heads against each other (exit 8 if not)");
  auto trusted_head = std::make_shared<std::string>();
  cmd->add_option("--trusted-head", *trusted_head,
                  "A head saved earlier with `registry head`: the registry must extend it");
  cmd->callback(Run(ctx, [&ctx, o, trusted_head]() -> Status {
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto trusted = LoadTrustedKey(*o, *reg);
    if (!trusted) {
      return trusted.error();
    }
    registry::VerifyOptions options;
    if (!trusted_head->empty()) {
      auto head = LoadTrustedHead(*trusted_head, trusted->key, *reg);
      if (!head) {
        return head.error();
      }
      options.trusted_head = std::move(*head);
    }
    if (trusted->source == "database") {
      std::cerr << "hallmark: warning: checking against the registrar key stored in the "
                   "database; pass --registrar-pub to use a trusted copy\n";
    } else if (!(trusted->key == reg->stored_registrar_key())) {
      std::cerr << "hallmark: warning: the database names registrar key "
                << Fingerprint(reg->stored_registrar_key()) << ", not " << Fingerprint(trusted->key)
                << " from " << trusted->source << "\n";
    }
    auto start = std::chrono::steady_clock::now();
    auto report = reg->Verify(trusted->key, options);
    if (!report) {
      return report.error();
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ReportVerification(ctx, o->db, *report, trusted->source, seconds);
    return OkStatus();
  }));
}

void AddHead(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "head", "Print the newest signed tree head as JSON (keep it for `verify --trusted-head`)");
  cmd->callback(Run(ctx, [&ctx, o]() -> Status {
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto head = reg->NewestHead();
    if (!head) {
      return head.error();
    }
    // The head is JSON either way: it is meant to be saved to a file.
    std::cout << HeadJson(head->head).dump(2) << std::endl;
    ctx.exit_code = kExitOk;
    return OkStatus();
  }));
}

// LoadFactoryKey reads the factory's public key (PEM).
Result<PublicKey> LoadFactoryKey(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return text.error();
  }
  auto key = PublicKey::FromPem(*text);
  if (!key) {
    return key.error().WithContext(path);
  }
  return key;
}

// ProgressPrinter returns a progress callback that rewrites one line on stderr.
std::function<void(const registry::ImportProgress&)> ProgressPrinter(
    std::chrono::steady_clock::time_point start) {
  return [start](const registry::ImportProgress& p) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(
        stderr, "\r  %llu lines, %llu new, %llu skipped, %.0f lines/s   ",
        static_cast<unsigned long long>(p.lines), static_cast<unsigned long long>(p.imported),
        static_cast<unsigned long long>(p.skipped), s > 0 ? static_cast<double>(p.lines) / s : 0.0);
    std::fflush(stderr);
  };
}

void ReportImport(Context& ctx, const std::string& manifest, const registry::ImportSummary& summary,
                  double seconds) {
  const registry::ImportProgress& c = summary.counts;
  double rate = seconds > 0 ? static_cast<double>(c.lines) / seconds : 0.0;
  json j = {{"manifest", manifest},          {"lines", c.lines},   {"imported", c.imported},
            {"skipped", c.skipped},          {"seconds", seconds}, {"lines_per_second", rate},
            {"head", HeadJson(summary.head)}};
  std::ostringstream h;
  h << "Imported " << c.imported << " new device(s) from " << manifest << " (" << c.lines
    << " lines, " << c.skipped << " already registered) in " << std::fixed << std::setprecision(1)
    << seconds << " s, " << std::setprecision(0) << rate << " lines/s\n"
    << "  tree size: " << summary.head.tree_size << "\n";
  Succeed(ctx, j, h.str());
}

void AddImport(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "import", "Import a factory's signed JSON Lines manifest: all lines or none");
  struct Opts {
    std::string manifest;
    std::string factory_key;
    std::string owner;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("manifest", opts->manifest, "Manifest file ('-' reads standard input)")
      ->required();
  cmd->add_option("--factory-key", opts->factory_key,
                  "The factory's public key (PEM, P-256 or Ed25519) that signed each line")
      ->required();
  cmd->add_option("--owner", opts->owner, "Owner recorded for every imported device");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto factory = LoadFactoryKey(opts->factory_key);
    if (!factory) {
      return factory.error();
    }
    std::ifstream file;
    if (opts->manifest != "-") {
      if (!FileExists(opts->manifest)) {
        return Error(Code::kNotFound, "manifest " + opts->manifest + " does not exist");
      }
      file.open(opts->manifest, std::ios::binary);
      if (!file) {
        return Error(Code::kUnavailable, "cannot open manifest " + opts->manifest);
      }
    }
    std::istream& in = opts->manifest == "-" ? std::cin : file;
    auto registrar = LoadRegistrar(*o, "import");
    if (!registrar) {
      return registrar.error();
    }
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto start = std::chrono::steady_clock::now();
    registry::ImportOptions options;
    options.owner = opts->owner;
    bool progress = StderrIsTerminal();
    if (progress) {
      options.progress = ProgressPrinter(start);
    }
    auto summary = reg->Import(*registrar, in, *factory, options);
    if (progress) {
      std::fprintf(stderr, "\n");
    }
    if (!summary) {
      return summary.error();
    }
    ReportImport(ctx, opts->manifest, *summary,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return OkStatus();
  }));
}

json PendingJson(const registry::PendingDevice& p) {
  auto key = PublicKey::FromDer(p.public_key);
  // The code is recomputed from the key, never read from the (unsigned) row.
  std::string code = key && key->DeviceId() == p.device_id ? device::ComparisonCode(*key)
                                                           : "(key does not match the ID)";
  return {{"device_id", p.device_id},   {"code", code},
          {"serial", p.serial},         {"peer", p.peer},
          {"first_seen", p.first_seen}, {"last_seen", p.last_seen},
          {"requests", p.requests}};
}

void AddPending(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "pending", "List devices waiting for operator approval (compare each code with the device)");
  cmd->callback(Run(ctx, [&ctx, o]() -> Status {
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto pending = reg->ListPending();
    if (!pending) {
      return pending.error();
    }
    json arr = json::array();
    std::ostringstream h;
    h << std::left << std::setw(18) << "ID" << std::setw(11) << "CODE" << std::setw(20) << "SERIAL"
      << std::setw(22) << "FIRST SEEN" << std::setw(9) << "REQUESTS"
      << "FROM\n";
    for (const registry::PendingDevice& p : *pending) {
      json j = PendingJson(p);
      arr.push_back(j);
      h << std::left << std::setw(18) << p.device_id.substr(0, 16) << std::setw(11)
        << j["code"].get<std::string>() << std::setw(20) << p.serial << std::setw(22)
        << FormatTime(p.first_seen) << std::setw(9) << p.requests << p.peer << "\n";
    }
    if (pending->empty()) {
      h.str("No devices are waiting for approval.\n");
    }
    Succeed(ctx, json{{"pending", arr}, {"count", pending->size()}}, h.str());
    return OkStatus();
  }));
}

void AddApprove(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand(
      "approve", "Approve a pending device: the registrar signs it as active (path engineer)");
  struct Opts {
    std::string id;
    std::string code;
    std::string owner;
    std::string serial;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("id", opts->id, "Device ID, or a prefix of at least 8 hex digits")->required();
  cmd->add_option("--code", opts->code,
                  "The code the device shows; approval is refused if it differs");
  cmd->add_option("--owner", opts->owner, "Owner recorded for the device");
  cmd->add_option("--serial", opts->serial, "Serial (default: the one the device sent)");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto session = OpenAsRegistrar(*o, "approve");
    if (!session) {
      return session.error();
    }
    Registry& reg = session->registry;
    if (!opts->code.empty()) {
      auto pending = reg.ListPending();
      if (!pending) {
        return pending.error();
      }
      std::string wanted = opts->code;
      std::transform(wanted.begin(), wanted.end(), wanted.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      for (const registry::PendingDevice& p : *pending) {
        std::string code = PendingJson(p)["code"];
        if (p.device_id.rfind(opts->id, 0) == 0 && code != wanted) {
          return Error(Code::kPermissionDenied,
                       "device " + p.device_id + " has code " + code + ", not " + wanted +
                           ": this is not the device in front of you; nothing approved");
        }
      }
    }
    auto record = reg.Approve(session->registrar, opts->id,
                              registry::ApproveOptions{opts->owner, opts->serial});
    if (!record) {
      return record.error();
    }
    Succeed(ctx, RecordJson(*record),
            "Approved device " + record->device_id + " (serial " + record->serial + ", log entry " +
                std::to_string(record->seq) + ")\n");
    return OkStatus();
  }));
}

void AddReject(CLI::App* group, Context& ctx, std::shared_ptr<RegistryOptions> o) {
  auto* cmd = group->add_subcommand("reject", "Remove a pending approval request");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id, "Device ID, or a prefix of at least 8 hex digits")->required();
  cmd->callback(Run(ctx, [&ctx, o, id]() -> Status {
    auto reg = OpenRegistry(*o);
    if (!reg) {
      return reg.error();
    }
    auto rejected = reg->Reject(*id);
    if (!rejected) {
      return rejected.error();
    }
    Succeed(ctx, PendingJson(*rejected),
            "Rejected the request of device " + rejected->device_id + "\n");
    return OkStatus();
  }));
}

}  // namespace

Result<Registry> OpenRegistry(const RegistryOptions& o) {
  if (o.db.empty()) {
    return Error(Code::kInvalidArgument,
                 "no registry database: give --db PATH or set HALLMARK_REGISTRY_DB");
  }
  return Registry::Open(o.db, &SystemClock());
}

Result<registry::RegistrarKey> LoadRegistrar(const RegistryOptions& o, std::string_view command) {
  if (o.registrar_key.empty()) {
    return Error(Code::kInvalidArgument,
                 "registry " + std::string(command) +
                     " signs with the registrar key: give --registrar-key KEY or set "
                     "HALLMARK_REGISTRAR_KEY");
  }
  auto passphrase = LoadPassphrase(o.passphrase_file);
  if (!passphrase) {
    return passphrase.error();
  }
  return registry::RegistrarKey::Load(o.registrar_key, *passphrase);
}

Result<RegistrarSession> OpenAsRegistrar(const RegistryOptions& o, std::string_view command) {
  auto registrar = LoadRegistrar(o, command);
  if (!registrar) {
    return registrar.error();
  }
  auto reg = OpenRegistry(o);
  if (!reg) {
    return reg.error();
  }
  return RegistrarSession{std::move(*registrar), std::move(*reg)};
}

Result<TrustedKey> LoadTrustedKey(const RegistryOptions& o, registry::Registry& registry) {
  if (!o.registrar_pub.empty()) {
    auto key = registry::LoadRegistrarPublicKey(o.registrar_pub);
    if (!key) {
      return key.error();
    }
    return TrustedKey{*key, "--registrar-pub " + o.registrar_pub};
  }
  if (!o.registrar_key.empty() && FileExists(o.registrar_key + ".pub")) {
    auto key = registry::LoadRegistrarPublicKey(o.registrar_key + ".pub");
    if (!key) {
      return key.error();
    }
    return TrustedKey{*key, o.registrar_key + ".pub"};
  }
  return TrustedKey{registry.stored_registrar_key(), "database"};
}

void AddRegistryOptions(CLI::App* group, RegistryOptions* o) {
  group->add_option("--db", o->db, "Registry database (SQLite)")->envname("HALLMARK_REGISTRY_DB");
  group
      ->add_option("--registrar-key", o->registrar_key,
                   "Registrar private key (Ed25519 PEM), for commands that sign")
      ->envname("HALLMARK_REGISTRAR_KEY");
  group
      ->add_option("--registrar-pub", o->registrar_pub,
                   "Trusted registrar public key for commands that verify (default: KEY.pub, "
                   "else the key stored in the database)")
      ->envname("HALLMARK_REGISTRAR_PUB");
  AddPassphraseOption(group, &o->passphrase_file);
}

void AddRegistryCommands(CLI::App& app, Context& ctx) {
  auto* reg = app.add_subcommand("registry", "The owner's device registry (signed, Merkle log)");
  reg->require_subcommand(1);
  auto o = std::make_shared<RegistryOptions>();
  AddRegistryOptions(reg, o.get());
  AddInit(reg, ctx, o);
  AddAdd(reg, ctx, o);
  AddRevoke(reg, ctx, o);
  AddShow(reg, ctx, o);
  AddList(reg, ctx, o);
  AddExport(reg, ctx, o);
  AddVerify(reg, ctx, o);
  AddHead(reg, ctx, o);
  AddImport(reg, ctx, o);
  AddPending(reg, ctx, o);
  AddApprove(reg, ctx, o);
  AddReject(reg, ctx, o);
}

}  // namespace hallmark::cli
