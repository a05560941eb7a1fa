#include "puf/sram_puf.h"

#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <string>

#include "puf/internal/stats.h"

namespace hallmark::puf {
namespace {

using internal::NormalCdf;

// MeanErrorRate is E[Phi(-l |Z + c|)] over standard normal Z: the mean bit error rate of cells
// with noise ratio `l` and offset `c` (Simpson's rule; the integrand is smooth).
double MeanErrorRate(double l, double c) {
  constexpr int kIntervals = 4000;
  constexpr double kLo = -12;
  constexpr double kHi = 12;
  const double h = (kHi - kLo) / kIntervals;
  double sum = 0;
  for (int i = 0; i <= kIntervals; ++i) {
    const double z = kLo + i * h;
    const double weight = (i == 0 || i == kIntervals) ? 1 : (i % 2 == 1 ? 4 : 2);
    const double density = std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi);
    sum += weight * density * NormalCdf(-l * std::fabs(z + c));
  }
  return sum * h / 3;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

}  // namespace

Status ValidateModel(const SramPufModel& m) {
  auto bad = [](const std::string& what) { return Error(Code::kInvalidArgument, what); };
  if (m.cells < 1 || m.cells > (size_t{1} << 26)) {
    return bad("PUF cells " + std::to_string(m.cells) + " must be in 1..67108864");
  }
  if (!(m.bias >= 0.01 && m.bias <= 0.99)) {
    return bad("PUF bias " + Num(m.bias) + " must be in 0.01..0.99");
  }
  if (!(m.ber >= 0.001 && m.ber <= 0.45)) {
    return bad("PUF bit error rate " + Num(m.ber) + " must be in 0.001..0.45");
  }
  if (!(m.chip_spread >= 0 && m.chip_spread <= 1)) {
    return bad("PUF chip spread " + Num(m.chip_spread) + " must be in 0..1");
  }
  if (!(m.drift_per_kelvin >= 0 && m.drift_per_kelvin <= 1)) {
    return bad("PUF temperature drift " + Num(m.drift_per_kelvin) + " must be in 0..1");
  }
  return OkStatus();
}

Result<SramPufFamily> SramPufFamily::Create(const SramPufModel& model) {
  if (auto s = ValidateModel(model); !s) {
    return s.error();
  }
  const double c = internal::NormalQuantile(model.bias);
  // The mean error rate falls monotonically as the noise ratio grows: bisect on log(l).
  double lo = std::log(1e-3);
  double hi = std::log(1e4);
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (MeanErrorRate(std::exp(mid), c) > model.ber) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return SramPufFamily(model, std::exp(0.5 * (lo + hi)), c);
}

SimulatedSramPuf SramPufFamily::Chip(uint64_t chip_seed) const {
  internal::Xoshiro256 rng(chip_seed);
  std::normal_distribution<double> normal;
  SimulatedSramPuf chip;
  const double l = noise_ratio_ * std::exp(model_.chip_spread * normal(rng));
  chip.skew_.resize(model_.cells);
  chip.drift_.resize(model_.cells);
  chip.reference_.resize(model_.cells);
  for (size_t i = 0; i < model_.cells; ++i) {
    chip.skew_[i] = static_cast<float>(l * (normal(rng) + offset_));
    chip.drift_[i] = static_cast<float>(model_.drift_per_kelvin * normal(rng));
    chip.reference_[i] = chip.skew_[i] > 0 ? 1 : 0;
  }
  chip.reads_.Seed(chip_seed ^ 0x5245414453ULL);
  return chip;
}

Result<SimulatedSramPuf> SimulatedSramPuf::Create(uint64_t chip_seed, const SramPufModel& model) {
  auto family = SramPufFamily::Create(model);
  if (!family) {
    return family.error();
  }
  return family->Chip(chip_seed);
}

const std::vector<double>& SimulatedSramPuf::OneProbabilities(double temperature_c) {
  if (one_probability_.empty() || cached_temperature_ != temperature_c) {
    const double dt = temperature_c - kReferenceTemperatureC;
    one_probability_.resize(skew_.size());
    for (size_t i = 0; i < skew_.size(); ++i) {
      one_probability_[i] = NormalCdf(skew_[i] + drift_[i] * dt);
    }
    cached_temperature_ = temperature_c;
  }
  return one_probability_;
}

Bits SimulatedSramPuf::Read(double temperature_c) {
  const std::vector<double>& p = OneProbabilities(temperature_c);
  Bits out(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    // 53 random bits as a uniform double in [0, 1).
    const double u = static_cast<double>(reads_() >> 11) * 0x1.0p-53;
    out[i] = u < p[i] ? 1 : 0;
  }
  return out;
}

Result<Bits> SimulatedSramPuf::MajorityRead(int reads, double temperature_c) {
  if (reads < 1 || reads > 255 || reads % 2 == 0) {
    return Error(Code::kInvalidArgument,
                 "enrollment reads " + std::to_string(reads) + " must be odd and in 1..255");
  }
  std::vector<uint8_t> ones(size(), 0);
  for (int r = 0; r < reads; ++r) {
    Bits read = Read(temperature_c);
    for (size_t i = 0; i < read.size(); ++i) {
      ones[i] = static_cast<uint8_t>(ones[i] + read[i]);
    }
  }
  Bits out(size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = 2 * ones[i] > reads ? 1 : 0;
  }
  return out;
}

std::vector<double> SimulatedSramPuf::ErrorRates(double temperature_c) const {
  const double dt = temperature_c - kReferenceTemperatureC;
  std::vector<double> e(skew_.size());
  for (size_t i = 0; i < e.size(); ++i) {
    const double one = NormalCdf(skew_[i] + drift_[i] * dt);
    e[i] = reference_[i] != 0 ? 1 - one : one;
  }
  return e;
}

}  // namespace hallmark::puf
