// The simulated device on the production line: a separate process that owns the device's key
// store and answers the station's requests as JSON lines over a pipe. The station only ever
// receives public keys, CSRs and acknowledgements from it.
//
// Requests (one JSON object per line on stdin) and replies (one per line on stdout):
//   {"op":"keygen","key_type":"p256"}   -> {"ok":true,"public_key":"<Base64 DER SPKI>"}
//   {"op":"csr","serial":"S"}           -> {"ok":true,"csr":"<Base64 DER CSR>"}
//   {"op":"install","certificate":"PEM chain"} -> {"ok":true,"path":"<where it was stored>"}
// A failure replies {"ok":false,"code":"<Code name>","error":"<message>"}. End of input ends
// the agent.
#ifndef HALLMARK_FACTORY_DEVICE_AGENT_H_
#define HALLMARK_FACTORY_DEVICE_AGENT_H_

#include <istream>
#include <ostream>
#include <string>

#include "core/status.h"
#include "device/key_store.h"

namespace hallmark::factory {

// DeviceFault makes a simulated device misbehave, to test that the station refuses it.
enum class DeviceFault {
  kNone,
  kBadCsr,    // the CSR's signature is corrupted (proof of possession fails)
  kOtherKey,  // the CSR is signed by a key other than the one the device reported
  kCrash,     // the device exits instead of answering the CSR request
};

// ParseDeviceFault accepts "none", "bad-csr", "other-key" and "crash"; DeviceFaultName is its
// inverse.
Result<DeviceFault> ParseDeviceFault(std::string_view name);
std::string_view DeviceFaultName(DeviceFault fault);

struct DeviceAgentOptions {
  // certificate_path is where `install` stores the certificate chain (the device's storage).
  std::string certificate_path;
  DeviceFault fault = DeviceFault::kNone;
};

// RunDeviceAgent serves requests from `in` until end of input, using `store` for the device
// key. Returns an error only if `out` cannot be written (the station went away); request
// failures are replies.
Status RunDeviceAgent(std::istream& in, std::ostream& out, device::KeyStore& store,
                      const DeviceAgentOptions& options);

}  // namespace hallmark::factory

#endif  // HALLMARK_FACTORY_DEVICE_AGENT_H_
