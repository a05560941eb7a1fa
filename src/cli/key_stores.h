// Key store options the commands that hold keys share (`--keystore`, `--pin-file`), and the
// one place where the device key store schemes are assembled.
#ifndef HALLMARK_CLI_KEY_STORES_H_
#define HALLMARK_CLI_KEY_STORES_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "core/secret_bytes.h"
#include "core/status.h"
#include "device/key_store_factory.h"

namespace hallmark::cli {

// DeviceKeyStores returns the factory for `--keystore` specs: file, pkcs11 and tpm, plus the
// schemes of parts above `device`, which are registered here (the PUF store, `puf:`).
device::KeyStoreFactory DeviceKeyStores();

// OpenDeviceKeyStore opens the device key store `spec` with the passphrase and PIN read from
// the given files (either may be empty; the PIN may come from HALLMARK_PIN, and is not read
// for `file:` stores).
Result<std::unique_ptr<device::KeyStore>> OpenDeviceKeyStore(const std::string& spec,
                                                             const std::string& passphrase_file,
                                                             const std::string& pin_file);

// AddPinOption adds --pin-file to `cmd`; the path may also come from HALLMARK_PIN_FILE.
void AddPinOption(CLI::App* cmd, std::string* path);

// LoadPin returns the PKCS#11 user PIN: the contents of `path` if given, else the
// HALLMARK_PIN environment variable, else none. Never a command-line argument.
Result<std::optional<SecretBytes>> LoadPin(const std::string& path);

}  // namespace hallmark::cli

#endif  // HALLMARK_CLI_KEY_STORES_H_
