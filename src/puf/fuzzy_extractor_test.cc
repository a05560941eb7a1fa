#include "puf/fuzzy_extractor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <set>

#include "core/ossl.h"
#include "puf/bits.h"
#include "puf/sram_puf.h"
#include "testing/matchers.h"

namespace hallmark::puf {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

SramPufModel Model(double bias, double ber) {
  SramPufModel m;
  m.cells = 24000;
  m.bias = bias;
  m.ber = ber;
  m.chip_spread = 0;
  return m;
}

// Enrolled is a simulated chip enrolled the way the key store does it.
struct Enrolled {
  SimulatedSramPuf chip;
  Bits response;
  Enrollment enrollment;
};

Enrolled EnrollChip(uint64_t seed, const SramPufModel& model, Debiasing debiasing) {
  SimulatedSramPuf chip = SimulatedSramPuf::Create(seed, model).value();
  Bits response = chip.MajorityRead(15).value();
  auto enrollment = Enroll(response, ExtractorParams::For(debiasing));
  EXPECT_THAT(enrollment, IsOk());
  return {std::move(chip), std::move(response), std::move(enrollment).value()};
}

TEST(FuzzyExtractorTest, SameKeyAcrossManyNoisyReadsAt15PercentBer) {
  Enrolled e = EnrollChip(11, Model(0.5, 0.15), Debiasing::kNone);
  EXPECT_EQ(e.enrollment.cells_used, 3577u);
  EXPECT_EQ(e.enrollment.helper_data.size(), 512u);
  size_t errors_seen = 0;
  for (int read = 0; read < 60; ++read) {
    auto r = Reconstruct(e.chip.Read(), e.enrollment.helper_data);
    ASSERT_THAT(r, IsOk()) << "read " << read;
    EXPECT_EQ(r->key.Public(), e.enrollment.key.Public());
    errors_seen += r->bit_errors;
  }
  // The reads really were that noisy.
  EXPECT_GT(errors_seen, 60u * 3577 * 13 / 100);
}

TEST(FuzzyExtractorTest, EnrollingAgainGivesANewKey) {
  Enrolled e = EnrollChip(12, Model(0.5, 0.15), Debiasing::kNone);
  auto again = Enroll(e.response, ExtractorParams::For(Debiasing::kNone));
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->key.Public() == e.enrollment.key.Public());
  EXPECT_NE(again->helper_data, e.enrollment.helper_data);
}

TEST(FuzzyExtractorTest, DifferentChipsGiveDifferentKeysAndCannotUseEachOthersHelperData) {
  std::set<std::string> ids;
  std::vector<Enrolled> chips;
  for (uint64_t seed = 100; seed < 105; ++seed) {
    chips.push_back(EnrollChip(seed, Model(0.5, 0.15), Debiasing::kNone));
    ids.insert(chips.back().enrollment.key.Public().DeviceId());
  }
  EXPECT_EQ(ids.size(), chips.size());
  EXPECT_THAT(Reconstruct(chips[1].chip.Read(), chips[0].enrollment.helper_data),
              HasError(Code::kDataLoss, HasSubstr("reconstruction failed")));
}

TEST(FuzzyExtractorTest, CorrectsTBlockErrorsAndReportsTPlusOne) {
  Enrolled e = EnrollChip(13, Model(0.5, 0.15), Debiasing::kNone);
  for (int blocks : {26, 27, 40}) {
    Bits response = e.response;
    // 4 of the 7 votes of a block wrong: the block decodes wrongly.
    for (int b = 0; b < blocks; ++b) {
      for (int v = 0; v < 4; ++v) {
        response[static_cast<size_t>(b * 7 * 3 + v)] ^= 1u;  // spread over the 511 blocks
      }
    }
    auto r = Reconstruct(response, e.enrollment.helper_data);
    if (blocks <= 26) {
      ASSERT_THAT(r, IsOk());
      EXPECT_EQ(r->key.Public(), e.enrollment.key.Public());
      EXPECT_EQ(r->block_errors, blocks);
    } else {
      EXPECT_THAT(r, HasError(Code::kDataLoss, HasSubstr("too noisy"))) << blocks;
    }
  }
}

TEST(FuzzyExtractorTest, ReadsBeyondCapacityFailLoudlyNeverWithAWrongKey) {
  // At 22.5% BER about half the reconstructions fail; each one either gives the enrolled key or
  // an error, never another key.
  SramPufModel m = Model(0.5, 0.225);
  Enrolled e = EnrollChip(14, m, Debiasing::kNone);
  int failed = 0;
  for (int read = 0; read < 40; ++read) {
    auto r = Reconstruct(e.chip.Read(), e.enrollment.helper_data);
    if (r) {
      EXPECT_EQ(r->key.Public(), e.enrollment.key.Public());
    } else {
      EXPECT_THAT(r, HasError(Code::kDataLoss, HasSubstr("reconstruction failed")));
      ++failed;
    }
  }
  EXPECT_GT(failed, 0);
  // Pure noise is refused too.
  std::mt19937_64 rng(3);
  Bits noise(3577);
  for (auto& b : noise) {
    b = static_cast<uint8_t>(rng() & 1);
  }
  EXPECT_THAT(Reconstruct(noise, e.enrollment.helper_data),
              HasError(Code::kDataLoss, HasSubstr("")));
}

