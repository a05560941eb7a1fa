// `hallmark device ...`: the device side: make a key, a CSR, and show identities.
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/certificate.h"
#include "core/csr.h"
#include "core/file.h"
#include "device/key_store.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

struct DeviceOptions {
  std::string key = "device-key.pem";
  std::string passphrase_file;
};

Result<device::FileKeyStore> OpenStore(const DeviceOptions& o) {
  auto passphrase = LoadPassphrase(o.passphrase_file);
  if (!passphrase) {
    return passphrase.error();
  }
  return device::FileKeyStore(o.key, std::move(*passphrase));
}

void AddKeygen(CLI::App* dev, Context& ctx, std::shared_ptr<DeviceOptions> o) {
  auto* cmd = dev->add_subcommand("keygen", "Create the device identity key (file, mode 0600)");
  auto type_name = std::make_shared<std::string>("p256");
  cmd->add_option("--key-type", *type_name, "p256 (default), p384 or ed25519")
      ->capture_default_str();
  cmd->callback(Run(ctx, [&ctx, o, type_name]() -> Status {
    auto type = ParseKeyType(*type_name);
    if (!type) {
      return type.error();
    }
    auto store = OpenStore(*o);
    if (!store) {
      return store.error();
    }
    auto pub = store->Create(*type);
    if (!pub) {
      return pub.error();
    }
    json j = {{"key", o->key},
              {"device_id", pub->DeviceId()},
              {"algorithm", pub->Algorithm().Describe()},
              {"public_key_pem", pub->ToPem()}};
    Succeed(ctx, j,
            "Created " + pub->Algorithm().Describe() + " device key " + o->key +
                "\n  device id: " + pub->DeviceId() + "\n");
    return OkStatus();
  }));
}

void AddCsr(CLI::App* dev, Context& ctx, std::shared_ptr<DeviceOptions> o) {
  auto* cmd = dev->add_subcommand("csr", "Make a CSR signed by the device key");
  struct Opts {
    std::string serial;
    std::string cn;
    std::vector<std::string> sans;
    std::string out;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--serial", opts->serial, "Device serial number (subject serialNumber)");
  cmd->add_option("--cn", opts->cn, "Subject common name (default: the serial number)");
  cmd->add_option("--san", opts->sans,
                  "subjectAltName to request: dns:NAME, ip:ADDR, uri:URI (repeatable)")
      ->allow_extra_args(false);  // one value per --san, so a CSR path after it stays a CSR
  cmd->add_option("--out", opts->out, "Write the CSR here (default: standard output)");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    std::vector<SubjectAltName> sans;
    for (const std::string& s : opts->sans) {
      auto san = ParseSubjectAltName(s);
      if (!san) {
        return san.error();
      }
      sans.push_back(*san);
    }
    if (opts->serial.empty() && opts->cn.empty() && sans.empty()) {
      return Error(Code::kInvalidArgument, "give --serial (devices) or --san (servers)");
    }
    auto store = OpenStore(*o);
    if (!store) {
      return store.error();
    }
    auto key = store->Load();
    if (!key) {
      return key.error();
    }
    DistinguishedName subject;
    subject.serial_number = opts->serial;
    subject.common_name = opts->cn.empty() ? opts->serial : opts->cn;
    auto csr = Csr::Create(*key, subject, sans);
    if (!csr) {
      return csr.error();
    }
    json j = {{"device_id", key->Public().DeviceId()}, {"subject", csr->Subject()}};
    std::string human;
    if (!opts->out.empty()) {
      if (auto s = WriteFileAtomic(opts->out, csr->ToPem(), 0644); !s) {
        return s.error();
      }
      j["path"] = opts->out;
      human = "Wrote CSR " + opts->out + " for " + csr->Subject() + "\n";
    } else {
      j["pem"] = csr->ToPem();
      human = csr->ToPem();
    }
    Succeed(ctx, j, human);
    return OkStatus();
  }));
}

void AddId(CLI::App* dev, Context& ctx, std::shared_ptr<DeviceOptions> o) {
  auto* cmd = dev->add_subcommand(
      "id", "Print the device ID (SHA-256 of the SubjectPublicKeyInfo) of a key, cert or CSR");
  struct Opts {
    std::string cert;
    std::string csr;
    std::string pubkey;
  };
  auto opts = std::make_shared<Opts>();
  auto* c = cmd->add_option("--cert", opts->cert, "From a certificate (PEM)");
  auto* r = cmd->add_option("--csr", opts->csr, "From a CSR (PEM or DER)");
  auto* p = cmd->add_option("--pubkey", opts->pubkey, "From a public key (PEM)");
  c->excludes(r)->excludes(p);
  r->excludes(p);
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    Result<PublicKey> key = Error(Code::kInternal, "unset");
    if (!opts->cert.empty()) {
      auto text = ReadFile(opts->cert);
      if (!text) {
        return text.error();
      }
      auto cert = Certificate::FromPem(*text);
      if (!cert) {
        return cert.error().WithContext(opts->cert);
      }
      key = cert->Key();
    } else if (!opts->csr.empty()) {
      auto text = ReadFile(opts->csr);
      if (!text) {
        return text.error();
      }
      auto csr = Csr::Parse(AsBytes(*text));
      if (!csr) {
        return csr.error().WithContext(opts->csr);
      }
      key = csr->Key();
    } else if (!opts->pubkey.empty()) {
      auto text = ReadFile(opts->pubkey);
      if (!text) {
        return text.error();
      }
      key = PublicKey::FromPem(*text);
    } else {
      auto store = OpenStore(*o);
      if (!store) {
        return store.error();
      }
      auto priv = store->Load();
      if (!priv) {
        return priv.error();
      }
      key = priv->Public();
    }
    if (!key) {
      return key.error();
    }
    Succeed(ctx, json{{"device_id", key->DeviceId()}, {"algorithm", key->Algorithm().Describe()}},
            key->DeviceId() + "\n");
    return OkStatus();
  }));
}

}  // namespace

void AddDeviceCommands(CLI::App& app, Context& ctx) {
  auto* dev = app.add_subcommand("device", "Device side: identity key, CSR, device ID");
  dev->require_subcommand(1);
  auto o = std::make_shared<DeviceOptions>();
  dev->add_option("--key", o->key, "Device key file")->capture_default_str();
  AddPassphraseOption(dev, &o->passphrase_file);
  AddKeygen(dev, ctx, o);
  AddCsr(dev, ctx, o);
  AddId(dev, ctx, o);
}

}  // namespace hallmark::cli
