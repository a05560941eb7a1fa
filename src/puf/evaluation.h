// Evaluation of the PUF fuzzy extractor: exact failure rates of the code, a Monte-Carlo check of
// them, and statistics over a population of simulated chips (`hallmark puf eval`, docs/puf.md).
#ifndef HALLMARK_PUF_EVALUATION_H_
#define HALLMARK_PUF_EVALUATION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "core/status.h"
#include "puf/fuzzy_extractor.h"
#include "puf/sram_puf.h"

namespace hallmark::puf {

// ProgressFn receives the fraction of a long computation done so far (0..1).
using ProgressFn = std::function<void(double)>;

// --- The code under independent bit errors (each vote wrong with probability `ber`) ---

// BlockErrorRate is the exact probability that one inner repetition block decodes wrongly.
double BlockErrorRate(const ExtractorParams& params, double ber);
// FailureRate is the exact probability that a reconstruction fails: more than t = 26 of the 511
// blocks wrong (the BCH decoder is bounded-distance, so exactly these fail). The binomial tail
// is summed in log space, so values far below 1e-15 are accurate.
double FailureRate(const ExtractorParams& params, double ber);
// BerAtFailureRate is the bit error rate at which FailureRate reaches `target`.
double BerAtFailureRate(const ExtractorParams& params, double target);

// MonteCarloResult counts simulated reconstructions that failed at one bit error rate.
struct MonteCarloResult {
  double ber = 0;
  uint64_t trials = 0;
  uint64_t failures = 0;
  double expected_rate = 0;  // FailureRate(params, ber), the exact model

  double ObservedRate() const;
  // ZScore is how many standard deviations the failure count is from the exact model's mean.
  double ZScore() const;
};

// MonteCarloFailures simulates `trials` reconstructions: every vote of every block flipped
// independently with probability exactly `ber` (64 trials at a time, bit-sliced), blocks decided
// by the extractor's own rule, failure when more than t blocks are wrong. Deterministic in
// `seed`.
MonteCarloResult MonteCarloFailures(const ExtractorParams& params, double ber, uint64_t trials,
                                    uint64_t seed, const ProgressFn& progress = nullptr);

// --- A population of simulated chips ---

struct PopulationOptions {
  SramPufModel model;  // `cells` is ignored: each chip gets the cells the code needs
  ExtractorParams params;
  size_t chips = 10000;
  uint64_t seed = 1;
  int enrollment_reads = 15;                      // majority of this many reads at 25 C
  double temperature_c = kReferenceTemperatureC;  // of the reconstructions
  size_t sample_chips = 200;  // chips for pairwise uniqueness, real reads and end-to-end runs
};

// Distribution summarises one value over chips (or chip pairs).
struct Distribution {
  double mean = 0;
  double min = 0;
  double median = 0;
  double p999 = 0;  // exceeded by only 0.1% of chips: the worst 0.1% when higher is worse
  double max = 0;
};
Distribution Summarize(std::vector<double> values);

struct PopulationResult {
  size_t chips = 0;
  size_t enrollment_failures = 0;  // chips with too few unequal pairs for pair debiasing
  Distribution uniqueness;  // fractional Hamming distance between two chips' reference responses
  Distribution chip_ber;    // per chip: mean probability that a vote differs from enrollment
  Distribution failure;     // per chip: exact probability that one reconstruction fails
  Distribution cells_used;
  double measured_ber = 0;  // votes of one real read per sample chip that differ from enrollment
  std::vector<std::pair<double, double>> ber_by_temperature;  // (C, measured BER), sample chips
  size_t end_to_end_runs = 0;      // real Enroll + Reconstruct on sample chips
  size_t end_to_end_failures = 0;  // of which did not give the enrolled key back
};

// EvaluatePopulation enrolls `chips` simulated chips (seeds derived from `seed`) and computes
// each one's exact reconstruction failure probability from its cells' error rates (a
// Poisson-binomial model of its votes and blocks, conditioned on its enrollment). kInvalidArgument
// for bad options.
Result<PopulationResult> EvaluatePopulation(const PopulationOptions& options,
                                            const ProgressFn& progress = nullptr);

// ExpectedCells is the mean number of PUF cells the construction reads for a source with this
// bias (kNone: the encoded bits; kPairs: two per pair, 2·bias·(1-bias) of pairs usable).
double ExpectedCells(const ExtractorParams& params, double bias);

}  // namespace hallmark::puf

#endif  // HALLMARK_PUF_EVALUATION_H_
