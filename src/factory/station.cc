#include "factory/station.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/csr.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/pkcs11.h"
#include "core/spec_params.h"
#include "factory/internal/device_link.h"
#include "registry/manifest.h"

namespace hallmark::factory {
namespace {

using internal::DeviceLink;
using nlohmann::json;

// A bound for a hung device, not a pacing delay: replies end the wait.
constexpr std::chrono::seconds kDeviceTimeout(60);
constexpr int kMaxCount = 1000000;

std::string SerialFor(const StationOptions& o, int number) {
  char digits[16];
  std::snprintf(digits, sizeof(digits), "%06d", number);
  return o.serial_prefix + digits;
}

std::string DeviceDir(const StationOptions& o, const std::string& serial) {
  return o.line_dir + "/devices/" + serial;
}

// DeviceSpec turns the line's key store into the spec of one device's store.
Result<std::string> DeviceSpec(const std::string& keystore, const std::string& dir,
                               const std::string& serial) {
  if (keystore == "file") {
    return "file:" + dir + "/key.pem";
  }
  if (keystore == "puf") {
    // Each simulated device is its own chip, seeded from its serial (FNV-1a): the station keeps
    // only the public helper data; the key is regenerated inside the device agent.
    uint64_t seed = 1469598103934665603ULL;
    for (unsigned char ch : serial) {
      seed = (seed ^ ch) * 1099511628211ULL;
    }
    return "puf:helper=" + dir + "/chip.puf;chip=" + std::to_string(seed);
  }
  if (keystore == "tpm" || keystore.starts_with("tpm:")) {
    auto params = ParseSpecParams(keystore == "tpm" ? "" : keystore.substr(4),
                                  SpecParamRules{"tpm", {"tcti"}, {}});
    if (!params) {
      return params.error();
    }
    std::string spec = "tpm:key=" + dir + "/key.tss2";
    if (params->contains("tcti")) {
      spec += ";tcti=" + params->at("tcti");
    }
    return spec;
  }
  if (keystore.starts_with("pkcs11:")) {
    auto params = ParsePkcs11Params(keystore.substr(7));
    if (!params) {
      return params.error();
    }
    if (params->contains("label")) {
      return Error(Code::kInvalidArgument,
                   "the station labels each device's key with its serial; leave label= out of "
                   "--keystore");
    }
    return keystore + ";label=" + serial;
  }
  return Error(Code::kInvalidArgument, "unknown line key store '" + keystore +
                                           "'; expected file, puf, pkcs11:module=SO;token=LABEL "
                                           "or tpm[:tcti=TCTI]");
}

// ManifestWriter appends lines to the manifest, each made durable before the next device:
// a line is the only record that the device exists.
class ManifestWriter {
 public:
  explicit ManifestWriter(std::string path) : path_(std::move(path)) {}
  ~ManifestWriter() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  ManifestWriter(const ManifestWriter&) = delete;
  ManifestWriter& operator=(const ManifestWriter&) = delete;

  // Open opens (creating if needed) the manifest for appending.
  Status Open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return Error(errno == ENOENT ? Code::kNotFound : Code::kUnavailable,
                   "cannot open manifest " + path_ + ": " + std::strerror(errno));
    }
    return OkStatus();
  }

