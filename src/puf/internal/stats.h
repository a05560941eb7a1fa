// Numerical helpers and the random generator of the PUF simulator and its evaluation.
#ifndef HALLMARK_PUF_INTERNAL_STATS_H_
#define HALLMARK_PUF_INTERNAL_STATS_H_

#include <cstdint>
#include <span>
#include <vector>

namespace hallmark::puf::internal {

// NormalCdf is Phi(x), the standard normal distribution function.
double NormalCdf(double x);
// NormalQuantile is Phi^-1(p) for 0 < p < 1.
double NormalQuantile(double p);

// LogBinomialPmf is ln P(X = k) for X ~ Binomial(n, p), 0 < p < 1.
double LogBinomialPmf(int n, int k, double p);
// BinomialTail is P(X > t) for X ~ Binomial(n, p), summed term by term in log space (no
// 1 - P(X <= t) cancellation, no underflow of p^k).
double BinomialTail(int n, int t, double p);

// PoissonBinomial returns P(number of successes = k) for k = 0..probs.size(), the trials
// independent with the given success probabilities.
std::vector<double> PoissonBinomial(std::span<const double> probs);
// PoissonBinomialTail is P(successes > t), accumulated directly (no cancellation).
double PoissonBinomialTail(std::span<const double> probs, int t);

// SplitMix64 mixes a 64-bit value (Steele et al.); for deriving per-chip seeds.
uint64_t SplitMix64(uint64_t x);

// Xoshiro256 is xoshiro256** (Blackman and Vigna), a fast generator for simulating physics:
// several times faster than std::mt19937_64, which dominated the Monte-Carlo's run time. Not
// for cryptography (keys, salts and code offsets come from OpenSSL). Satisfies
// UniformRandomBitGenerator, so <random> distributions accept it.
class Xoshiro256 {
 public:
  using result_type = uint64_t;
  explicit Xoshiro256(uint64_t seed = 0) { Seed(seed); }
  void Seed(uint64_t seed) {
    for (uint64_t& word : s_) {
      seed = SplitMix64(seed);
      word = seed;
    }
  }
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return ~uint64_t{0}; }
  uint64_t operator()() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace hallmark::puf::internal

#endif  // HALLMARK_PUF_INTERNAL_STATS_H_
