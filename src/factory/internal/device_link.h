// DeviceLink: the station's end of the pipe to one simulated device (a `device-agent` process).
#ifndef HALLMARK_FACTORY_INTERNAL_DEVICE_LINK_H_
#define HALLMARK_FACTORY_INTERNAL_DEVICE_LINK_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace hallmark::factory::internal {

// DeviceLink runs a device agent and exchanges JSON lines with it. Not thread-safe; one link
// per device. The destructor closes the agent's input and reaps it (killing it if it hangs).
class DeviceLink {
 public:
  // Spawn starts `argv` (argv[0] is a path) with pipes on its stdin and stdout; its stderr is
  // the station's. kUnavailable if it cannot be started.
  static Result<std::unique_ptr<DeviceLink>> Spawn(const std::vector<std::string>& argv);

  ~DeviceLink();
  DeviceLink(const DeviceLink&) = delete;
  DeviceLink& operator=(const DeviceLink&) = delete;

  // Call sends `request` and returns the device's reply. A reply with "ok": false becomes an
  // Error with the device's code and message. kUnavailable if the device died or stayed silent
  // for `timeout` (a bound for a hung device, not a pacing delay); kInvalidArgument if it sent
  // something other than a JSON object.
  Result<nlohmann::json> Call(const nlohmann::json& request, std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }

 private:
  DeviceLink(pid_t pid, int to_device, int from_device)
      : pid_(pid), to_device_(to_device), from_device_(from_device) {}
  Result<std::string> ReadLine(std::chrono::milliseconds timeout);

  pid_t pid_;
  int to_device_;
  int from_device_;
  std::string pending_;
};

}  // namespace hallmark::factory::internal

#endif  // HALLMARK_FACTORY_INTERNAL_DEVICE_LINK_H_
