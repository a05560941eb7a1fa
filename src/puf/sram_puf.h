// A simulator of SRAM PUFs, for tests, the CLI and the evaluation of the fuzzy extractor.
//
// Model (after Maes, "An accurate probabilistic reliability model for silicon PUFs", CHES 2013):
// each cell i has a power-up skew m_i = l * (Z_i + c), in units of the read noise, with Z_i
// standard normal process variation. A read gives 1 iff m_i + noise > 0, so a cell is 1 with
// probability Phi(m_i): most cells are stable, a few near m_i = 0 are noisy. The reference
// response is the value each cell takes more often than not. `c` sets the bias and `l` the mean
// bit error rate; `l` varies from chip to chip (log-normally), and temperature moves each skew by
// its own random amount per kelvin away from 25 C. Everything is deterministic from seeds.
// It models physics, not cryptography: a fast seeded generator (xoshiro256**) is right here.
#ifndef HALLMARK_PUF_SRAM_PUF_H_
#define HALLMARK_PUF_SRAM_PUF_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "puf/bits.h"
#include "puf/internal/stats.h"

namespace hallmark::puf {

inline constexpr double kReferenceTemperatureC = 25.0;

// SramPufModel describes a family of chips (one SRAM design on one process).
struct SramPufModel {
  size_t cells = 32768;  // cells per chip (4 KiB of SRAM)
  // bias: probability that a cell's reference value is 1 (0.5 = unbiased).
  double bias = 0.5;
  // ber: mean probability over cells that one read at 25 C differs from the reference.
  double ber = 0.15;
  // chip_spread: log-normal sigma of each chip's noise level around the family's, so chips
  // differ in bit error rate (0 = every chip alike apart from its cells).
  double chip_spread = 0.05;
  // drift_per_kelvin: standard deviation of each cell's skew shift per kelvin away from 25 C,
  // in units of the read noise (the temperature knob; 0 = no temperature dependence).
  double drift_per_kelvin = 0.005;
};

// ValidateModel: kInvalidArgument unless 1 <= cells <= 2^26, 0.01 <= bias <= 0.99,
// 0.001 <= ber <= 0.45, 0 <= chip_spread <= 1 and 0 <= drift_per_kelvin <= 1.
Status ValidateModel(const SramPufModel& model);

class SimulatedSramPuf;

// SramPufFamily is a calibrated model: it solves once for the noise level that gives the
// model's mean bit error rate, then makes chips. Immutable; thread-safe.
class SramPufFamily {
 public:
  // Create validates and calibrates `model`. kInvalidArgument as ValidateModel.
  static Result<SramPufFamily> Create(const SramPufModel& model);

  // Chip returns the chip with this seed: the same seed always gives the same chip.
  SimulatedSramPuf Chip(uint64_t chip_seed) const;

  const SramPufModel& model() const { return model_; }

 private:
  SramPufFamily(const SramPufModel& model, double noise_ratio, double offset)
      : model_(model), noise_ratio_(noise_ratio), offset_(offset) {}
  SramPufModel model_;
  double noise_ratio_;  // l: process variation over read noise
  double offset_;       // c = Phi^-1(bias)
};

// SimulatedSramPuf is one simulated chip. Reads draw noise from the chip's read stream, which is
// seeded from the chip seed unless SeedReads is called. Not thread-safe (reads advance the
// stream); copyable (a copy continues the same stream independently).
class SimulatedSramPuf {
 public:
  // Create is SramPufFamily::Create(model) then Chip(chip_seed).
  static Result<SimulatedSramPuf> Create(uint64_t chip_seed, const SramPufModel& model);

  size_t size() const { return skew_.size(); }

  // Read returns one power-up of every cell at `temperature_c`.
  Bits Read(double temperature_c = kReferenceTemperatureC);
  // MajorityRead returns each cell's majority over `reads` reads (odd; how enrollment estimates
  // the reference). kInvalidArgument if `reads` is even or not in 1..255.
  Result<Bits> MajorityRead(int reads, double temperature_c = kReferenceTemperatureC);
  // SeedReads restarts the read stream from `read_seed`.
  void SeedReads(uint64_t read_seed) { reads_.Seed(read_seed); }

  // Reference returns the value each cell takes more often than not at 25 C.
  const Bits& Reference() const { return reference_; }
  // ErrorRates returns each cell's probability that one read at `temperature_c` differs from
  // Reference().
  std::vector<double> ErrorRates(double temperature_c = kReferenceTemperatureC) const;

 private:
  friend class SramPufFamily;
  SimulatedSramPuf() = default;
  const std::vector<double>& OneProbabilities(double temperature_c);

  std::vector<float> skew_;   // m_i at 25 C
  std::vector<float> drift_;  // per-kelvin skew shift of each cell, already scaled
  Bits reference_;
  internal::Xoshiro256 reads_;
  double cached_temperature_ = 0;
  std::vector<double> one_probability_;  // P(read = 1) at cached_temperature_
};

}  // namespace hallmark::puf

#endif  // HALLMARK_PUF_SRAM_PUF_H_
