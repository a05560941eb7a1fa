// The production-line station (`hallmark factory run`): provisions devices that make their keys
// inside their own key stores, taking from each only its public key (extract) or a CSR
// (inject). The station never holds a device's private key: every device is a separate process
// (see factory/device_agent.h) that the station talks to over a pipe.
#ifndef HALLMARK_FACTORY_STATION_H_
#define HALLMARK_FACTORY_STATION_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ca/authority.h"
#include "core/key.h"
#include "core/status.h"
#include "factory/device_agent.h"

namespace hallmark::factory {

enum class Mode {
  // kExtract: the device reports its public key; the station appends a line signed by the
  // factory key to the manifest that `hallmark registry import` reads.
  kExtract,
  // kInject: the device sends a CSR; the station checks its proof of possession, issues the
  // IDevID under the customer's intermediate and writes the certificate back to the device.
  kInject,
};

// ParseMode accepts "extract" and "inject".
Result<Mode> ParseMode(std::string_view name);
std::string_view ModeName(Mode mode);

struct StationOptions {
  std::string customer;
  int count = 0;
  Mode mode = Mode::kExtract;
  KeyType key_type = KeyType::kP256;
  // keystore says what holds each device's key:
  //   "file"                              a PEM file in the device's directory
  //   "pkcs11:module=SO;token=LABEL"      a key labelled with the device serial in the token
  //   "tpm" or "tpm:tcti=TCTI"            a TPM key whose blob is in the device's directory
  std::string keystore = "file";
  // pin_file is handed to the devices (pkcs11); the station does not read it.
  std::string pin_file;
  // line_dir holds the simulated devices, one directory per serial under LINE_DIR/devices.
  std::string line_dir;
  // Serials are `serial_prefix` followed by the device number, zero-padded to six digits,
  // starting at `first_number`.
  std::string serial_prefix;
  int first_number = 1;
  // agent_command starts one device: the station appends --keystore, --certificate and,
  // where set, --pin-file and --fault.
  std::vector<std::string> agent_command;
  // faults makes device number N misbehave (tests of the station's refusals).
  std::map<int, DeviceFault> faults;

  // extract: where lines are appended, and the key that signs them.
  std::string manifest_path;
  const PrivateKey* factory_key = nullptr;
  // inject: the CA that issues the IDevIDs.
  ca::Authority* authority = nullptr;
};

struct DeviceOutcome {
  std::string serial;
  std::string device_id;  // empty if the device never reported a key
  bool provisioned = false;
  std::string certificate_serial;  // inject
  std::string error;               // why the device was refused
};

struct StationSummary {
  std::vector<DeviceOutcome> devices;
  int provisioned = 0;
  int refused = 0;
  double seconds = 0;
  double DevicesPerSecond() const { return seconds > 0 ? provisioned / seconds : 0; }
};

// RunStation provisions `options.count` devices, one after another. Everything that does not
// depend on a device is checked first (customer, CA key, factory key, key store, directories,
// the manifest can be opened), so bad input fails with nothing written: kNotFound for an
// unknown customer or a manifest directory that does not exist, kInvalidArgument for a bad
// count, mode or key store, kAlreadyExists if a device directory exists, and the CA's errors
// for its key. A device that fails (its CSR does not verify, it presents another key,
// it crashes) is refused and recorded in the summary; nothing is written to the manifest or
// the issuance log for it, and the line goes on with the next device. Ignores SIGPIPE for the
// process (a device that dies must not kill the station).
Result<StationSummary> RunStation(const StationOptions& options);

}  // namespace hallmark::factory

#endif  // HALLMARK_FACTORY_STATION_H_