TEST(FuzzyExtractorTest, FlippedBitsAnywhereInTheHelperDataAreRefused) {
  Enrolled e = EnrollChip(15, Model(0.5, 0.15), Debiasing::kNone);
  Bits read = e.chip.Read();
  ASSERT_THAT(Reconstruct(read, e.enrollment.helper_data), IsOk());  // the legitimate twin
  // Every bit of the header (parameters and salt) and of the tag, and one bit of every byte of
  // the code offset.
  const size_t size = e.enrollment.helper_data.size();
  std::vector<size_t> bits;
  for (size_t byte = 0; byte < size; ++byte) {
    const bool whole = byte < 32 || byte >= size - 32;
    for (size_t bit = 0; bit < 8; ++bit) {
      if (whole || bit == byte % 8) {
        bits.push_back(8 * byte + bit);
      }
    }
  }
  for (size_t bit : bits) {
    Bytes tampered = e.enrollment.helper_data;
    tampered[bit / 8] = static_cast<uint8_t>(tampered[bit / 8] ^ (1u << (bit % 8)));
    auto r = Reconstruct(read, tampered);
    ASSERT_FALSE(r.has_value()) << "bit " << bit << " flipped and still accepted";
    ASSERT_EQ(r.error().code(), Code::kDataLoss) << "bit " << bit << ": " << r.error();
  }
}

TEST(FuzzyExtractorTest, TruncatedOrExtendedHelperDataIsRefused) {
  Enrolled e = EnrollChip(16, Model(0.5, 0.15), Debiasing::kNone);
  Bytes shorter(e.enrollment.helper_data.begin(), e.enrollment.helper_data.end() - 1);
  Bytes longer = e.enrollment.helper_data;
  longer.push_back(0);
  EXPECT_THAT(Reconstruct(e.chip.Read(), shorter), HasError(Code::kDataLoss, HasSubstr("bytes")));
  EXPECT_THAT(Reconstruct(e.chip.Read(), longer), HasError(Code::kDataLoss, HasSubstr("bytes")));
  EXPECT_THAT(Reconstruct(e.chip.Read(), Bytes{}), HasError(Code::kDataLoss, HasSubstr("header")));
}

TEST(FuzzyExtractorTest, BiasedSourceWorksThroughPairDebiasing) {
  EXPECT_EQ(RecommendedDebiasing(0.5), Debiasing::kNone);
  EXPECT_EQ(RecommendedDebiasing(0.3), Debiasing::kPairs);
  EXPECT_EQ(RecommendedDebiasing(0.7), Debiasing::kPairs);
  // Without debiasing a 30% biased source keeps nothing after the code offset's leakage.
  EXPECT_LT(ResidualEntropyBits(ExtractorParams::For(Debiasing::kNone), 0.3), 0);
  EXPECT_EQ(ResidualEntropyBits(ExtractorParams::For(Debiasing::kPairs), 0.3), 295);
  EXPECT_NEAR(ResidualEntropyBits(ExtractorParams::For(Debiasing::kNone), 0.5), 295, 1e-9);

  Enrolled e = EnrollChip(17, Model(0.3, 0.15), Debiasing::kPairs);
  EXPECT_GT(e.enrollment.cells_used, 2 * 2555u);
  for (int read = 0; read < 20; ++read) {
    auto r = Reconstruct(e.chip.Read(), e.enrollment.helper_data);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->key.Public(), e.enrollment.key.Public());
  }
}

TEST(FuzzyExtractorTest, TooFewPairsOrCellsAreReported) {
  Bits constant(20000, 1);  // a stuck-at-1 SRAM has no unequal pairs
  EXPECT_THAT(Enroll(constant, ExtractorParams::For(Debiasing::kPairs)),
              HasError(Code::kResourceExhausted, HasSubstr("only 0 unequal pairs")));
  EXPECT_THAT(Enroll(Bits(3000), ExtractorParams::For(Debiasing::kNone)),
              HasError(Code::kInvalidArgument, HasSubstr("3577")));
  EXPECT_THAT(Enroll(Bits(5000), {Debiasing::kNone, 4}),
              HasError(Code::kInvalidArgument, HasSubstr("odd")));
  Enrolled e = EnrollChip(18, Model(0.5, 0.15), Debiasing::kNone);
  EXPECT_THAT(Reconstruct(Bits(100), e.enrollment.helper_data),
              HasError(Code::kInvalidArgument, HasSubstr("uses 3577")));
}

TEST(FuzzyExtractorTest, DerivedKeySignsAndVerifiesWithOpenssl) {
  Enrolled e = EnrollChip(19, Model(0.5, 0.15), Debiasing::kNone);
  auto r = Reconstruct(e.chip.Read(), e.enrollment.helper_data);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->key.Public().Algorithm().Describe(), "EC P-256");
  // OpenSSL's own consistency check of the private scalar against the public point.
  OsslPtr<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, r->key.native(), nullptr));
  ASSERT_TRUE(check);
  EXPECT_EQ(EVP_PKEY_pairwise_check(check.get()), 1);
  const std::string message = "attest: device boot measurement";
  ASSERT_OK_AND_ASSIGN(Bytes signature, r->key.Sign(AsBytes(message)));
  EXPECT_THAT(e.enrollment.key.Public().Verify(AsBytes(message), signature), IsOk());
  EXPECT_THAT(e.enrollment.key.Public().Verify(AsBytes(message + "!"), signature),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

TEST(FuzzyExtractorTest, ParsesDebiasingNames) {
  EXPECT_EQ(ParseDebiasing("pairs").value(), Debiasing::kPairs);
  EXPECT_EQ(DebiasingName(Debiasing::kNone), "none");
  EXPECT_THAT(ParseDebiasing("vn"), HasError(Code::kInvalidArgument, HasSubstr("none or pairs")));
}

}  // namespace
}  // namespace hallmark::puf
