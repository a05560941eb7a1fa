#include "device/key_store_factory.h"

#include "core/pkcs11.h"
#include "core/spec_params.h"
#include "device/pkcs11_key_store.h"
#include "device/tpm_key_store.h"

namespace hallmark::device {
namespace {

Result<std::unique_ptr<KeyStore>> OpenFile(std::string_view body, KeyStoreOptions options) {
  if (body.empty()) {
    return Error(Code::kInvalidArgument, "file key store needs a path: file:PATH");
  }
  return std::unique_ptr<KeyStore>(
      std::make_unique<FileKeyStore>(std::string(body), std::move(options.passphrase)));
}

Result<std::unique_ptr<KeyStore>> OpenPkcs11(std::string_view body, KeyStoreOptions options) {
  auto params = ParsePkcs11Params(body);
  if (!params) {
    return params.error();
  }
  if (!params->contains("module") || !params->contains("token")) {
    return Error(Code::kInvalidArgument,
                 "pkcs11 key store needs module= and token=: "
                 "pkcs11:module=/path/to/module.so;token=LABEL[;label=KEY]");
  }
  Pkcs11Options token;
  token.module = params->at("module");
  token.token = params->at("token");
  token.pin = std::move(options.pin);
  std::string label = params->contains("label") ? params->at("label") : kDefaultPkcs11Label;
  return std::unique_ptr<KeyStore>(
      std::make_unique<Pkcs11KeyStore>(std::move(token), std::move(label)));
}

Result<std::unique_ptr<KeyStore>> OpenTpm(std::string_view body, KeyStoreOptions /*options*/) {
  TpmOptions tpm;
  if (body.find('=') == std::string_view::npos) {
    tpm.key_path = std::string(body);
  } else {
    auto params = ParseSpecParams(body, SpecParamRules{"tpm", {"key", "tcti"}, {}});
    if (!params) {
      return params.error();
    }
    if (params->contains("key")) {
      tpm.key_path = params->at("key");
    }
    if (params->contains("tcti")) {
      tpm.tcti = params->at("tcti");
    }
  }
  if (tpm.key_path.empty()) {
    return Error(Code::kInvalidArgument,
                 "tpm key store needs the path of the key blob: tpm:key=PATH[;tcti=TCTI]");
  }
  return std::unique_ptr<KeyStore>(std::make_unique<TpmKeyStore>(std::move(tpm)));
}

}  // namespace

KeyStoreFactory KeyStoreFactory::WithBuiltins() {
  KeyStoreFactory f;
  f.schemes_["file"] = {"file:PATH", OpenFile};
  f.schemes_["pkcs11"] = {"pkcs11:module=SO;token=LABEL[;label=KEY]", OpenPkcs11};
  f.schemes_["tpm"] = {"tpm:key=PATH[;tcti=TCTI]", OpenTpm};
  return f;
}

Status KeyStoreFactory::Register(const std::string& scheme, std::string usage, Opener opener) {
  if (scheme.empty() || scheme.find(':') != std::string::npos || !opener) {
    return Error(Code::kInvalidArgument, "invalid key store scheme '" + scheme + "'");
  }
  if (!schemes_.emplace(scheme, Scheme{std::move(usage), std::move(opener)}).second) {
    return Error(Code::kAlreadyExists, "key store scheme '" + scheme + "' is already registered");
  }
  return OkStatus();
}

std::vector<std::string> KeyStoreFactory::Usage() const {
  std::vector<std::string> out;
  for (const auto& [name, scheme] : schemes_) {
    out.push_back(scheme.usage);
  }
  return out;
}

Result<std::unique_ptr<KeyStore>> KeyStoreFactory::Open(std::string_view spec,
                                                        KeyStoreOptions options) const {
  std::string forms;
  for (const std::string& u : Usage()) {
    forms += (forms.empty() ? "" : ", ") + u;
  }
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Error(Code::kInvalidArgument,
                 "key store '" + std::string(spec) + "' names no scheme; expected " + forms);
  }
  auto it = schemes_.find(spec.substr(0, colon));
  if (it == schemes_.end()) {
    return Error(
        Code::kInvalidArgument,
        "unknown key store '" + std::string(spec.substr(0, colon)) + "'; expected " + forms);
  }
  return it->second.opener(spec.substr(colon + 1), std::move(options));
}

Result<std::unique_ptr<KeyStore>> OpenKeyStore(std::string_view spec, KeyStoreOptions options) {
  return KeyStoreFactory::WithBuiltins().Open(spec, std::move(options));
}

}  // namespace hallmark::device
