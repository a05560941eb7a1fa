// `hallmark device claim | request-approval | code | enroll | renew`: the device side of
// enrollment in the field (docs/enrollment.md). Registered on the `device` group that
// device_command.cc creates, and sharing its key options (--key, --keystore, ...).
#include <charconv>
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
#include "device/enroll_client.h"
#include "device/key_store.h"
#include "device/tls_client.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

// GroupValue reads an option of the `device` group at callback time ("" if unset).
std::string GroupValue(CLI::App* group, const std::string& name) {
  CLI::Option* opt = group->get_option_no_throw(name);
  return opt == nullptr || opt->empty() ? (opt == nullptr ? "" : opt->get_default_str())
                                        : opt->as<std::string>();
}

// DeviceKey loads the device key the `device` group's options name, as its other commands do.
Result<PrivateKey> DeviceKey(CLI::App* group) {
  auto passphrase = LoadPassphrase(GroupValue(group, "--passphrase-file"));
  if (!passphrase) {
    return passphrase.error();
  }
  std::string keystore = GroupValue(group, "--keystore");
  if (keystore.empty()) {
    return device::FileKeyStore(GroupValue(group, "--key"), std::move(*passphrase)).Load();
  }
  auto pin = LoadPin(GroupValue(group, "--pin-file"));
  if (!pin) {
    return pin.error();
  }
  auto store = DeviceKeyStores().Open(keystore, {std::move(*passphrase), std::move(*pin)});
  if (!store) {
    return store.error();
  }
  return (*store)->Load();
}

// ServerOptions are the options of every command that talks to the server.
struct ServerOptions {
  std::string server;
  std::vector<std::string> trust;
  std::string server_name;
  std::string timeout = "10s";
};

void AddServerOptions(CLI::App* cmd, ServerOptions* o) {
  cmd->add_option("--server", o->server, "HOST:PORT of the server's device listener")->required();
  cmd->add_option("--trust", o->trust,
                  "Pinned server CA or server certificate (PEM); nothing else is trusted")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--server-name", o->server_name,
                  "Name the server certificate must carry (default: HOST)");
  cmd->add_option("--timeout", o->timeout, "Connect and I/O timeout")->capture_default_str();
}

Result<device::ClientOptions> ClientOptionsFrom(const ServerOptions& o) {
  device::ClientOptions c;
  size_t colon = o.server.rfind(':');
  uint16_t port = 0;
  std::string_view digits = colon == std::string::npos
                                ? std::string_view()
                                : std::string_view(o.server).substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (colon == std::string::npos || colon == 0 || ec != std::errc() ||
      end != digits.data() + digits.size() || port == 0) {
    return Error(Code::kInvalidArgument, "--server must be HOST:PORT, got '" + o.server + "'");
  }
  c.host = o.server.substr(0, colon);
  if (c.host.size() > 2 && c.host.front() == '[' && c.host.back() == ']') {
    c.host = c.host.substr(1, c.host.size() - 2);
  }
  c.port = port;
  c.server_name = o.server_name;
  auto timeout = ParseDuration(o.timeout);
  if (!timeout) {
    return timeout.error();
  }
  c.timeout = std::chrono::seconds(*timeout);
  for (const std::string& path : o.trust) {
    auto certs = Certificate::ChainFromFile(path);
    if (!certs) {
      return certs.error();
    }
    c.trust.insert(c.trust.end(), certs->begin(), certs->end());
  }
  return c;
}

// ReplyJson parses the server's JSON answer; a refusal becomes an error with its reason.
Result<json> ReplyJson(const device::ServerReply& reply, std::string_view what) {
  auto body = json::parse(reply.body, nullptr, false);
  if (reply.status >= 400) {
    std::string reason = body.is_object() ? body.value("error", reply.body) : reply.body;
    Code code = reply.status == 429   ? Code::kResourceExhausted
                : reply.status == 409 ? Code::kAlreadyExists
                : reply.status < 500  ? Code::kPermissionDenied
                                      : Code::kUnavailable;
    return Error(code, std::string(what) + " refused (HTTP " + std::to_string(reply.status) +
                           "): " + reason);
  }
  if (body.is_discarded() || !body.is_object()) {
    return Error(Code::kUnavailable, "the server answered HTTP " + std::to_string(reply.status) +
                                         " without a JSON object");
  }
  return body;
}

