#include "server/record_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "server/testing_directory.h"
#include "testing/matchers.h"

namespace hallmark::server {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using registry::DeviceStatus;
using testing::FakeDirectory;
using ::testing::HasSubstr;
using testing::Record;

// Id returns the device ID numbered `n` (64 lowercase hex digits, like a real one).
std::string Id(uint64_t n) {
  char buf[65];
  std::snprintf(buf, sizeof(buf), "%064llx", static_cast<unsigned long long>(n));
  return buf;
}

DeviceStatus StatusOf(RecordCache& cache, const std::string& id) {
  auto r = cache.Lookup(id);
  EXPECT_THAT(r, IsOk());
  return r ? (*r)->status : DeviceStatus::kPending;
}

// OneShard makes LRU order exact, for tests that count evictions.
RecordCache::Options OneShard(size_t cache_size, size_t negative_cache_size) {
  RecordCache::Options o;
  o.cache_size = cache_size;
  o.negative_cache_size = negative_cache_size;
  o.shards = 1;
  return o;
}

TEST(RecordCacheTest, ServesRepeatLookupsFromTheCache) {
  FakeDirectory dir;
  dir.Put(Record(Id(1), DeviceStatus::kActive));
  RecordCache cache(&dir, {});
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  EXPECT_EQ(dir.lookups(), 1);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(RecordCacheTest, CachedRecordsKeepWhatPoliciesNeedButNotTheKeyOrSignature) {
  FakeDirectory dir;
  registry::DeviceRecord r = Record(Id(1), DeviceStatus::kActive);
  r.public_key = Bytes(44, 1);
  r.signature = Bytes(64, 2);
  dir.Put(r);
  RecordCache cache(&dir, {});
  auto cached = cache.Lookup(Id(1));
  ASSERT_THAT(cached, IsOk());
  EXPECT_EQ((*cached)->owner, "ACME");
  EXPECT_EQ((*cached)->serial, r.serial);
  EXPECT_EQ((*cached)->path, registry::ProvisioningPath::kExtract);
  EXPECT_TRUE((*cached)->public_key.empty());
  EXPECT_TRUE((*cached)->signature.empty());
}

TEST(RecordCacheTest, RefreshDropsChangedRecordsSoARevocationIsSeen) {
  FakeDirectory dir;
  dir.Put(Record(Id(1), DeviceStatus::kActive));
  RecordCache cache(&dir, {});
  ASSERT_THAT(cache.Refresh(), IsOk());
  ASSERT_EQ(StatusOf(cache, Id(1)), DeviceStatus::kActive);
  dir.Put(Record(Id(1), DeviceStatus::kRevoked));
  // Until the refresh the cached record stands ...
  EXPECT_EQ(StatusOf(cache, Id(1)), DeviceStatus::kActive);
  auto dropped = cache.Refresh();
  ASSERT_THAT(dropped, IsOk());
  EXPECT_EQ(*dropped, 1u);
  // ... and after it the revocation applies.
  EXPECT_EQ(StatusOf(cache, Id(1)), DeviceStatus::kRevoked);
}

TEST(RecordCacheTest, UnknownDevicesAreCachedUntilTheyAppear) {
  FakeDirectory dir;
  RecordCache cache(&dir, {});
  EXPECT_THAT(cache.Lookup(Id(2)), HasError(Code::kNotFound, HasSubstr("not registered")));
  EXPECT_THAT(cache.Lookup(Id(2)), HasError(Code::kNotFound, HasSubstr("not registered")));
  EXPECT_EQ(dir.lookups(), 1);
  dir.Put(Record(Id(2), DeviceStatus::kActive));
  ASSERT_THAT(cache.Refresh(), IsOk());
  EXPECT_THAT(cache.Lookup(Id(2)), IsOk());
}

TEST(RecordCacheTest, TamperedRecordsAreNeverCached) {
  FakeDirectory dir;
  dir.Put(Record(Id(3), DeviceStatus::kActive));
  dir.Tamper(Id(3));
  RecordCache cache(&dir, {});
  EXPECT_THAT(cache.Lookup(Id(3)), HasError(Code::kDataLoss, HasSubstr("signature")));
  EXPECT_THAT(cache.Lookup(Id(3)), HasError(Code::kDataLoss, HasSubstr("signature")));
  EXPECT_EQ(dir.lookups(), 2);
}

TEST(RecordCacheTest, MalformedIdsGoToTheDirectoryUncached) {
  FakeDirectory dir;
  RecordCache cache(&dir, {});
  EXPECT_THAT(cache.Lookup("ABCD"), HasError(Code::kNotFound, HasSubstr("no such device")));
  EXPECT_THAT(cache.Lookup("ABCD"), HasError(Code::kNotFound, HasSubstr("no such device")));
  EXPECT_EQ(dir.lookups(), 2);
  EXPECT_EQ(cache.Stats().negative_entries, 0u);
}

// Attack: unauthenticated clients present random keys, so the server looks up one unknown
// device ID after another. The cache of "not registered" answers stays within its bound, and a
// registered device's record is never pushed out: it is still served without a directory read.
TEST(RecordCacheTest, FloodOfUnknownDevicesNeitherEvictsRecordsNorGrowsTheCache) {
  FakeDirectory dir;
  dir.Put(Record(Id(1), DeviceStatus::kActive));
  RecordCache cache(&dir, OneShard(4, 8));
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_THAT(cache.Lookup(Id(1'000'000 + i)), HasError(Code::kNotFound, HasSubstr("not")));
  }
  const int before = dir.lookups();
  EXPECT_EQ(StatusOf(cache, Id(1)), DeviceStatus::kActive);
  EXPECT_EQ(dir.lookups(), before);
  RecordCacheStats stats = cache.Stats();
  EXPECT_EQ(stats.negative_entries, 8u);
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.evictions, 1000u - 8u);
}

