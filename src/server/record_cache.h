// RecordCache: the server's view of the registry. Records enter the cache only after the
// registry verified them (signature, latest log entry); a refresher invalidates changed records.
#ifndef HALLMARK_SERVER_RECORD_CACHE_H_
#define HALLMARK_SERVER_RECORD_CACHE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "registry/directory.h"
#include "server/metrics.h"

namespace hallmark::server {

namespace internal {
class PeriodicThread;
struct RecordShard;
}  // namespace internal

// CachedRecord is a verified record as the cache keeps it: without `public_key` and `signature`
// (checked when it entered the cache, and not needed after), to keep entries small.
using CachedRecord = std::shared_ptr<const registry::DeviceRecord>;

// RecordCache caches registry lookups in two bounded LRU caches: records (`cache_size`), and
// answers that a device is not registered (`negative_cache_size`). Unauthenticated peers choose
// the keys they present, so they can fill the negative cache at will; it is separate, so they
// can never push out a registered device's record, and both are bounded, so memory is too.
//
// Thread-safe. Entries are spread over `shards` shards by a keyed hash of the device ID, each
// with its own mutex, so lookups from many worker threads rarely wait for each other.
//
// Freshness: `Refresh()` asks the directory for changed devices and drops their entries (in both
// caches); the server calls it every `refresh_interval` (default 250 ms) from a background
// thread, so a revocation reaches every worker within one interval plus the time to sign its
// tree head. Entries also expire after `max_age` as a backstop.
class RecordCache {
 public:
  struct Options {
    std::chrono::milliseconds refresh_interval{250};
    std::chrono::seconds max_age{60};
    size_t cache_size = 100'000;          // records; 0 disables caching them
    size_t negative_cache_size = 10'000;  // "not registered" answers; 0 disables
    size_t shards = 16;                   // rounded up to a power of two
    Metrics* metrics = nullptr;           // optional: refresh outcomes and cache figures
  };

  // `directory` (and `options.metrics`, if set) must outlive the cache.
  RecordCache(registry::Directory* directory, Options options);
  ~RecordCache();
  RecordCache(const RecordCache&) = delete;
  RecordCache& operator=(const RecordCache&) = delete;

  // Lookup returns the verified record, from the cache or the directory. kNotFound if there is
  // no such device; kDataLoss if its stored record failed verification (never cached, so a
  // repaired row is seen at once); kInvalidArgument (from the directory, uncached) if
  // `device_id` is not 64 lowercase hex digits.
  Result<CachedRecord> Lookup(std::string_view device_id);

  // Refresh drops the entries of devices that changed. Returns how many it dropped. On failure
  // the cache is left as it is (the refresher then empties it).
  Result<size_t> Refresh();

  // Forget drops what the cache holds for `device_id` (when the server itself changed the
  // registry, e.g. a device claimed its record). Returns how many entries it dropped.
  size_t Forget(std::string_view device_id);

  // StartRefresher runs Refresh every `refresh_interval` on a background thread until the cache
  // is destroyed. When a refresh fails it logs, counts, and empties the cache, so every lookup
  // goes to the directory until a refresh succeeds again.
  void StartRefresher();

  // Stats returns the cache's counters (summed over the shards).
  RecordCacheStats Stats() const;
  uint64_t hits() const { return Stats().hits; }
  uint64_t misses() const { return Stats().misses; }

 private:
  internal::RecordShard& ShardOf(size_t hash) const;
  void Clear();

  registry::Directory* directory_;
  Options options_;
  uint64_t seed_;  // of the keyed hash of device IDs: peers choose the IDs they present
  std::vector<std::unique_ptr<internal::RecordShard>> shards_;
  std::unique_ptr<internal::PeriodicThread> refresher_;  // last: stops before the rest goes
};

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_RECORD_CACHE_H_