void AddCode(CLI::App* dev, Context& ctx) {
  auto* cmd = dev->add_subcommand(
      "code", "Print the code an operator compares before approving this device");
  cmd->callback(Run(ctx, [&ctx, dev]() -> Status {
    auto key = DeviceKey(dev);
    if (!key) {
      return key.error();
    }
    std::string code = device::ComparisonCode(key->Public());
    Succeed(ctx, json{{"code", code}, {"device_id", key->Public().DeviceId()}}, code + "\n");
    return OkStatus();
  }));
}

void AddClaim(CLI::App* dev, Context& ctx) {
  auto* cmd = dev->add_subcommand(
      "claim", "Enroll this device's own key through a batch secret (POST /v1/claim)");
  struct Opts {
    ServerOptions server;
    std::string batch;
    std::string serial;
    std::string secret_file;
  };
  auto opts = std::make_shared<Opts>();
  AddServerOptions(cmd, &opts->server);
  cmd->add_option("--batch", opts->batch, "Batch ID")->required();
  cmd->add_option("--serial", opts->serial, "This device's serial number")->required();
  cmd->add_option("--secret-file", opts->secret_file, "File holding the batch secret")
      ->required()
      ->envname("HALLMARK_BATCH_SECRET_FILE");
  cmd->callback(Run(ctx, [&ctx, dev, opts]() -> Status {
    auto client = ClientOptionsFrom(opts->server);
    if (!client) {
      return client.error();
    }
    auto text = ReadSecretFile(opts->secret_file);
    if (!text) {
      return text.error();
    }
    auto secret = device::ParseBatchSecret(text->view(SecretAccess::Grant()));
    if (!secret) {
      return secret.error().WithContext(opts->secret_file);
    }
    auto key = DeviceKey(dev);
    if (!key) {
      return key.error();
    }
    auto reply = device::Claim(
        *key, *client, device::BatchClaim{opts->batch, opts->serial, &*secret}, SystemClock());
    if (!reply) {
      return reply.error();
    }
    auto body = ReplyJson(*reply, "claim");
    if (!body) {
      return body.error();
    }
    Succeed(ctx, *body,
            "Enrolled through batch " + opts->batch + " as " + body->value("device_id", "") +
                " (serial " + opts->serial + "); from now on this key is the credential\n");
    return OkStatus();
  }));
}

void AddRequestApproval(CLI::App* dev, Context& ctx) {
  auto* cmd = dev->add_subcommand(
      "request-approval",
      "Ask to be enrolled by an operator; shows the code to compare (POST /v1/claim/pending)");
  struct Opts {
    ServerOptions server;
    std::string serial;
  };
  auto opts = std::make_shared<Opts>();
  AddServerOptions(cmd, &opts->server);
  cmd->add_option("--serial", opts->serial, "This device's serial number");
  cmd->callback(Run(ctx, [&ctx, dev, opts]() -> Status {
    auto client = ClientOptionsFrom(opts->server);
    if (!client) {
      return client.error();
    }
    auto key = DeviceKey(dev);
    if (!key) {
      return key.error();
    }
    auto reply = device::RequestApproval(*key, *client, opts->serial, SystemClock());
    if (!reply) {
      return reply.error();
    }
    auto body = ReplyJson(*reply, "approval request");
    if (!body) {
      return body.error();
    }
    std::string code = device::ComparisonCode(key->Public());
    (*body)["code"] = code;
    std::string human = body->value("status", "") == "active"
                            ? "This device is already enrolled (active)\n"
                            : "Waiting for approval. Code to compare: " + code +
                                  "\n"
                                  "  The operator runs: hallmark registry approve " +
                                  key->Public().DeviceId().substr(0, 16) + " --code " + code + "\n";
    Succeed(ctx, *body, human);
    return OkStatus();
  }));
}

// Enroll runs simpleenroll or simplereenroll and writes the certificate to `out`.
Status EnrollAndWrite(Context& ctx, CLI::App* dev, const ServerOptions& server,
                      const std::string& cert_path, const std::string& serial,
                      const std::string& out, bool reenroll) {
  auto client = ClientOptionsFrom(server);
  if (!client) {
    return client.error();
  }
  auto key = DeviceKey(dev);
  if (!key) {
    return key.error();
  }
  // The credential is the key: present the current certificate while it is valid, else a
  // self-signed one over the same key (enough for the registry policy).
  std::vector<Certificate> chain;
  if (!cert_path.empty()) {
    auto certs = Certificate::ChainFromFile(cert_path);
    if (!certs) {
      return certs.error();
    }
    if (certs->front().NotAfter() > SystemClock().Now()) {
      chain = std::move(*certs);
    }
  }
  if (chain.empty()) {
    auto self = device::SelfSignedCertificate(*key, SystemClock());
    if (!self) {
      return self.error();
    }
    chain.push_back(std::move(*self));
  }
  auto csr = Csr::Create(*key, DistinguishedName{"", "", "", serial, serial});
  if (!csr) {
    return csr.error();
  }
  auto cert = device::EstEnroll(*key, chain, *client, *csr, reenroll);
  if (!cert) {
    return cert.error();
  }
  if (auto s = WriteFileAtomic(out, cert->ToPem(), 0644); !s) {
    return s;
  }
  json j = {{"path", out},
            {"subject", cert->Subject()},
            {"serial", cert->SerialHex()},
            {"not_after", cert->NotAfter()},
            {"renew_after", device::RenewalTime(*cert)}};
  Succeed(ctx, j,
          "Wrote operational certificate " + out + " (" + cert->Subject() + ")\n  valid until " +
              FormatTime(cert->NotAfter()) + "; renew after " +
              FormatTime(device::RenewalTime(*cert)) + "\n");
  return OkStatus();
}

