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
#include "cli/registry_options.h"
#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "device/enroll_client.h"
#include "device/tls_client.h"
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
  // Enrollment in the field: batch claims, operator approval, EST (demo_enroll.cc).
  Status BatchClaims();
  Status ClaimRefusals();
  Status EngineerPresent();
  Status OperationalCertificates();

  // Check records one expectation and prints it.
  void Check(const std::string& what, bool as_expected, const std::string& outcome);
  // Openssl runs openssl with `args`; returns its exit code and most telling output line.
  Result<std::pair<int, std::string>> Openssl(const std::vector<std::string>& args);
  std::string DevicePath(const std::string& name, const std::string& file) const {
    return dir_ + "/devices/" + name + "/" + file;
  }
  Result<std::string> MakeDevice(const std::string& customer, const std::string& serial);
  // Client returns what a device connecting to the listener at `port` knows: the address and
  // its pinned ACME intermediate.
  device::ClientOptions Client(uint16_t port);
  // Hello says hello with `key` and `chain` to the listener at `port`; true if the server knew
  // the device.
  bool Hello(const PrivateKey& key, const std::vector<Certificate>& chain, uint16_t port,
             std::string* out_outcome);
  // HelloUntil says hello until the answer is `accepted` (the server's registry view refreshes
  // every 50 ms), at most 500 times. Returns the milliseconds it took, or nullopt.
  std::optional<double> HelloUntil(const PrivateKey& key, const std::vector<Certificate>& chain,
                                   uint16_t port, bool accepted, std::string* out_outcome);

  // OpenRegistrar opens the owner's registry with the registrar key, as `hallmark registry` and
  // `hallmark batch` do.
  Result<RegistrarSession> OpenRegistrar() const {
    return OpenAsRegistrar({dir_ + "/registry.db", dir_ + "/registrar.key", "", ""}, "demo");
  }
  // CreateBatch has the registrar sign batch `id` of `size` devices for the server's enrollment
  // key, claimable for a day, and returns its secret (the registry keeps only a verifier).
  Result<SecretBytes> CreateBatch(RegistrarSession& session, const std::string& id, uint64_t size);
  // ClaimAs claims `serial` of batch `batch_id` with `key` on the enrollment listener.
  Result<device::ServerReply> ClaimAs(const PrivateKey& key, const std::string& batch_id,
                                      const std::string& serial, const SecretBytes& secret);

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

  // Enrollment in the field: the server's enrollment key, the listener that admits unknown
  // devices to the claim endpoints, and the devices that claimed through the batch.
  std::optional<PublicKey> enrollment_key_;
  uint16_t enroll_port_ = 0;
  SecretBytes batch_secret_;
  std::vector<std::pair<PrivateKey, std::string>> claimed_;
};

}  // namespace hallmark::cli

#endif  // HALLMARK_CLI_DEMO_H_
