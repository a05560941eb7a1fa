#include "registry/internal/latest_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "core/key.h"
#include "registry/internal/line_reader.h"
#include "testing/matchers.h"

namespace hallmark::registry::internal {
namespace {

using ::hallmark::testing::HasError;
using ::testing::HasSubstr;

DeviceKey Key(int i) {
  std::string s = "device " + std::to_string(i);
  Bytes digest = Sha256(AsBytes(s));
  DeviceKey k;
  std::copy(digest.begin(), digest.end(), k.begin());
  return k;
}

Latest At(uint64_t seq) {
  Latest l;
  l.seq = seq;
  l.leaf[0] = static_cast<uint8_t>(seq);
  return l;
}

TEST(LatestIndexTest, BulkLoadKeepsTheNewestEntryOfEachDevice) {
  LatestIndex index;
  index.BulkLoad({{Key(1), At(0)}, {Key(2), At(1)}, {Key(1), At(2)}, {Key(1), At(3)}});
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Find(Key(1))->seq, 3u);
  EXPECT_EQ(index.Find(Key(2))->seq, 1u);
  EXPECT_EQ(index.Find(Key(3)), nullptr);
}

TEST(LatestIndexTest, SetUpdatesAndAddsAcrossCompactions) {
  LatestIndex index;
  index.BulkLoad({{Key(0), At(0)}});
  for (int i = 1; i < 5000; ++i) {
    index.Set(Key(i), At(static_cast<uint64_t>(i)));
  }
  index.Set(Key(0), At(9999));
  EXPECT_EQ(index.size(), 5000u);
  for (int i = 1; i < 5000; ++i) {
    ASSERT_NE(index.Find(Key(i)), nullptr) << i;
    ASSERT_EQ(index.Find(Key(i))->seq, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(index.Find(Key(0))->seq, 9999u);
  std::vector<DeviceKey> order;
  index.ForEach([&order](const DeviceKey& k, const Latest&) { order.push_back(k); });
  EXPECT_EQ(order.size(), 5000u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(*index.Rank(order[17]), 17u);
}

TEST(LatestIndexTest, DeviceKeysAreLowercaseHexOnly) {
  std::string id = DeviceKeyToId(Key(1));
  ASSERT_TRUE(DeviceKeyFromId(id).has_value());
  EXPECT_EQ(*DeviceKeyFromId(id), Key(1));
  std::string upper = id;
  upper[0] = 'A';
  upper[1] = 'B';
  EXPECT_FALSE(DeviceKeyFromId(upper).has_value());
  EXPECT_FALSE(DeviceKeyFromId(id.substr(1)).has_value());
}

TEST(LineReaderTest, SplitsLinesAndBoundsTheirLength) {
  std::istringstream in("a\r\nbb\n\nccc");
  LineReader reader(in, 3);
  std::string line;
  std::vector<std::string> lines;
  for (;;) {
    auto more = reader.Next(&line);
    ASSERT_TRUE(more.has_value()) << more.error();
    if (!*more) {
      break;
    }
    lines.push_back(line);
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "bb", "", "ccc"}));
  EXPECT_EQ(reader.line_number(), 4u);

  std::istringstream big("ok\n" + std::string(100000, 'x') + "\n");
  LineReader bounded(big, 10);
  ASSERT_TRUE(*bounded.Next(&line));
  EXPECT_THAT(bounded.Next(&line), HasError(Code::kOutOfRange, HasSubstr("line 2 is longer")));
}

}  // namespace
}  // namespace hallmark::registry::internal