void AddEnroll(CLI::App* dev, Context& ctx) {
  auto* cmd = dev->add_subcommand(
      "enroll", "Get an operational certificate over EST (simpleenroll) for this device's key");
  struct Opts {
    ServerOptions server;
    std::string cert;
    std::string serial;
    std::string out = "operational.pem";
    std::string ca_out;
  };
  auto opts = std::make_shared<Opts>();
  AddServerOptions(cmd, &opts->server);
  cmd->add_option("--cert", opts->cert,
                  "Present this certificate chain (default: self-signed over the key)");
  cmd->add_option("--serial", opts->serial, "Serial to request (the server may decide)");
  cmd->add_option("--out", opts->out, "Write the certificate here")->capture_default_str();
  cmd->add_option("--ca-out", opts->ca_out, "Also write the CA chain (EST cacerts) here");
  cmd->callback(Run(ctx, [&ctx, dev, opts]() -> Status {
    if (!opts->ca_out.empty()) {
      auto client = ClientOptionsFrom(opts->server);
      auto key = client ? DeviceKey(dev) : Result<PrivateKey>(client.error());
      if (!key) {
        return key.error();
      }
      auto self = device::SelfSignedCertificate(*key, SystemClock());
      if (!self) {
        return self.error();
      }
      auto cacerts = device::FetchCaCerts(*key, std::vector<Certificate>{*self}, *client);
      if (!cacerts) {
        return cacerts.error();
      }
      if (auto s = WriteFileAtomic(opts->ca_out, ChainToPem(*cacerts), 0644); !s) {
        return s;
      }
    }
    return EnrollAndWrite(ctx, dev, opts->server, opts->cert, opts->serial, opts->out,
                          /*reenroll=*/false);
  }));
}

void AddRenew(CLI::App* dev, Context& ctx) {
  auto* cmd = dev->add_subcommand(
      "renew",
      "Renew the operational certificate over EST (simplereenroll) once two thirds of its "
      "lifetime have passed; works long after it expired, by the registered key");
  struct Opts {
    ServerOptions server;
    std::string cert;
    std::string out;
    bool force = false;
  };
  auto opts = std::make_shared<Opts>();
  AddServerOptions(cmd, &opts->server);
  cmd->add_option("--cert", opts->cert, "The current operational certificate (PEM)")->required();
  cmd->add_option("--out", opts->out, "Write the new certificate here (default: --cert)");
  cmd->add_flag("--force", opts->force, "Renew even if it is not due yet");
  cmd->callback(Run(ctx, [&ctx, dev, opts]() -> Status {
    auto current = Certificate::ChainFromFile(opts->cert);
    if (!current) {
      return current.error();
    }
    int64_t due = device::RenewalTime(current->front());
    if (!opts->force && SystemClock().Now() < due) {
      Succeed(ctx, json{{"renewed", false}, {"renew_after", due}},
              "Not due: " + opts->cert + " is renewed after " + FormatTime(due) +
                  " (use --force to renew now)\n");
      return OkStatus();
    }
    std::string serial = current->front().SubjectAttribute("serialNumber").value_or("");
    return EnrollAndWrite(ctx, dev, opts->server, opts->cert, serial,
                          opts->out.empty() ? opts->cert : opts->out, /*reenroll=*/true);
  }));
}

}  // namespace

void AddDeviceEnrollCommands(CLI::App& app, Context& ctx) {
  CLI::App* dev = app.get_subcommand("device");
  AddCode(dev, ctx);
  AddClaim(dev, ctx);
  AddRequestApproval(dev, ctx);
  AddEnroll(dev, ctx);
  AddRenew(dev, ctx);
}

}  // namespace hallmark::cli
