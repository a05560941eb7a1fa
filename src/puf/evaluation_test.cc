#include "puf/evaluation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "puf/internal/bch.h"
#include "puf/internal/code.h"
#include "puf/internal/stats.h"
#include "testing/matchers.h"

namespace hallmark::puf {
namespace {

using ::hallmark::testing::IsOk;
using ::testing::DoubleNear;
using ::testing::Lt;

const ExtractorParams kNone = ExtractorParams::For(Debiasing::kNone);
const ExtractorParams kPairs = ExtractorParams::For(Debiasing::kPairs);

TEST(EvaluationTest, ExactModelOfRepetition7Bch511) {
  // P(Bin(7, 0.15) >= 4), and its binomial tail over 511 blocks beyond t = 26, computed
  // independently (exact rational arithmetic in Python).
  EXPECT_NEAR(BlockErrorRate(kNone, 0.15), 0.012103171875, 1e-15);
  EXPECT_NEAR(FailureRate(kNone, 0.15) / 3.6958629769819957e-10, 1, 1e-9);
  EXPECT_THAT(FailureRate(kNone, 0.15), Lt(1e-9));
  EXPECT_NEAR(FailureRate(kNone, 0.18) / 8.349682637287517e-05, 1, 1e-9);
  EXPECT_NEAR(FailureRate(kNone, 0.20) / 0.014052286837956724, 1, 1e-9);
  // Pair debiasing, 5 pairs per block (10 votes, ties to the first cells).
  EXPECT_NEAR(BlockErrorRate(kPairs, 0.15), 0.0056286631054687465, 1e-15);
}

TEST(EvaluationTest, BerAtFailureRateInvertsTheModel) {
  const double ber = BerAtFailureRate(kNone, 1e-6);
  EXPECT_THAT(ber, DoubleNear(0.1667, 0.001));
  EXPECT_NEAR(FailureRate(kNone, ber) / 1e-6, 1, 1e-6);
}

TEST(EvaluationTest, LogSpaceTailsAgreeWithDirectSums) {
  EXPECT_NEAR(internal::BinomialTail(10, 3, 0.2), 0.1208738816, 1e-10);
  std::vector<double> probs = {0.1, 0.5, 0.9, 0.3};
  std::vector<double> dist = internal::PoissonBinomial(probs);
  EXPECT_NEAR(dist[4], 0.1 * 0.5 * 0.9 * 0.3, 1e-15);
  EXPECT_NEAR(internal::PoissonBinomialTail(probs, 2), dist[3] + dist[4], 1e-15);
  std::vector<double> same(511, BlockErrorRate(kNone, 0.15));
  EXPECT_NEAR(internal::PoissonBinomialTail(same, 26) / FailureRate(kNone, 0.15), 1, 1e-9);
}

TEST(EvaluationTest, MonteCarloAgreesWithTheExactModel) {
  // Trial counts for about 30 to 1800 expected failures: enough to catch a model that is off by
  // a fraction, small enough for a sanitizer build. `hallmark puf eval --trials 1000000` runs the
  // full validation.
  struct Case {
    ExtractorParams params;
    double ber;
    uint64_t trials;
  };
  for (const Case& c :
       {Case{kNone, 0.19, 20000}, Case{kNone, 0.20, 10000}, Case{kPairs, 0.25, 5000}}) {
    MonteCarloResult r = MonteCarloFailures(c.params, c.ber, c.trials, 42);
    EXPECT_EQ(r.trials, c.trials);
    EXPECT_GT(r.failures, 0u);
    EXPECT_LT(std::fabs(r.ZScore()), 4)
        << "BER " << c.ber << ": " << r.failures << " failures, expected "
        << r.expected_rate * static_cast<double>(c.trials);
  }
}

TEST(EvaluationTest, MonteCarloCountsPartialBatches) {
  MonteCarloResult r = MonteCarloFailures(kNone, 0.30, 70, 1);
  EXPECT_EQ(r.trials, 70u);
  EXPECT_LE(r.failures, 70u);
  EXPECT_GT(r.failures, 60u);  // at 30% almost every reconstruction fails
}

TEST(EvaluationTest, RealDecoderFailsExactlyWhenMoreThanTBlocksAreWrong) {
  // What the Monte-Carlo counts as a failure is what the extractor's decoder does.
  const internal::BchCode& bch = internal::BchCode::Bch511();
  std::mt19937_64 rng(5);
  std::bernoulli_distribution flip(0.2);
  int failures = 0;
  for (int trial = 0; trial < 200; ++trial) {
    Bits message(295);
    for (auto& b : message) {
      b = static_cast<uint8_t>(rng() & 1);
    }
    Bits codeword = bch.Encode(message);
    Bits received = codeword;
    int wrong_blocks = 0;
    for (size_t b = 0; b < received.size(); ++b) {
      int wrong_votes = 0;
      for (int v = 0; v < 7; ++v) {
        wrong_votes += flip(rng) ? 1 : 0;
      }
      const bool wrong = internal::BlockDecision(wrong_votes, 0, 7, Debiasing::kNone);
      received[b] ^= wrong ? 1 : 0;
      wrong_blocks += wrong ? 1 : 0;
    }
    auto decoded = bch.Decode(received);
    if (wrong_blocks <= 26) {
      ASSERT_THAT(decoded, IsOk());
      EXPECT_EQ(decoded->codeword, codeword);
    } else {
      EXPECT_FALSE(decoded.has_value() && decoded->codeword == codeword);
      ++failures;
    }
  }
  EXPECT_GT(failures, 0);
}

TEST(EvaluationTest, SummarizeReportsTheWorstTenthOfAPercent) {
  std::vector<double> values;
  for (int i = 1000; i >= 1; --i) {
    values.push_back(i);
  }
  Distribution d = Summarize(values);
  EXPECT_EQ(d.min, 1);
  EXPECT_EQ(d.median, 500);
  EXPECT_EQ(d.p999, 999);
  EXPECT_EQ(d.max, 1000);
  EXPECT_NEAR(d.mean, 500.5, 1e-12);
}

TEST(EvaluationTest, PopulationOfUnbiasedChips) {
  PopulationOptions o;
  o.chips = 100;
  o.sample_chips = 20;
  o.params = kNone;
  ASSERT_OK_AND_ASSIGN(PopulationResult r, EvaluatePopulation(o));
  EXPECT_EQ(r.chips, 100u);
  EXPECT_EQ(r.enrollment_failures, 0u);
  EXPECT_THAT(r.uniqueness.mean, DoubleNear(0.5, 0.01));
  EXPECT_THAT(r.chip_ber.mean, DoubleNear(0.15, 0.01));
  EXPECT_THAT(r.measured_ber, DoubleNear(r.chip_ber.mean, 0.01));
  EXPECT_LE(r.failure.median, r.failure.p999);
  EXPECT_LE(r.failure.p999, r.failure.max);
  EXPECT_THAT(r.failure.mean, Lt(1e-6));
  EXPECT_EQ(r.cells_used.max, 3577);
  EXPECT_EQ(r.end_to_end_runs, 20u);
  EXPECT_EQ(r.end_to_end_failures, 0u);
  ASSERT_EQ(r.ber_by_temperature.size(), 3u);
  EXPECT_GT(r.ber_by_temperature[2].second, r.ber_by_temperature[1].second);
}

TEST(EvaluationTest, PopulationOfBiasedChipsUsesPairs) {
  PopulationOptions o;
  o.chips = 30;
  o.sample_chips = 10;
  o.model.bias = 0.3;
  o.params = kPairs;
  ASSERT_OK_AND_ASSIGN(PopulationResult r, EvaluatePopulation(o));
  EXPECT_EQ(r.enrollment_failures, 0u);
  EXPECT_THAT(r.uniqueness.mean, DoubleNear(2 * 0.3 * 0.7, 0.01));
  EXPECT_THAT(r.cells_used.mean, DoubleNear(ExpectedCells(kPairs, 0.3), 0.03 * 12167));
  EXPECT_EQ(r.end_to_end_failures, 0u);
  // Every used pair holds one cell that powers up as the minority value, and in a biased SRAM
  // those sit nearer the threshold: the votes are noisier than the family's mean BER.
  EXPECT_GT(r.chip_ber.mean, 0.16);
  EXPECT_THAT(r.failure.median, Lt(1e-9));
}

}  // namespace
}  // namespace hallmark::puf