// The legitimate twin: the same number of registered devices share the record cache, least
// recently used out first.
TEST(RecordCacheTest, RecordCacheIsBoundedLeastRecentlyUsedFirst) {
  FakeDirectory dir;
  for (uint64_t i = 1; i <= 3; ++i) {
    dir.Put(Record(Id(i), DeviceStatus::kActive));
  }
  RecordCache cache(&dir, OneShard(2, 8));
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  ASSERT_THAT(cache.Lookup(Id(2)), IsOk());
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());  // 1 is now more recent than 2
  ASSERT_THAT(cache.Lookup(Id(3)), IsOk());  // evicts 2
  EXPECT_EQ(dir.lookups(), 3);
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  EXPECT_EQ(dir.lookups(), 3);
  ASSERT_THAT(cache.Lookup(Id(2)), IsOk());
  EXPECT_EQ(dir.lookups(), 4);
  EXPECT_EQ(cache.Stats().entries, 2u);
}

TEST(RecordCacheTest, ZeroSizesDisableCaching) {
  FakeDirectory dir;
  dir.Put(Record(Id(1), DeviceStatus::kActive));
  RecordCache cache(&dir, OneShard(0, 0));
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  EXPECT_THAT(cache.Lookup(Id(2)), HasError(Code::kNotFound, HasSubstr("not registered")));
  EXPECT_THAT(cache.Lookup(Id(2)), HasError(Code::kNotFound, HasSubstr("not registered")));
  EXPECT_EQ(dir.lookups(), 4);
}

// RacingDirectory revokes a device and lets the cache refresh while a lookup of that device is
// between its directory read (which saw it active) and caching the answer.
class RacingDirectory : public FakeDirectory {
 public:
  RecordCache* cache = nullptr;
  bool race = false;
  Result<registry::DeviceRecord> Lookup(std::string_view device_id) override {
    auto r = FakeDirectory::Lookup(device_id);
    if (race) {
      race = false;
      Put(Record(std::string(device_id), DeviceStatus::kRevoked));
      EXPECT_THAT(cache->Refresh(), IsOk());
    }
    return r;
  }
};