  Status Append(const std::string& line) {
    // One write of the whole line: O_APPEND places it atomically after the last one.
    const std::string data = line + "\n";
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n != static_cast<ssize_t>(data.size()) || ::fsync(fd_) != 0) {
      return Error(Code::kUnavailable,
                   "cannot append to manifest " + path_ + ": " + std::strerror(errno));
    }
    return OkStatus();
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Line is what one run shares across its devices.
struct Line {
  const StationOptions& options;
  std::unique_ptr<ManifestWriter> manifest;  // extract
  std::optional<ca::Issuer> issuer;          // inject
  std::string customer_chain_pem;            // inject: appended to each IDevID
};

Result<PublicKey> ReportedKey(const json& reply) {
  auto der = Base64Decode(reply.value("public_key", std::string()));
  if (!der) {
    return Error(Code::kInvalidArgument, "the device's public key is not Base64");
  }
  auto key = PublicKey::FromDer(*der);
  if (!key) {
    return key.error().WithContext("the device's public key");
  }
  if (auto s = registry::CheckDeviceKey(*key); !s) {
    return s.error();
  }
  return key;
}

// Inject asks the device for a CSR, checks it, issues the IDevID and hands it to the device.
Result<std::string> Inject(Line& line, DeviceLink& link, const PublicKey& reported,
                           const std::string& serial) {
  auto reply = link.Call({{"op", "csr"}, {"serial", serial}}, kDeviceTimeout);
  if (!reply) {
    return reply.error();
  }
  auto der = Base64Decode(reply->value("csr", std::string()));
  if (!der) {
    return Error(Code::kInvalidArgument, "the device's CSR is not Base64");
  }
  auto csr = Csr::FromDer(*der);
  if (!csr) {
    return csr.error().WithContext("the device's CSR");
  }
  if (auto s = csr->VerifySignature(); !s) {
    return Error(Code::kUnauthenticated,
                 "the device's CSR signature does not verify (no proof of possession)");
  }
  if (!(csr->Key() == reported)) {
    return Error(Code::kPermissionDenied,
                 "the device's CSR is for another key than the one it reported");
  }
  ca::IssueRequest request{std::move(*csr), ca::Profile::kDevice, serial, {}, {}, false};
  auto issued = line.issuer->Issue(request);
  if (!issued) {
    return issued.error();
  }
  std::string chain = issued->certificate.ToPem() + line.customer_chain_pem;
  auto installed = link.Call({{"op", "install"}, {"certificate", chain}}, kDeviceTimeout);
  if (!installed) {
    return installed.error().WithContext("issued " + issued->certificate.SerialHex() +
                                         " but the device did not store it");
  }
  return issued->certificate.SerialHex();
}

DeviceOutcome Provision(Line& line, int number) {
  const StationOptions& o = line.options;
  DeviceOutcome outcome;
  outcome.serial = SerialFor(o, number);
  auto fail = [&outcome](const Error& e) {
    outcome.error = e.message();
    return outcome;
  };
  const std::string dir = DeviceDir(o, outcome.serial);
  if (auto s = MakeDirectory(dir, 0700); !s) {
    return fail(s.error());
  }
  auto spec = DeviceSpec(o.keystore, dir, outcome.serial);
  if (!spec) {
    return fail(spec.error());
  }
  std::vector<std::string> argv = o.agent_command;
  argv.insert(argv.end(), {"--keystore", *spec, "--certificate", dir + "/idevid.pem"});
  if (!o.pin_file.empty()) {
    argv.insert(argv.end(), {"--pin-file", o.pin_file});
  }
  if (auto f = o.faults.find(number); f != o.faults.end() && f->second != DeviceFault::kNone) {
    argv.insert(argv.end(), {"--fault", std::string(DeviceFaultName(f->second))});
  }
  auto link = DeviceLink::Spawn(argv);
  if (!link) {
    return fail(link.error());
  }
  auto made = (*link)->Call({{"op", "keygen"}, {"key_type", std::string(KeyTypeName(o.key_type))}},
                            kDeviceTimeout);
  if (!made) {
    return fail(made.error());
  }
  auto key = ReportedKey(*made);
  if (!key) {
    return fail(key.error());
  }
  outcome.device_id = key->DeviceId();
  if (o.mode == Mode::kExtract) {
    auto text = registry::FormatManifestLine(*key, outcome.serial, *o.factory_key);
    if (!text) {
      return fail(text.error());
    }
    if (auto s = line.manifest->Append(*text); !s) {
      return fail(s.error());
    }
  } else {
    auto cert_serial = Inject(line, **link, *key, outcome.serial);
    if (!cert_serial) {
      return fail(cert_serial.error());
    }
    outcome.certificate_serial = *cert_serial;
  }
  outcome.provisioned = true;
  return outcome;
}

// Prepare checks everything that does not depend on a device, before anything is written.
Status Prepare(Line& line) {
  const StationOptions& o = line.options;
  if (o.count <= 0 || o.count > kMaxCount) {
    return Error(Code::kInvalidArgument, "--count must be 1.." + std::to_string(kMaxCount) +
                                             ", got " + std::to_string(o.count));
  }
  if (auto s = ca::ValidateCustomerName(o.customer); !s) {
    return s.error();
  }
  if (o.agent_command.empty() || o.line_dir.empty()) {
    return Error(Code::kInvalidArgument, "no device agent or line directory");
  }
  if (auto spec = DeviceSpec(o.keystore, o.line_dir, "check"); !spec) {
    return spec.error();
  }
  for (int n = o.first_number; n < o.first_number + o.count; ++n) {
    if (FileExists(DeviceDir(o, SerialFor(o, n)))) {
      return Error(Code::kAlreadyExists, "device " + SerialFor(o, n) + " already exists in " +
                                             o.line_dir + "; choose another --first-number");
    }
  }
  if (o.mode == Mode::kExtract) {
    if (o.factory_key == nullptr || o.manifest_path.empty()) {
      return Error(Code::kInvalidArgument, "extract needs the factory key and a manifest path");
    }
    if (auto s = MakeDirectory(o.line_dir + "/devices", 0755); !s) {
      return s.error();
    }
    // Opened before the first device, so that an unwritable manifest stops the line before any
    // device has made a key.
    line.manifest = std::make_unique<ManifestWriter>(o.manifest_path);
    return line.manifest->Open();
  }
  if (o.authority == nullptr) {
    return Error(Code::kInvalidArgument, "inject needs the CA (--ca-dir)");
  }
  auto customer = o.authority->CustomerCertificate(o.customer);
  if (!customer) {
    return customer.error();
  }
  // Loading the issuer loads the CA key: a wrong passphrase or PIN stops the line here.
  auto issuer = o.authority->IssuerFor(o.customer);
  if (!issuer) {
    return issuer.error();
  }
  line.issuer.emplace(std::move(*issuer));
  line.customer_chain_pem = customer->ToPem();
  return MakeDirectory(o.line_dir + "/devices", 0755);
}

}  // namespace

Result<Mode> ParseMode(std::string_view name) {
  if (name == "extract") {
    return Mode::kExtract;
  }
  if (name == "inject") {
    return Mode::kInject;
  }
  return Error(Code::kInvalidArgument,
               "unknown mode '" + std::string(name) + "'; expected extract or inject");
}

std::string_view ModeName(Mode mode) { return mode == Mode::kExtract ? "extract" : "inject"; }

Result<StationSummary> RunStation(const StationOptions& options) {
  Line line{options, nullptr, std::nullopt, {}};
  if (auto s = Prepare(line); !s) {
    return s.error();
  }
  ::signal(SIGPIPE, SIG_IGN);
  StationSummary summary;
  const auto start = std::chrono::steady_clock::now();
  for (int n = options.first_number; n < options.first_number + options.count; ++n) {
    DeviceOutcome outcome = Provision(line, n);
    (outcome.provisioned ? summary.provisioned : summary.refused) += 1;
    summary.devices.push_back(std::move(outcome));
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace hallmark::factory
