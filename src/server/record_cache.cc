#include "server/record_cache.h"

#include <spdlog/spdlog.h>

#include <bit>
#include <mutex>
#include <optional>
#include <string>

#include "server/internal/lru_map.h"
#include "server/internal/periodic.h"

namespace hallmark::server {
namespace internal {

struct RecordShard {
  struct Positive {
    CachedRecord record;
    std::chrono::steady_clock::time_point loaded;
  };
  struct Negative {
    std::chrono::steady_clock::time_point loaded;
  };

  RecordShard(size_t capacity, size_t negative_capacity, DigestHash hash)
      : positive(capacity, hash), negative(negative_capacity, hash) {}

  std::mutex mu;
  LruMap<Positive> positive;
  LruMap<Negative> negative;
  // generation changes whenever entries are dropped; a lookup that read the directory while a
  // refresh ran must not cache what it read.
  uint64_t generation = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
};

}  // namespace internal

namespace {

using internal::Digest;

// ParseDeviceId decodes 64 lowercase hex digits, the only form device IDs take on the lookup
// path; anything else is left to the directory to refuse.
std::optional<Digest> ParseDeviceId(std::string_view id) {
  if (id.size() != 64) {
    return std::nullopt;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    return -1;
  };
  Digest out;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(id[2 * i]);
    int lo = nibble(id[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

Error NotRegistered(std::string_view device_id) {
  return Error(Code::kNotFound, "device " + std::string(device_id) + " is not registered");
}

// Slim drops what the server never needs again once the record has been verified.
CachedRecord Slim(registry::DeviceRecord record) {
  record.public_key = Bytes();
  record.signature = Bytes();
  return std::make_shared<const registry::DeviceRecord>(std::move(record));
}

}  // namespace

RecordCache::RecordCache(registry::Directory* directory, Options options)
    : directory_(directory), options_(options), seed_(internal::NewDigestHash().seed) {
  const size_t n = std::bit_ceil(std::max<size_t>(1, options_.shards));
  auto per_shard = [n](size_t total) { return total == 0 ? 0 : (total + n - 1) / n; };
  shards_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<internal::RecordShard>(
        per_shard(options_.cache_size), per_shard(options_.negative_cache_size),
        internal::DigestHash{seed_}));
  }
}

RecordCache::~RecordCache() = default;

internal::RecordShard& RecordCache::ShardOf(size_t hash) const {
  // The maps index buckets by the hash modulo a prime; the shard takes other bits.
  return *shards_[(hash >> 40) & (shards_.size() - 1)];
}

Result<CachedRecord> RecordCache::Lookup(std::string_view device_id) {
  auto key = ParseDeviceId(device_id);
  if (!key) {
    auto record = directory_->Lookup(device_id);
    if (!record) {
      return record.error();
    }
    return Slim(std::move(*record));
  }
  internal::RecordShard& shard = ShardOf(internal::DigestHash{seed_}(*key));
  const auto now = std::chrono::steady_clock::now();
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    if (auto* p = shard.positive.Find(*key); p != nullptr) {
      if (now - p->loaded < options_.max_age) {
        ++shard.hits;
        return p->record;
      }
      shard.positive.Erase(*key);
    } else if (auto* n = shard.negative.Find(*key); n != nullptr) {
      if (now - n->loaded < options_.max_age) {
        ++shard.hits;
        return NotRegistered(device_id);
      }
      shard.negative.Erase(*key);
    }
    ++shard.misses;
    generation = shard.generation;
  }
  auto record = directory_->Lookup(device_id);
  if (!record && record.error().code() != Code::kNotFound) {
    // Tampered or unreadable: never cached, so a repaired row is seen at once.
    return record.error();
  }
  CachedRecord cached = record ? Slim(std::move(*record)) : nullptr;
  std::lock_guard<std::mutex> lock(shard.mu);
  if (generation == shard.generation) {
    // Otherwise a refresh ran meanwhile and may have dropped this very device: answer, but
    // don't cache.
    if (cached) {
      shard.negative.Erase(*key);
      shard.evictions += shard.positive.Insert(*key, {cached, now}) ? 1 : 0;
    } else {
      shard.positive.Erase(*key);
      shard.evictions += shard.negative.Insert(*key, {now}) ? 1 : 0;
    }
  }
  if (!cached) {
    return NotRegistered(device_id);
  }
  return cached;
}

size_t RecordCache::Forget(std::string_view device_id) {
  auto key = ParseDeviceId(device_id);
  if (!key) {
    return 0;
  }
  internal::RecordShard& shard = ShardOf(internal::DigestHash{seed_}(*key));
  std::lock_guard<std::mutex> lock(shard.mu);
  ++shard.generation;
  return (shard.positive.Erase(*key) ? 1 : 0) + (shard.negative.Erase(*key) ? 1 : 0);
}

Result<size_t> RecordCache::Refresh() {
  auto changed = directory_->Refresh();
  if (!changed) {
    if (options_.metrics != nullptr) {
      options_.metrics->RegistryRefreshFailed();
    }
    return changed.error();
  }
  size_t dropped = 0;
  for (const std::string& id : *changed) {
    dropped += Forget(id);
  }
  if (options_.metrics != nullptr) {
    options_.metrics->RegistryRefreshed(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
    options_.metrics->SetRecordCacheStats(Stats());
  }
  return dropped;
}

void RecordCache::Clear() {
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    ++shard->generation;
    shard->positive.Clear();
    shard->negative.Clear();
  }
}

RecordCacheStats RecordCache::Stats() const {
  RecordCacheStats stats;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    stats.entries += shard->positive.size();
    stats.negative_entries += shard->negative.size();
    stats.hits += shard->hits;
    stats.misses += shard->misses;
    stats.evictions += shard->evictions;
  }
  return stats;
}

void RecordCache::StartRefresher() {
  refresher_ = std::make_unique<internal::PeriodicThread>(options_.refresh_interval, [this]() {
    if (auto r = Refresh(); !r) {
      // The directory keeps serving what it verified; the cache forgets everything so that no
      // entry outlives a change this refresh could not see. Lookups cost more until it recovers.
      spdlog::error("event=registry_refresh_failed error=\"{}\"", r.error().message());
      Clear();
    }
  });
}

}  // namespace hallmark::server
