#include "core/duration.h"

#include <cstdint>
#include <string>
#include <vector>

#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ParseDurationTest, AcceptsEveryUnit) {
  struct Case {
    std::string text;
    int64_t seconds;
  };
  for (const Case& c : std::vector<Case>{{"90s", 90},
                                         {"15m", 15 * 60},
                                         {"12h", 12 * 3600},
                                         {"30d", 30 * 86400},
                                         {"2w", 14 * 86400},
                                         {"1y", 365 * 86400},
                                         {"10y", 3650 * 86400},
                                         {"1s", 1},
                                         {"01d", 86400}}) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(int64_t got, ParseDuration(c.text));
    EXPECT_EQ(got, c.seconds);
  }
}

TEST(ParseDurationTest, RejectsMalformedDurations) {
  struct Case {
    std::string name;
    std::string text;
  };
  for (const Case& c : std::vector<Case>{{"empty", ""},
                                         {"unit only", "d"},
                                         {"zero", "0d"},
                                         {"negative", "-1d"},
                                         {"explicit plus", "+1d"},
                                         {"no unit", "10"},
                                         {"unknown unit", "5x"},
                                         {"uppercase unit", "5D"},
                                         {"fraction", "1.5d"},
                                         {"space before unit", "1 d"},
                                         {"leading space", " 1d"},
                                         {"two units", "1d2h"},
                                         {"overflows int64 digits", "9223372036854775808s"},
                                         {"overflows when scaled", "99999999999999999y"},
                                         {"int64 max seconds", "9223372036854775807s"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(
        ParseDuration(c.text),
        HasError(Code::kInvalidArgument,
                 AllOf(HasSubstr("invalid duration '" + c.text + "'"), HasSubstr("e.g. 30d"))));
  }
}

TEST(ParseDurationTest, LargeButSafeDurationLeavesHeadroom) {
  // Limits are set so that adding the result to any epoch time, even in milliseconds, cannot
  // overflow int64.
  ASSERT_OK_AND_ASSIGN(int64_t got, ParseDuration("1000y"));
  EXPECT_EQ(got, int64_t{1000} * 365 * 86400);
  auto huge = ParseDuration("292471209y");
  EXPECT_THAT(huge, HasError(Code::kInvalidArgument, HasSubstr("invalid duration")));
}

TEST(FormatDurationTest, UsesLargestExactUnit) {
  struct Case {
    int64_t seconds;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{{1, "1s"},
                                         {59, "59s"},
                                         {60, "1m"},
                                         {90, "90s"},
                                         {3600, "1h"},
                                         {86400, "1d"},
                                         {86401, "86401s"},
                                         {7 * 86400, "1w"},
                                         {30 * 86400, "30d"},
                                         {2592000, "30d"},
                                         {365 * 86400, "1y"},
                                         {366 * 86400, "366d"},
                                         {0, "0s"}}) {
    SCOPED_TRACE(c.seconds);
    EXPECT_EQ(FormatDuration(c.seconds), c.want);
  }
}

TEST(FormatDurationTest, RoundTripsThroughParse) {
  for (const char* text : {"90s", "15m", "12h", "30d", "2w", "1y", "398d"}) {
    SCOPED_TRACE(text);
    ASSERT_OK_AND_ASSIGN(int64_t seconds, ParseDuration(text));
    EXPECT_EQ(FormatDuration(seconds), text);
  }
}

}  // namespace
}  // namespace hallmark
