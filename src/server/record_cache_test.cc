#include "server/record_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

TEST(RecordCacheTest, ServesRepeatLookupsFromTheCache) {
  FakeDirectory dir;
  dir.Put(Record("aaaa", DeviceStatus::kActive));
  RecordCache cache(&dir, {});
  ASSERT_THAT(cache.Lookup("aaaa"), IsOk());
  ASSERT_THAT(cache.Lookup("aaaa"), IsOk());
  EXPECT_EQ(dir.lookups(), 1);
  EXPECT_EQ(cache.hits(), 1u);
}

TEST(RecordCacheTest, RefreshDropsChangedRecordsSoARevocationIsSeen) {
  FakeDirectory dir;
  dir.Put(Record("aaaa", DeviceStatus::kActive));
  RecordCache cache(&dir, {});
  ASSERT_THAT(cache.Refresh(), IsOk());
  ASSERT_EQ(cache.Lookup("aaaa")->status, DeviceStatus::kActive);
  dir.Put(Record("aaaa", DeviceStatus::kRevoked));
  // Until the refresh the cached record stands ...
  EXPECT_EQ(cache.Lookup("aaaa")->status, DeviceStatus::kActive);
  auto dropped = cache.Refresh();
  ASSERT_THAT(dropped, IsOk());
  EXPECT_EQ(*dropped, 1u);
  // ... and after it the revocation applies.
  EXPECT_EQ(cache.Lookup("aaaa")->status, DeviceStatus::kRevoked);
}

TEST(RecordCacheTest, UnknownDevicesAreCachedUntilTheyAppear) {
  FakeDirectory dir;
  RecordCache cache(&dir, {});
  EXPECT_THAT(cache.Lookup("bbbb"), HasError(Code::kNotFound, HasSubstr("not registered")));
  EXPECT_THAT(cache.Lookup("bbbb"), HasError(Code::kNotFound, HasSubstr("not registered")));
  EXPECT_EQ(dir.lookups(), 1);
  dir.Put(Record("bbbb", DeviceStatus::kActive));
  ASSERT_THAT(cache.Refresh(), IsOk());
  EXPECT_THAT(cache.Lookup("bbbb"), IsOk());
}

TEST(RecordCacheTest, TamperedRecordsAreNeverCached) {
  FakeDirectory dir;
  dir.Put(Record("cccc", DeviceStatus::kActive));
  dir.Tamper("cccc");
  RecordCache cache(&dir, {});
  EXPECT_THAT(cache.Lookup("cccc"), HasError(Code::kDataLoss, HasSubstr("signature")));
  EXPECT_THAT(cache.Lookup("cccc"), HasError(Code::kDataLoss, HasSubstr("signature")));
  EXPECT_EQ(dir.lookups(), 2);
}

TEST(RecordCacheTest, BackgroundRefresherPropagatesARevocationWithinOneInterval) {
  FakeDirectory dir;
  dir.Put(Record("dddd", DeviceStatus::kActive));
  RecordCache::Options options;
  options.refresh_interval = std::chrono::milliseconds(20);
  RecordCache cache(&dir, options);
  cache.StartRefresher();
  ASSERT_TRUE(dir.WaitForRefreshes(1, std::chrono::seconds(30)));
  ASSERT_EQ(cache.Lookup("dddd")->status, DeviceStatus::kActive);
  dir.Put(Record("dddd", DeviceStatus::kRevoked));
  // Two refreshes after the change: the first that starts after Put sees it.
  ASSERT_TRUE(dir.WaitForRefreshes(2, std::chrono::seconds(30)));
  EXPECT_EQ(cache.Lookup("dddd")->status, DeviceStatus::kRevoked);
}

}  // namespace
}  // namespace hallmark::server