TEST(RecordCacheTest, ALookupThatRacedARefreshDoesNotCacheWhatItRead) {
  RacingDirectory dir;
  dir.Put(Record(Id(1), DeviceStatus::kActive));
  RecordCache cache(&dir, {});
  dir.cache = &cache;
  ASSERT_THAT(cache.Refresh(), IsOk());
  dir.race = true;
  // The racing lookup answers what it read ...
  EXPECT_EQ(StatusOf(cache, Id(1)), DeviceStatus::kActive);
  // ... but did not cache it, so the revocation applies from the next lookup on.
  EXPECT_EQ(StatusOf(cache, Id(1)), DeviceStatus::kRevoked);
}

TEST(RecordCacheTest, BackgroundRefresherPropagatesARevocationWithinOneInterval) {
  FakeDirectory dir;
  dir.Put(Record(Id(4), DeviceStatus::kActive));
  RecordCache::Options options;
  options.refresh_interval = std::chrono::milliseconds(20);
  RecordCache cache(&dir, options);
  cache.StartRefresher();
  ASSERT_TRUE(dir.WaitForRefreshes(1, std::chrono::seconds(30)));
  ASSERT_EQ(StatusOf(cache, Id(4)), DeviceStatus::kActive);
  dir.Put(Record(Id(4), DeviceStatus::kRevoked));
  // Two refreshes after the change: the first that starts after Put sees it.
  ASSERT_TRUE(dir.WaitForRefreshes(2, std::chrono::seconds(30)));
  EXPECT_EQ(StatusOf(cache, Id(4)), DeviceStatus::kRevoked);
}

// BrokenDirectory fails every refresh, as a registry whose log was rewritten does.
class BrokenDirectory : public FakeDirectory {
 public:
  Result<std::vector<std::string>> Refresh() override {
    return Error(Code::kDataLoss, "the log does not extend the verified one");
  }
};

TEST(RecordCacheTest, RefreshOutcomesReachTheMetrics) {
  Metrics metrics;
  FakeDirectory good;
  good.Put(Record(Id(1), DeviceStatus::kActive));
  RecordCache::Options options;
  options.metrics = &metrics;
  RecordCache cache(&good, options);
  ASSERT_THAT(cache.Lookup(Id(1)), IsOk());
  ASSERT_THAT(cache.Refresh(), IsOk());
  EXPECT_GT(metrics.registry_last_refresh(), 0);
  EXPECT_EQ(metrics.registry_refresh_failures(), 0u);
  EXPECT_THAT(metrics.Render(), HasSubstr("hallmark_registry_cache_entries{cache=\"positive\"} 0"));

  BrokenDirectory broken;
  RecordCache failing(&broken, options);
  EXPECT_THAT(failing.Refresh(), HasError(Code::kDataLoss, HasSubstr("extend")));
  EXPECT_EQ(metrics.registry_refresh_failures(), 1u);
}

TEST(RecordCacheTest, ConcurrentLookupsAndRefreshesAgree) {
  FakeDirectory dir;
  for (uint64_t i = 0; i < 64; ++i) {
    dir.Put(Record(Id(i), i % 2 == 0 ? DeviceStatus::kActive : DeviceStatus::kRevoked));
  }
  RecordCache cache(&dir, OneShard(16, 16));
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&cache, t]() {
      for (uint64_t i = 0; i < 3000; ++i) {
        const uint64_t n = (i * 7 + static_cast<uint64_t>(t)) % 96;  // 64..95 are unknown
        auto r = cache.Lookup(Id(n));
        if (n >= 64) {
          EXPECT_THAT(r, HasError(Code::kNotFound, HasSubstr("not registered")));
        } else {
          ASSERT_THAT(r, IsOk());
          EXPECT_EQ((*r)->status, n % 2 == 0 ? DeviceStatus::kActive : DeviceStatus::kRevoked);
        }
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    dir.Put(Record(Id(static_cast<uint64_t>(i % 64)),
                   i % 64 % 2 == 0 ? DeviceStatus::kActive : DeviceStatus::kRevoked));
    ASSERT_THAT(cache.Refresh(), IsOk());
  }
  for (auto& t : threads) {
    t.join();
  }
  RecordCacheStats stats = cache.Stats();
  EXPECT_LE(stats.entries, 16u);
  EXPECT_LE(stats.negative_entries, 16u);
  EXPECT_EQ(stats.hits + stats.misses, 9000u);
}

}  // namespace
}  // namespace hallmark::server
