// `hallmark factory ...`: the production-line station and the simulated devices it provisions.
#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/key_stores.h"
#include "core/clock.h"
#include "core/key_file.h"
#include "factory/device_agent.h"
#include "factory/station.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

// SelfPath returns this executable, which the station runs once per device as its agent.
Result<std::string> SelfPath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) {
    return Error(Code::kUnavailable, "cannot find the hallmark executable (/proc/self/exe)");
  }
  return std::string(buf, static_cast<size_t>(n));
}

// ParseFaults turns "--fault N:KIND" values into the station's map.
Result<std::map<int, factory::DeviceFault>> ParseFaults(const std::vector<std::string>& values) {
  std::map<int, factory::DeviceFault> out;
  for (const std::string& v : values) {
    size_t colon = v.find(':');
    int number = 0;
    try {
      number = colon == std::string::npos ? -1 : std::stoi(v.substr(0, colon));
    } catch (const std::exception&) {
      number = -1;
    }
    if (number < 0) {
      return Error(Code::kInvalidArgument, "--fault must be NUMBER:KIND, got '" + v + "'");
    }
    auto fault = factory::ParseDeviceFault(v.substr(colon + 1));
    if (!fault) {
      return fault.error();
    }
    out[number] = *fault;
  }
  return out;
}

json SummaryJson(const factory::StationOptions& o, const factory::StationSummary& s) {
  json devices = json::array();
  for (const factory::DeviceOutcome& d : s.devices) {
    json j = {{"serial", d.serial}, {"device_id", d.device_id}, {"provisioned", d.provisioned}};
    if (!d.certificate_serial.empty()) {
      j["certificate_serial"] = d.certificate_serial;
    }
    if (!d.error.empty()) {
      j["error"] = d.error;
    }
    devices.push_back(std::move(j));
  }
  json j = {{"customer", o.customer},       {"mode", std::string(factory::ModeName(o.mode))},
            {"keystore", o.keystore},       {"count", o.count},
            {"provisioned", s.provisioned}, {"refused", s.refused},
            {"seconds", s.seconds},         {"devices_per_second", s.DevicesPerSecond()},
            {"station_pid", ::getpid()},    {"devices", devices}};
  if (o.mode == factory::Mode::kExtract) {
    j["manifest"] = o.manifest_path;
  }
  return j;
}

std::string SummaryText(const factory::StationOptions& o, const factory::StationSummary& s) {
  std::ostringstream h;
  h << "Provisioned " << s.provisioned << " of " << o.count << " device(s) ("
    << factory::ModeName(o.mode) << ", " << o.keystore << ") in " << std::fixed
    << std::setprecision(2) << s.seconds << " s: " << std::setprecision(1) << s.DevicesPerSecond()
    << " devices/s\n";
  if (o.mode == factory::Mode::kExtract) {
    h << "  manifest: " << o.manifest_path << "\n";
  }
  for (const factory::DeviceOutcome& d : s.devices) {
    if (!d.provisioned) {
      h << "  refused " << d.serial << ": " << d.error << "\n";
    }
  }
  return h.str();
}

