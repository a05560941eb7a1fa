#include "puf/internal/bch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "testing/matchers.h"

namespace hallmark::puf::internal {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

Bits RandomBits(std::mt19937_64& rng, size_t n) {
  Bits b(n);
  for (auto& x : b) {
    x = static_cast<uint8_t>(rng() & 1);
  }
  return b;
}

// FlipRandom flips `count` distinct random positions of `word`.
void FlipRandom(std::mt19937_64& rng, Bits& word, int count) {
  std::vector<size_t> positions(word.size());
  std::iota(positions.begin(), positions.end(), 0);
  std::shuffle(positions.begin(), positions.end(), rng);
  for (int i = 0; i < count; ++i) {
    word[positions[static_cast<size_t>(i)]] ^= 1u;
  }
}

bool IsCodeword(const BchCode& code, const Bits& word) {
  for (uint16_t s : code.Syndromes(word)) {
    if (s != 0) {
      return false;
    }
  }
  return true;
}

TEST(BchTest, Bch511HasTheParametersTheExtractorNeeds) {
  const BchCode& code = BchCode::Bch511();
  EXPECT_EQ(code.n(), 511);
  EXPECT_EQ(code.k(), 295);
  EXPECT_EQ(code.t(), 26);
}

TEST(BchTest, SmallCodeHasDesignedMinimumDistance) {
  // BCH(15, 7, t=2) over GF(16) with x^4 + x + 1: every nonzero codeword has weight >= 5.
  auto code = BchCode::Create(4, 0x13, 2);
  ASSERT_THAT(code, IsOk());
  ASSERT_EQ(code->k(), 7);
  size_t min_weight = 15;
  for (uint32_t m = 1; m < 128; ++m) {
    Bits message(7);
    for (size_t i = 0; i < 7; ++i) {
      message[i] = static_cast<uint8_t>((m >> i) & 1);
    }
    Bits c = code->Encode(message);
    EXPECT_TRUE(IsCodeword(*code, c));
    EXPECT_EQ(code->Message(c), message);
    min_weight =
        std::min<size_t>(min_weight, static_cast<size_t>(std::count(c.begin(), c.end(), 1)));
  }
  EXPECT_EQ(min_weight, 5u);
}

TEST(BchTest, CorrectsEveryErrorCountUpToT) {
  const BchCode& code = BchCode::Bch511();
  std::mt19937_64 rng(1);
  for (int errors = 0; errors <= code.t(); ++errors) {
    for (int trial = 0; trial < 8; ++trial) {
      Bits message = RandomBits(rng, static_cast<size_t>(code.k()));
      Bits codeword = code.Encode(message);
      ASSERT_TRUE(IsCodeword(code, codeword));
      Bits received = codeword;
      FlipRandom(rng, received, errors);
      auto decoded = code.Decode(received);
      ASSERT_THAT(decoded, IsOk()) << errors << " errors";
      EXPECT_EQ(decoded->codeword, codeword) << errors << " errors";
      EXPECT_EQ(decoded->corrected, errors);
      EXPECT_EQ(code.Message(decoded->codeword), message);
    }
  }
}

TEST(BchTest, ReportsFailureBeyondTAndNeverReturnsANonCodeword) {
  // Beyond t a bounded-distance decoder either reports failure or lands on another codeword
  // within distance t of what it received (rare; the extractor's tag catches that). It never
  // returns the original codeword after more than t errors, and never a non-codeword.
  const BchCode& code = BchCode::Bch511();
  std::mt19937_64 rng(2);
  int reported = 0;
  int total = 0;
  for (int errors = code.t() + 1; errors <= 80; ++errors) {
    for (int trial = 0; trial < 6; ++trial) {
      Bits codeword = code.Encode(RandomBits(rng, static_cast<size_t>(code.k())));
      Bits received = codeword;
      FlipRandom(rng, received, errors);
      auto decoded = code.Decode(received);
      ++total;
      if (!decoded) {
        EXPECT_THAT(decoded, HasError(Code::kDataLoss, HasSubstr("more than 26 errors")));
        ++reported;
        continue;
      }
      EXPECT_NE(decoded->codeword, codeword);
      EXPECT_TRUE(IsCodeword(code, decoded->codeword));
      EXPECT_LE(HammingDistance(decoded->codeword, received), static_cast<size_t>(code.t()));
    }
  }
  EXPECT_EQ(reported, total);  // miscorrection needs ~1/26! luck at these distances
}

TEST(BchTest, RejectsWordOfWrongLength) {
  EXPECT_THAT(BchCode::Bch511().Decode(Bits(510)),
              HasError(Code::kInvalidArgument, HasSubstr("510 bits")));
}

TEST(BchTest, RejectsNonPrimitivePolynomialAndImpossibleT) {
  // x^4 + x^3 + x^2 + x + 1 is irreducible but not primitive (alpha has order 5).
  EXPECT_THAT(BchCode::Create(4, 0x1f, 2),
              HasError(Code::kInvalidArgument, HasSubstr("primitive")));
  EXPECT_THAT(BchCode::Create(4, 0x13, 8), HasError(Code::kInvalidArgument, HasSubstr("t=8")));
}

}  // namespace
}  // namespace hallmark::puf::internal
