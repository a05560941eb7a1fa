#include "factory/device_agent.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/csr.h"
#include "core/encoding.h"
#include "core/file.h"

namespace hallmark::factory {
namespace {

using nlohmann::json;

json Fail(const Error& e) {
  return {{"ok", false}, {"code", std::string(CodeName(e.code()))}, {"error", e.message()}};
}

Result<json> Keygen(device::KeyStore& store, const json& request) {
  auto type = ParseKeyType(request.value("key_type", std::string("p256")));
  if (!type) {
    return type.error();
  }
  auto pub = store.Create(*type);
  if (!pub) {
    return pub.error();
  }
  return json{{"ok", true}, {"public_key", Base64Encode(pub->SpkiDer())}};
}

Result<json> MakeCsr(device::KeyStore& store, const json& request, DeviceFault fault) {
  const std::string serial = request.value("serial", std::string());
  if (serial.empty()) {
    return Error(Code::kInvalidArgument, "csr request without a serial");
  }
  if (fault == DeviceFault::kCrash) {
    std::_Exit(3);
  }
  auto key = fault == DeviceFault::kOtherKey ? PrivateKey::Generate(KeyType::kP256) : store.Load();
  if (!key) {
    return key.error();
  }
  DistinguishedName subject;
  subject.serial_number = serial;
  subject.common_name = serial;
  auto csr = Csr::Create(*key, subject, {});
  if (!csr) {
    return csr.error();
  }
  Bytes der = csr->ToDer();
  if (fault == DeviceFault::kBadCsr) {
    // The signature BIT STRING ends the DER: flip a bit inside it.
    der[der.size() - 3] ^= 0x01;
  }
  return json{{"ok", true}, {"csr", Base64Encode(der)}};
}

Result<json> Install(const json& request, const DeviceAgentOptions& options) {
  const std::string pem = request.value("certificate", std::string());
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return Error(Code::kInvalidArgument, "install request without a PEM certificate");
  }
  if (auto s = WriteFileAtomic(options.certificate_path, pem, 0644); !s) {
    return s.error();
  }
  return json{{"ok", true}, {"path", options.certificate_path}};
}

}  // namespace

constexpr std::pair<DeviceFault, std::string_view> kFaultNames[] = {
    {DeviceFault::kNone, "none"},
    {DeviceFault::kBadCsr, "bad-csr"},
    {DeviceFault::kOtherKey, "other-key"},
    {DeviceFault::kCrash, "crash"},
};

Result<DeviceFault> ParseDeviceFault(std::string_view name) {
  for (const auto& [fault, fault_name] : kFaultNames) {
    if (name == fault_name) {
      return fault;
    }
  }
  return Error(Code::kInvalidArgument, "unknown device fault '" + std::string(name) +
                                           "'; expected none, bad-csr, other-key or crash");
}

std::string_view DeviceFaultName(DeviceFault fault) {
  for (const auto& [f, name] : kFaultNames) {
    if (f == fault) {
      return name;
    }
  }
  return "none";
}

Status RunDeviceAgent(std::istream& in, std::ostream& out, device::KeyStore& store,
                      const DeviceAgentOptions& options) {
  std::string line;
  while (std::getline(in, line)) {
    auto request = json::parse(line, nullptr, /*allow_exceptions=*/false);
    Result<json> reply = Error(Code::kInvalidArgument, "request is not a JSON object");
    if (!request.is_discarded() && request.is_object()) {
      const std::string op = request.value("op", std::string());
      if (op == "keygen") {
        reply = Keygen(store, request);
      } else if (op == "csr") {
        reply = MakeCsr(store, request, options.fault);
      } else if (op == "install") {
        reply = Install(request, options);
      } else {
        reply = Error(Code::kInvalidArgument, "unknown request '" + op + "'");
      }
    }
    out << (reply ? *reply : Fail(reply.error())).dump() << "\n" << std::flush;
    if (!out) {
      return Error(Code::kUnavailable, "the station stopped listening");
    }
  }
  return OkStatus();
}

}  // namespace hallmark::factory
