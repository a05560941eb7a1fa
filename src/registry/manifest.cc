#include "registry/manifest.h"

#include <nlohmann/json.hpp>

#include "core/encoding.h"
#include "registry/record.h"

namespace hallmark::registry {

std::string ManifestSigningText(std::string_view public_key_base64, std::string_view serial) {
  std::string text(kManifestMagic);
  text.append("\npublic_key=").append(public_key_base64).append("\nserial=").append(serial);
  text.append("\n");
  return text;
}

Status CheckDeviceKey(const PublicKey& key) {
  KeyAlgorithm a = key.Algorithm();
  switch (a.family) {
    case KeyAlgorithm::Family::kEd25519:
      return OkStatus();
    case KeyAlgorithm::Family::kEc:
      if (a.curve == "P-256" || a.curve == "P-384" || a.curve == "P-521") {
        return OkStatus();
      }
      break;
    case KeyAlgorithm::Family::kRsa:
      if (a.bits >= 2048) {
        return OkStatus();
      }
      break;
    default:
      break;
  }
  return Error(Code::kPermissionDenied,
               "device key is " + a.Describe() +
                   "; accepted are EC P-256, P-384, P-521, Ed25519 and RSA >= 2048");
}

Status ValidateSerial(std::string_view serial) {
  if (serial.empty()) {
    return Error(Code::kInvalidArgument, "serial is empty");
  }
  return ValidateText("serial", serial, kMaxSerialLength);
}

Result<ManifestIdentity> ParseManifestLine(std::string_view line, const PublicKey& factory_key) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Error(Code::kInvalidArgument, "not a JSON object");
  }
  const std::string* fields[3] = {nullptr, nullptr, nullptr};
  const char* names[3] = {"public_key", "serial", "signature"};
  for (int i = 0; i < 3; ++i) {
    auto it = j.find(names[i]);
    if (it == j.end() || !it->is_string()) {
      return Error(Code::kInvalidArgument,
                   std::string("field \"") + names[i] + "\" is missing or not a string");
    }
    fields[i] = it->get_ptr<const std::string*>();
  }
  const std::string& key_b64 = *fields[0];
  const std::string& serial = *fields[1];
  if (auto s = ValidateSerial(serial); !s) {
    return s.error();
  }
  auto signature = Base64Decode(*fields[2]);
  if (!signature) {
    return Error(Code::kInvalidArgument, "signature is not Base64");
  }
  auto der = Base64Decode(key_b64);
  if (!der) {
    return Error(Code::kInvalidArgument, "public_key is not Base64");
  }
  auto key = PublicKey::FromDer(*der);
  if (!key) {
    return key.error().WithContext("public_key");
  }
  if (auto s = factory_key.Verify(AsBytes(ManifestSigningText(key_b64, serial)), *signature); !s) {
    return Error(Code::kUnauthenticated,
                 "signature over serial '" + serial + "' does not verify with the factory key");
  }
  if (auto s = CheckDeviceKey(*key); !s) {
    return s.error();
  }
  return ManifestIdentity{std::move(*key), serial};
}

Result<std::string> FormatManifestLine(const PublicKey& device_key, std::string_view serial,
                                       const PrivateKey& factory_key) {
  if (auto s = ValidateSerial(serial); !s) {
    return s.error();
  }
  std::string key_b64 = Base64Encode(device_key.SpkiDer());
  auto sig = factory_key.Sign(AsBytes(ManifestSigningText(key_b64, serial)));
  if (!sig) {
    return sig.error();
  }
  nlohmann::json j = {
      {"public_key", key_b64}, {"serial", std::string(serial)}, {"signature", Base64Encode(*sig)}};
  return j.dump();
}

}  // namespace hallmark::registry
