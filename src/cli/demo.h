// Demo: the steps of `hallmark demo` (cli-private).
#ifndef HALLMARK_CLI_DEMO_H_
#define HALLMARK_CLI_DEMO_H_

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ca/authority.h"
#include "core/key.h"
#include "core/status.h"
#include "registry/directory.h"
#include "server/server.h"

namespace hallmark::cli {

class Stopwatch {
 public:
  double Ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Demo runs the steps and collects a summary of checks: each must come out as expected.
class Demo {
 public:
  Demo(std::string dir, int devices) : dir_(std::move(dir)), devices_(devices) {}
  ~Demo();

  Status Run();
  nlohmann::json Summary() const { return summary_; }
  bool AllAsExpected() const { return failures_ == 0; }

 private:
  // The production-line CA (demo_command.cc).
  Status MakeCa();
  Status MakeDevices();
  Status VerifyWithOpenssl();
  Status PerCustomerTrust();
  Status Revocation();
  Status Refusals();
  // The owner's registry, the server and devices saying hello (demo_fleet.cc).
  Status MakeRegistry();
  Status StartServer();
  Status Hellos();
  Status TlsRefusals();

  // Check records one expectation and prints it.
  void Check(const std::string& what, bool as_expected, const std::string& outcome);
  // Openssl runs openssl with `args`; returns its exit code and most telling output line.
  Result<std::pair<int, std::string>> Openssl(const std::vector<std::string>& args);
  std::string DevicePath(const std::string& name, const std::string& file) const {
    return dir_ + "/devices/" + name + "/" + file;
  }
  Result<std::string> MakeDevice(const std::string& customer, const std::string& serial);
  // Hello says hello with `key` and `chain` to the listener at `port`; true if the server knew
  // the device.
  bool Hello(const PrivateKey& key, const std::vector<Certificate>& chain, uint16_t port,
             std::string* out_outcome);

  std::string dir_;
  int devices_;
  std::optional<ca::Authority> ca_;
  std::vector<std::string> acme_devices_;
  std::string globex_device_;
  std::string revoked_device_;
  nlohmann::json summary_ = nlohmann::json::object();
  int failures_ = 0;

  // The extract path: device keys the factory read into a manifest.
  std::vector<PrivateKey> extracted_;
  std::unique_ptr<registry::Directory> directory_;
  std::unique_ptr<server::Server> server_;
  std::thread server_thread_;
  uint16_t ca_port_ = 0;
  uint16_t registry_port_ = 0;
};

}  // namespace hallmark::cli

#endif  // HALLMARK_CLI_DEMO_H_
