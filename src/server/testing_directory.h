// FakeDirectory: a registry::Directory for server tests, a seam the tests control.
#ifndef HALLMARK_SERVER_TESTING_DIRECTORY_H_
#define HALLMARK_SERVER_TESTING_DIRECTORY_H_

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/directory.h"

namespace hallmark::server::testing {

class FakeDirectory : public registry::Directory {
 public:
  // Put stores `record` and marks it changed (seen by the next Refresh).
  void Put(registry::DeviceRecord record) {
    std::lock_guard<std::mutex> lock(mu_);
    changed_.push_back(record.device_id);
    records_[record.device_id] = std::move(record);
  }
  // Tamper makes lookups of `device_id` fail verification.
  void Tamper(const std::string& device_id) {
    std::lock_guard<std::mutex> lock(mu_);
    tampered_.push_back(device_id);
  }

  Result<registry::DeviceRecord> Lookup(std::string_view device_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++lookups_;
    for (const std::string& t : tampered_) {
      if (t == device_id) {
        return Error(Code::kDataLoss, "signature does not verify");
      }
    }
    auto it = records_.find(std::string(device_id));
    if (it == records_.end()) {
      return Error(Code::kNotFound, "no such device");
    }
    return it->second;
  }

  Result<std::vector<std::string>> Refresh() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    out.swap(changed_);
    ++refreshes_;
    cv_.notify_all();
    return out;
  }

  int lookups() {
    std::lock_guard<std::mutex> lock(mu_);
    return lookups_;
  }

  // WaitForRefreshes blocks until Refresh has run `n` more times (bounded by `limit`).
  bool WaitForRefreshes(int n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu_);
    int target = refreshes_ + n;
    return cv_.wait_for(lock, limit, [&] { return refreshes_ >= target; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, registry::DeviceRecord, std::less<>> records_;
  std::vector<std::string> changed_;
  std::vector<std::string> tampered_;
  int lookups_ = 0;
  int refreshes_ = 0;
};

inline registry::DeviceRecord Record(const std::string& id, registry::DeviceStatus status) {
  registry::DeviceRecord r;
  r.device_id = id;
  r.status = status;
  r.owner = "ACME";
  r.serial = "SN-" + id.substr(0, 4);
  r.path = registry::ProvisioningPath::kExtract;
  return r;
}

}  // namespace hallmark::server::testing

#endif  // HALLMARK_SERVER_TESTING_DIRECTORY_H_
