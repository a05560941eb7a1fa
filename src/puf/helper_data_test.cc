#include "puf/helper_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "testing/matchers.h"

namespace hallmark::puf {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

HelperData Example(Debiasing debiasing) {
  HelperData h;
  h.debiasing = debiasing;
  h.repetition = debiasing == Debiasing::kNone ? 7 : 5;
  const size_t encoded = h.Params().EncodedBits();
  for (size_t i = 0; i < encoded; ++i) {
    h.offset.push_back(static_cast<uint8_t>((i * 7 + i / 3) % 2));
  }
  if (debiasing == Debiasing::kPairs) {
    // Every other pair used, ending with a used pair.
    h.pair_map.assign(2 * encoded - 1, 0);
    for (size_t i = 0; i < h.pair_map.size(); i += 2) {
      h.pair_map[i] = 1;
    }
    h.cells = static_cast<uint32_t>(2 * h.pair_map.size());
  } else {
    h.cells = static_cast<uint32_t>(encoded);
  }
  for (size_t i = 0; i < h.salt.size(); ++i) {
    h.salt[i] = static_cast<uint8_t>(i);
  }
  h.tag.fill(0xab);
  return h;
}

TEST(HelperDataTest, RoundTripsBothModes) {
  for (Debiasing d : {Debiasing::kNone, Debiasing::kPairs}) {
    HelperData h = Example(d);
    Bytes blob = h.Serialize();
    ASSERT_OK_AND_ASSIGN(HelperData parsed, HelperData::Parse(blob));
    EXPECT_EQ(parsed.Serialize(), blob);
    EXPECT_EQ(parsed.offset, h.offset);
    EXPECT_EQ(parsed.pair_map, h.pair_map);
    EXPECT_EQ(parsed.cells, h.cells);
    EXPECT_EQ(Bytes(blob.begin(), blob.end() - 32), h.TaggedBytes());
  }
  // Header 32 bytes + 3577 offset bits + 32 tag bytes.
  EXPECT_EQ(Example(Debiasing::kNone).Serialize().size(), 512u);
}

struct FieldCase {
  const char* test_name;
  std::function<void(Bytes&)> tamper;
  const char* message;
};

class HelperDataFieldTest : public ::testing::TestWithParam<FieldCase> {};

TEST_P(HelperDataFieldTest, MalformedFieldIsRefusedByName) {
  Bytes blob = Example(Debiasing::kPairs).Serialize();
  ASSERT_THAT(HelperData::Parse(blob), IsOk());
  GetParam().tamper(blob);
  EXPECT_THAT(HelperData::Parse(blob), HasError(Code::kDataLoss, HasSubstr(GetParam().message)));
}

// Offsets in the header: magic 0, version 4, debiasing 5, repetition 6, n 7, k 9, t 11,
// cells 12, salt 16, pair map 32.
INSTANTIATE_TEST_SUITE_P(
    Fields, HelperDataFieldTest,
    ::testing::Values(
        FieldCase{"Magic", [](Bytes& b) { b[0] = 'X'; }, "magic"},
        FieldCase{"Version", [](Bytes& b) { b[4] = 2; }, "unsupported version 2"},
        FieldCase{"Debiasing", [](Bytes& b) { b[5] = 7; }, "debiasing mode 7"},
        FieldCase{"RepetitionEven", [](Bytes& b) { b[6] = 6; }, "repetition 6"},
        FieldCase{"RepetitionOther", [](Bytes& b) { b[6] = 7; }, "bytes; these parameters need"},
        FieldCase{"CodeLength", [](Bytes& b) { b[8] ^= 1; }, "BCH(510"},
        FieldCase{"CodeDimension", [](Bytes& b) { b[10] ^= 1; }, "unsupported"},
        FieldCase{"CodeT", [](Bytes& b) { b[11] = 25; }, "t=25"},
        FieldCase{"CellsHuge", [](Bytes& b) { b[12] = 0x7f; }, "at most"},
        FieldCase{"CellsOdd", [](Bytes& b) { b[15] ^= 1; }, "even count"},
        FieldCase{"PairMapCount", [](Bytes& b) { b[32] ^= 0x40; }, "selects 2556 pairs"},
        FieldCase{"PairMapPadding",
                  [](Bytes& b) {
                    // 5109 pairs: the map's last byte holds 5 bits and 3 padding bits.
                    b[32 + 638] ^= 0x01;
                  },
                  "pair map has non-zero padding"},
        FieldCase{"OffsetPadding",
                  [](Bytes& b) {
                    // 2555 offset bits: the last offset byte has 5 padding bits.
                    b[b.size() - 33] ^= 0x01;
                  },
                  "code offset has non-zero padding"},
        FieldCase{"Truncated", [](Bytes& b) { b.pop_back(); }, "bytes; these parameters need"},
        FieldCase{"Empty", [](Bytes& b) { b.clear(); }, "shorter than the header"}),
    [](const ::testing::TestParamInfo<FieldCase>& row) { return row.param.test_name; });

}  // namespace
}  // namespace hallmark::puf
