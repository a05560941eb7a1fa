#include "puf/sram_puf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "testing/matchers.h"

namespace hallmark::puf {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::DoubleNear;
using ::testing::HasSubstr;

SramPufModel Model(double bias, double ber, double spread = 0) {
  SramPufModel m;
  m.cells = 20000;
  m.bias = bias;
  m.ber = ber;
  m.chip_spread = spread;
  return m;
}

double Fraction(size_t count, size_t total) {
  return static_cast<double>(count) / static_cast<double>(total);
}

TEST(SramPufTest, SameSeedGivesTheSameChipAndReads) {
  ASSERT_OK_AND_ASSIGN(auto a, SimulatedSramPuf::Create(7, Model(0.5, 0.15)));
  ASSERT_OK_AND_ASSIGN(auto b, SimulatedSramPuf::Create(7, Model(0.5, 0.15)));
  EXPECT_EQ(a.Reference(), b.Reference());
  EXPECT_EQ(a.Read(), b.Read());
  a.SeedReads(99);
  b.SeedReads(99);
  EXPECT_EQ(a.Read(), b.Read());
}

TEST(SramPufTest, DifferentChipsDifferInAboutHalfTheirCells) {
  ASSERT_OK_AND_ASSIGN(auto a, SimulatedSramPuf::Create(1, Model(0.5, 0.15)));
  ASSERT_OK_AND_ASSIGN(auto b, SimulatedSramPuf::Create(2, Model(0.5, 0.15)));
  EXPECT_THAT(Fraction(HammingDistance(a.Reference(), b.Reference()), a.size()),
              DoubleNear(0.5, 0.02));
}

TEST(SramPufTest, ReadsFlipTheConfiguredFractionOfBits) {
  for (double ber : {0.05, 0.15, 0.25}) {
    ASSERT_OK_AND_ASSIGN(auto chip, SimulatedSramPuf::Create(3, Model(0.5, ber)));
    size_t flips = 0;
    for (int r = 0; r < 5; ++r) {
      flips += HammingDistance(chip.Read(), chip.Reference());
    }
    EXPECT_THAT(Fraction(flips, 5 * chip.size()), DoubleNear(ber, 0.01)) << ber;
    std::vector<double> e = chip.ErrorRates();
    EXPECT_THAT(std::accumulate(e.begin(), e.end(), 0.0) / static_cast<double>(e.size()),
                DoubleNear(ber, 0.01));
  }
}

TEST(SramPufTest, BiasSetsTheShareOfOnes) {
  ASSERT_OK_AND_ASSIGN(auto chip, SimulatedSramPuf::Create(4, Model(0.3, 0.15)));
  const Bits& ref = chip.Reference();
  EXPECT_THAT(Fraction(static_cast<size_t>(std::count(ref.begin(), ref.end(), 1)), ref.size()),
              DoubleNear(0.3, 0.015));
}

double MeanErrorRate(const SimulatedSramPuf& chip, double temperature_c) {
  std::vector<double> e = chip.ErrorRates(temperature_c);
  return std::accumulate(e.begin(), e.end(), 0.0) / static_cast<double>(e.size());
}

TEST(SramPufTest, TemperatureAwayFromEnrollmentRaisesErrors) {
  SramPufModel m = Model(0.5, 0.10);
  m.drift_per_kelvin = 0.01;
  ASSERT_OK_AND_ASSIGN(auto chip, SimulatedSramPuf::Create(5, m));
  // A skew shift of 0.6 noise sigmas at 85 C: about 11.5% instead of 10%.
  EXPECT_GT(MeanErrorRate(chip, 85), MeanErrorRate(chip, 25) + 0.01);
  EXPECT_GT(MeanErrorRate(chip, -40), MeanErrorRate(chip, 25) + 0.01);
  size_t at_25 = 0;
  size_t at_85 = 0;
  for (int r = 0; r < 5; ++r) {
    at_25 += HammingDistance(chip.Read(25), chip.Reference());
    at_85 += HammingDistance(chip.Read(85), chip.Reference());
  }
  EXPECT_GT(at_85, at_25 + 5 * chip.size() / 200);

  m.drift_per_kelvin = 0;
  ASSERT_OK_AND_ASSIGN(auto steady, SimulatedSramPuf::Create(5, m));
  EXPECT_EQ(steady.ErrorRates(85), steady.ErrorRates(25));
}

TEST(SramPufTest, MajorityReadIsCloserToTheReference) {
  ASSERT_OK_AND_ASSIGN(auto chip, SimulatedSramPuf::Create(6, Model(0.5, 0.15)));
  ASSERT_OK_AND_ASSIGN(Bits majority, chip.MajorityRead(15));
  EXPECT_LT(HammingDistance(majority, chip.Reference()),
            HammingDistance(chip.Read(), chip.Reference()) / 2);
  EXPECT_THAT(chip.MajorityRead(4), HasError(Code::kInvalidArgument, HasSubstr("odd")));
}

TEST(SramPufTest, RejectsModelsOutsideTheirRange) {
  struct Case {
    const char* message;
    std::function<void(SramPufModel&)> change;
  };
  const Case cases[] = {
      {"bias", [](SramPufModel& m) { m.bias = 1.0; }},
      {"bit error rate", [](SramPufModel& m) { m.ber = 0.5; }},
      {"cells", [](SramPufModel& m) { m.cells = 0; }},
      {"chip spread", [](SramPufModel& m) { m.chip_spread = -1; }},
      {"drift", [](SramPufModel& m) { m.drift_per_kelvin = 2; }},
  };
  for (const Case& c : cases) {
    SramPufModel m;
    c.change(m);
    EXPECT_THAT(SimulatedSramPuf::Create(1, m),
                HasError(Code::kInvalidArgument, HasSubstr(c.message)));
  }
}

}  // namespace
}  // namespace hallmark::puf
