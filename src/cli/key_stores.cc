#include "cli/key_stores.h"

#include <cstdlib>
#include <stdexcept>

#include "cli/common.h"
#include "core/file.h"
#include "core/spec_params.h"
#include "puf/puf_key_store.h"

namespace hallmark::cli {

namespace {

// OpenPufStore opens "puf:helper=PATH;chip=SEED[;ber=0.15;bias=0.5]": the helper data file and
// the simulated chip that stands in for the silicon (docs/puf.md).
Result<std::unique_ptr<device::KeyStore>> OpenPufStore(std::string_view body,
                                                       device::KeyStoreOptions /*options*/) {
  auto params = ParseSpecParams(body, {"puf", {"helper", "chip", "ber", "bias"}, {}});
  if (!params) {
    return params.error();
  }
  puf::PufKeyStoreOptions o;
  auto get = [&](const char* key) -> const std::string* {
    auto it = params->find(key);
    return it == params->end() ? nullptr : &it->second;
  };
  if (get("helper") == nullptr || get("chip") == nullptr) {
    return Error(Code::kInvalidArgument, "a puf key store needs helper=PATH;chip=SEED");
  }
  o.helper_path = *get("helper");
  try {
    size_t used = 0;
    o.chip_seed = std::stoull(*get("chip"), &used, 0);
    if (used != get("chip")->size()) {
      throw std::invalid_argument("trailing characters");
    }
    if (const std::string* ber = get("ber"); ber != nullptr) {
      o.model.ber = std::stod(*ber);
    }
    if (const std::string* bias = get("bias"); bias != nullptr) {
      o.model.bias = std::stod(*bias);
    }
  } catch (const std::exception&) {
    return Error(Code::kInvalidArgument,
                 "puf key store: chip must be an integer and ber, bias numbers");
  }
  auto store = puf::PufKeyStore::Open(std::move(o));
  if (!store) {
    return store.error();
  }
  return std::unique_ptr<device::KeyStore>(
      std::make_unique<puf::PufKeyStore>(std::move(*store)));
}

}  // namespace

device::KeyStoreFactory DeviceKeyStores() {
  device::KeyStoreFactory factory = device::KeyStoreFactory::WithBuiltins();
  // Schemes from parts above `device` are registered here.
  if (auto s = factory.Register("puf", "puf:helper=PATH;chip=SEED[;ber=B;bias=B]", OpenPufStore);
      !s) {
    throw std::logic_error(s.error().message());
  }
  return factory;
}

Result<std::unique_ptr<device::KeyStore>> OpenDeviceKeyStore(const std::string& spec,
                                                             const std::string& passphrase_file,
                                                             const std::string& pin_file) {
  auto passphrase = LoadPassphrase(passphrase_file);
  if (!passphrase) {
    return passphrase.error();
  }
  // A file store needs no PIN; a stale HALLMARK_PIN_FILE must not break it.
  Result<std::optional<SecretBytes>> pin = std::optional<SecretBytes>();
  if (!spec.starts_with("file:")) {
    pin = LoadPin(pin_file);
  }
  if (!pin) {
    return pin.error();
  }
  return DeviceKeyStores().Open(spec, {std::move(*passphrase), std::move(*pin)});
}

void AddPinOption(CLI::App* cmd, std::string* path) {
  cmd->add_option("--pin-file", *path,
                  "File holding the PKCS#11 token's user PIN (or set HALLMARK_PIN)")
      ->envname("HALLMARK_PIN_FILE");
}

Result<std::optional<SecretBytes>> LoadPin(const std::string& path) {
  if (!path.empty()) {
    auto pin = ReadSecretFile(path);
    if (!pin) {
      return pin.error();
    }
    return std::optional<SecretBytes>(std::move(*pin));
  }
  if (const char* env = std::getenv("HALLMARK_PIN"); env != nullptr && *env != '\0') {
    return std::optional<SecretBytes>(SecretBytes(std::string_view(env)));
  }
  return std::optional<SecretBytes>();
}

}  // namespace hallmark::cli
