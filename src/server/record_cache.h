// RecordCache: the server's view of the registry. Records enter the cache only after the
// registry verified them (signature, latest log entry); a refresher invalidates changed records.
#ifndef HALLMARK_SERVER_RECORD_CACHE_H_
#define HALLMARK_SERVER_RECORD_CACHE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/status.h"
#include "registry/directory.h"

namespace hallmark::server {

// RecordCache caches registry lookups, positive and negative. Thread-safe.
//
// Freshness: `Refresh()` asks the directory for changed devices and drops their entries; the
// server calls it every `refresh_interval` (default 250 ms) from a background thread, so a
// revocation reaches every worker within one interval plus the time to sign its tree head.
// Entries also expire after `max_age` as a backstop.
class RecordCache {
 public:
  struct Options {
    std::chrono::milliseconds refresh_interval{250};
    std::chrono::seconds max_age{60};
    size_t max_entries = 1'000'000;
  };

  RecordCache(registry::Directory* directory, Options options);
  ~RecordCache();
  RecordCache(const RecordCache&) = delete;
  RecordCache& operator=(const RecordCache&) = delete;

  // Lookup returns the verified record, from the cache or the directory. kNotFound if there is
  // no such device; kDataLoss if its stored record failed verification.
  Result<registry::DeviceRecord> Lookup(std::string_view device_id);

  // Refresh drops entries of devices that changed. Returns how many it dropped.
  Result<size_t> Refresh();

  // StartRefresher runs Refresh every `refresh_interval` on a background thread until the cache
  // is destroyed.
  void StartRefresher();

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  uint64_t refreshes() const { return refreshes_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::optional<registry::DeviceRecord> record;  // nullopt: known not to exist
    std::chrono::steady_clock::time_point loaded;
  };

  registry::Directory* directory_;
  Options options_;
  std::shared_mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  // generation_ changes (under mu_) whenever entries are dropped; a lookup that read the
  // directory while a refresh ran must not cache what it read.
  uint64_t generation_ = 0;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> refreshes_{0};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread refresher_;
};

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_RECORD_CACHE_H_