void AddRun(CLI::App* group, Context& ctx) {
  auto* cmd = group->add_subcommand(
      "run",
      "Provision devices on the simulated line: each device makes its key in its own "
      "store; the station sees only public keys (extract) or CSRs (inject)");
  struct Opts {
    std::string customer;
    int count = 0;
    std::string mode;
    std::string keystore = "file";
    std::string key_type = "p256";
    std::string line_dir = "factory-line";
    std::string serial_prefix;
    int first_number = 1;
    std::string manifest;
    std::string factory_key;
    std::string ca_dir;
    std::string passphrase_file;
    std::string pin_file;
    std::string device_pin_file;
    std::vector<std::string> faults;
    bool hold = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--customer", o->customer, "Customer the devices are made for")->required();
  cmd->add_option("--count", o->count, "Number of devices")->required();
  cmd->add_option("--mode", o->mode,
                  "extract (public key to a signed manifest) or inject "
                  "(CSR, IDevID issued and written back)")
      ->required();
  cmd->add_option("--keystore", o->keystore,
                  "What holds each device key: file, puf (a simulated chip per device), "
                  "pkcs11:module=SO;token=LABEL, "
                  "tpm[:tcti=TCTI]")
      ->capture_default_str();
  cmd->add_option("--key-type", o->key_type, "Device key: p256, p384 (ed25519: file only)")
      ->capture_default_str();
  cmd->add_option("--line-dir", o->line_dir, "Directory of the simulated devices")
      ->capture_default_str();
  cmd->add_option("--serial-prefix", o->serial_prefix,
                  "Serial prefix (default: CUSTOMER-); serials end in a 6-digit number");
  cmd->add_option("--first-number", o->first_number, "Number of the first device")
      ->capture_default_str();
  cmd->add_option("--manifest", o->manifest,
                  "extract: manifest to append to (default: LINE_DIR/manifest.jsonl)");
  cmd->add_option("--factory-key", o->factory_key, "extract: the factory key (PEM) signing lines");
  cmd->add_option("--ca-dir", o->ca_dir, "inject: the CA directory")->envname("HALLMARK_CA_DIR");
  AddPassphraseOption(cmd, &o->passphrase_file);
  AddPinOption(cmd, &o->pin_file);
  cmd->add_option("--device-pin-file", o->device_pin_file,
                  "pkcs11 line: file with the devices' token PIN (read by the devices only)");
  cmd->add_option("--fault", o->faults,
                  "Make device NUMBER misbehave, for testing: NUMBER:bad-csr|other-key|crash")
      ->allow_extra_args(false);
  cmd->add_flag("--hold", o->hold,
                "After the summary, wait for standard input to close before exiting (lets a "
                "test inspect the station process)");
  cmd->callback(Run(ctx, [&ctx, o]() -> Status {
    factory::StationOptions s;
    s.customer = o->customer;
    s.count = o->count;
    auto mode = factory::ParseMode(o->mode);
    if (!mode) {
      return mode.error();
    }
    s.mode = *mode;
    auto type = ParseKeyType(o->key_type);
    if (!type) {
      return type.error();
    }
    s.key_type = *type;
    s.keystore = o->keystore;
    s.pin_file = o->device_pin_file;
    s.line_dir = o->line_dir;
    s.serial_prefix = o->serial_prefix.empty() ? o->customer + "-" : o->serial_prefix;
    s.first_number = o->first_number;
    auto faults = ParseFaults(o->faults);
    if (!faults) {
      return faults.error();
    }
    s.faults = std::move(*faults);
    auto self = SelfPath();
    if (!self) {
      return self.error();
    }
    s.agent_command = {*self, "factory", "device-agent"};
    auto passphrase = LoadPassphrase(o->passphrase_file);
    if (!passphrase) {
      return passphrase.error();
    }
    std::optional<PrivateKey> factory_key;
    std::optional<ca::Authority> authority;
    if (s.mode == factory::Mode::kExtract) {
      if (o->factory_key.empty()) {
        return Error(Code::kInvalidArgument,
                     "extract needs --factory-key (the key that signs "
                     "the manifest)");
      }
      auto key = ReadPrivateKeyFile(o->factory_key, "factory key", *passphrase);
      if (!key) {
        return key.error();
      }
      factory_key.emplace(std::move(*key));
      s.factory_key = &*factory_key;
      s.manifest_path = o->manifest.empty() ? o->line_dir + "/manifest.jsonl" : o->manifest;
    } else {
      if (o->ca_dir.empty()) {
        return Error(Code::kInvalidArgument, "inject needs --ca-dir (the CA that issues IDevIDs)");
      }
      auto pin = LoadPin(o->pin_file);
      if (!pin) {
        return pin.error();
      }
      auto opened = ca::Authority::Open(
          o->ca_dir, ca::KeySecrets{std::move(*passphrase), std::move(*pin)}, &SystemClock());
      if (!opened) {
        return opened.error();
      }
      authority.emplace(std::move(*opened));
      s.authority = &*authority;
    }
    auto summary = factory::RunStation(s);
    if (!summary) {
      return summary.error();
    }
    Succeed(ctx, SummaryJson(s, *summary), SummaryText(s, *summary));
    if (summary->refused > 0) {
      std::cerr << "hallmark: error: " << summary->refused << " device(s) refused" << std::endl;
      ctx.exit_code = kExitRefused;
    }
    if (o->hold) {
      std::string ignored;
      while (std::getline(std::cin, ignored)) {
      }
    }
    return OkStatus();
  }));
}

void AddDeviceAgent(CLI::App* group, Context& ctx) {
  auto* cmd = group->add_subcommand(
      "device-agent", "One simulated device on the line: serves the station over stdin/stdout");
  // Started by `factory run`, not by people.
  cmd->group("");
  struct Opts {
    std::string keystore;
    std::string certificate;
    std::string passphrase_file;
    std::string pin_file;
    std::string fault = "none";
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--keystore", o->keystore, "The device's key store")->required();
  cmd->add_option("--certificate", o->certificate, "Where the device stores its IDevID")
      ->required();
  AddPassphraseOption(cmd, &o->passphrase_file);
  AddPinOption(cmd, &o->pin_file);
  cmd->add_option("--fault", o->fault, "Misbehave: none, bad-csr, other-key, crash");
  cmd->callback(Run(ctx, [o]() -> Status {
    auto fault = factory::ParseDeviceFault(o->fault);
    if (!fault) {
      return fault.error();
    }
    auto store = OpenDeviceKeyStore(o->keystore, o->passphrase_file, o->pin_file);
    if (!store) {
      return store.error();
    }
    return factory::RunDeviceAgent(std::cin, std::cout, **store,
                                   factory::DeviceAgentOptions{o->certificate, *fault});
  }));
}

}  // namespace

void AddFactoryCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("factory", "Production-line station (simulated line)");
  group->require_subcommand(1);
  AddRun(group, ctx);
  AddDeviceAgent(group, ctx);
}

}  // namespace hallmark::cli
