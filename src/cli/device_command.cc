// `hallmark device ...`: the device side: make a key, a CSR, and show identities.
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/key_stores.h"
#include "core/certificate.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/duration.h"
#include "core/file.h"
#include "device/key_store.h"
#include "device/tls_client.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

struct DeviceOptions {
  std::string key = "device-key.pem";
  std::string keystore;
  std::string passphrase_file;
  std::string pin_file;
};

// OpenStore opens the device key store: --keystore SPEC, or the file store at --key.
Result<std::unique_ptr<device::KeyStore>> OpenStore(const DeviceOptions& o) {
  return OpenDeviceKeyStore(o.keystore.empty() ? "file:" + o.key : o.keystore, o.passphrase_file,
                            o.pin_file);
}

// LoadKey returns a handle on the device key named by the options.
Result<PrivateKey> LoadKey(const DeviceOptions& o) {
  auto store = OpenStore(o);
  if (!store) {
    return store.error();
  }
  return (*store)->Load();
}

void AddKeygen(CLI::App* dev, Context& ctx, std::shared_ptr<DeviceOptions> o) {
  auto* cmd = dev->add_subcommand(
      "keygen", "Create the device identity key in its store (file mode 0600, token, TPM)");
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
    auto pub = (*store)->Create(*type);
    if (!pub) {
      return pub.error();
    }
    const std::string where = o->keystore.empty() ? o->key : (*store)->Describe();
    json j = {{"key", where},
              {"keystore", (*store)->Describe()},
              {"device_id", pub->DeviceId()},
              {"algorithm", pub->Algorithm().Describe()},
              {"public_key_pem", pub->ToPem()}};
    Succeed(ctx, j,
            "Created " + pub->Algorithm().Describe() + " device key " + where +
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
    auto key = LoadKey(*o);
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
      auto priv = LoadKey(*o);
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

void AddHello(CLI::App* dev, Context& ctx, std::shared_ptr<DeviceOptions> o) {
  auto* cmd = dev->add_subcommand(
      "hello", "Ask the owner's server \"is that you?\" over mutual TLS 1.3 (GET /v1/hello)");
  struct Opts {
    std::string server;
    std::vector<std::string> trust;
    std::string cert;
    std::string server_name;
    std::string timeout = "10s";
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--server", opts->server, "HOST:PORT of the server")->required();
  cmd->add_option("--trust", opts->trust,
                  "Pinned server CA or server certificate (PEM); nothing else is trusted")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--cert", opts->cert,
                  "Device certificate chain (PEM); default: a self-signed certificate over the key "
                  "(enough for the registry policy)");
  cmd->add_option("--server-name", opts->server_name,
                  "Name the server certificate must carry (default: HOST)");
  cmd->add_option("--timeout", opts->timeout, "Connect and I/O timeout")->capture_default_str();
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    size_t colon = opts->server.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == opts->server.size()) {
      return Error(Code::kInvalidArgument,
                   "--server must be HOST:PORT, got '" + opts->server + "'");
    }
    device::ClientOptions client;
    client.host = opts->server.substr(0, colon);
    if (client.host.size() > 2 && client.host.front() == '[' && client.host.back() == ']') {
      client.host = client.host.substr(1, client.host.size() - 2);
    }
    int port = 0;
    try {
      port = std::stoi(opts->server.substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
    if (port <= 0 || port > 65535) {
      return Error(Code::kInvalidArgument, "invalid port in --server '" + opts->server + "'");
    }
    client.port = static_cast<uint16_t>(port);
    client.server_name = opts->server_name;
    auto timeout = ParseDuration(opts->timeout);
    if (!timeout) {
      return timeout.error();
    }
    client.timeout = std::chrono::seconds(*timeout);
    for (const std::string& path : opts->trust) {
      auto certs = Certificate::ChainFromFile(path);
      if (!certs) {
        return certs.error();
      }
      client.trust.insert(client.trust.end(), certs->begin(), certs->end());
    }
    auto key = LoadKey(*o);
    if (!key) {
      return key.error();
    }
    std::vector<Certificate> chain;
    if (!opts->cert.empty()) {
      auto certs = Certificate::ChainFromFile(opts->cert);
      if (!certs) {
        return certs.error();
      }
      chain = std::move(*certs);
    } else {
      auto self = device::SelfSignedCertificate(*key, SystemClock());
      if (!self) {
        return self.error();
      }
      chain.push_back(std::move(*self));
    }
    auto reply = device::Get(*key, chain, client, "/v1/hello");
    if (!reply) {
      return reply.error();
    }
    auto body = json::parse(reply->body, nullptr, false);
    if (reply->status != 200 || body.is_discarded()) {
      return Error(Code::kUnavailable,
                   "server answered HTTP " + std::to_string(reply->status) + ": " + reply->body);
    }
    body["server_subject"] = reply->server_subject;
    std::string human = "The server (" + reply->server_subject +
                        ") says: " + body.value("message", std::string()) +
                        "\n  device id: " + body.value("device_id", std::string()) +
                        "\n  policy:    " + body.value("policy", std::string()) +
                        "\n  owner:     " + body.value("owner", std::string()) + "\n";
    Succeed(ctx, body, human);
    return OkStatus();
  }));
}

}  // namespace

void AddDeviceCommands(CLI::App& app, Context& ctx) {
  auto* dev = app.add_subcommand("device", "Device side: identity key, CSR, device ID");
  dev->require_subcommand(1);
  auto o = std::make_shared<DeviceOptions>();
  auto* key = dev->add_option("--key", o->key, "Device key file")->capture_default_str();
  dev->add_option("--keystore", o->keystore,
                  "Key store instead of --key: file:PATH, "
                  "pkcs11:module=SO;token=LABEL[;label=KEY], tpm:key=PATH[;tcti=TCTI]")
      ->excludes(key);
  AddPassphraseOption(dev, &o->passphrase_file);
  AddPinOption(dev, &o->pin_file);
  AddKeygen(dev, ctx, o);
  AddCsr(dev, ctx, o);
  AddId(dev, ctx, o);
  AddHello(dev, ctx, o);
}

}  // namespace hallmark::cli
