#include "puf/evaluation.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <string>

#include "puf/bits.h"
#include "puf/internal/bch.h"
#include "puf/internal/code.h"
#include "puf/internal/stats.h"

namespace hallmark::puf {
namespace {

using internal::BchCode;
using internal::BlockDecision;

bool Pairs(const ExtractorParams& p) { return p.debiasing == Debiasing::kPairs; }

// BlockWrongTable[a][b] says whether a block with `a` wrong first votes and `b` wrong second
// votes decodes wrongly (BlockDecision is symmetric in 0 and 1).
std::vector<std::vector<bool>> BlockWrongTable(const ExtractorParams& params) {
  const int r = params.repetition;
  const int second_max = Pairs(params) ? r : 0;
  std::vector<std::vector<bool>> table(static_cast<size_t>(r) + 1);
  for (int a = 0; a <= r; ++a) {
    for (int b = 0; b <= second_max; ++b) {
      table[static_cast<size_t>(a)].push_back(BlockDecision(a, b, r, params.debiasing));
    }
  }
  return table;
}

// BlockWrongProbability combines the distributions of wrong first and second votes.
double BlockWrongProbability(const std::vector<std::vector<bool>>& table,
                             const std::vector<double>& first, const std::vector<double>& second) {
  double q = 0;
  for (size_t a = 0; a < table.size(); ++a) {
    for (size_t b = 0; b < table[a].size(); ++b) {
      if (table[a][b]) {
        q += first[a] * second[b];
      }
    }
  }
  return q;
}

// BernoulliWords yields 64 independent bits per call, each 1 with probability exactly `p` (a
// double): lane-wise comparison of uniform random bits with p's binary expansion, most
// significant first, until every lane is decided (about 8 words of randomness per call).
class BernoulliWords {
 public:
  BernoulliWords(double p, uint64_t seed) : rng_(seed) {
    for (int i = 0; i < 1100 && p > 0; ++i) {
      p *= 2;  // exact in binary floating point
      const bool bit = p >= 1;
      expansion_.push_back(bit ? 1 : 0);
      p -= bit ? 1 : 0;
    }
  }

  uint64_t Next() {
    uint64_t result = 0;
    uint64_t undecided = ~uint64_t{0};
    for (uint8_t bit : expansion_) {
      const uint64_t u = rng_();
      if (bit) {
        result |= undecided & ~u;
        undecided &= u;
      } else {
        undecided &= ~u;
      }
      if (undecided == 0) {
        break;
      }
    }
    return result;  // lanes still undecided equal p in every bit: U >= p, so 0
  }

 private:
  std::vector<uint8_t> expansion_;
  internal::Xoshiro256 rng_;
};

// SlicedCounter counts votes in 64 lanes at once (bit k of the count of lane j in word k, bit j).
struct SlicedCounter {
  std::array<uint64_t, 4> bit{};  // counts up to 15 votes

  void Add(uint64_t x) {
    for (uint64_t& b : bit) {
      const uint64_t carry = b & x;
      b ^= x;
      x = carry;
    }
  }
  // Equals returns the lanes whose count is `value`.
  uint64_t Equals(int value) const {
    uint64_t eq = ~uint64_t{0};
    for (size_t k = 0; k < bit.size(); ++k) {
      eq &= ((value >> k) & 1) != 0 ? bit[k] : ~bit[k];
    }
    return eq;
  }
};

uint64_t ChipSeed(uint64_t seed, size_t index) {
  return internal::SplitMix64(seed ^ internal::SplitMix64(index));
}

// PopulationCells is how many cells each simulated chip gets: the code's bits, or for pair
// debiasing enough that running out is a >10 sigma event at the model's bias.
size_t PopulationCells(const ExtractorParams& params, double bias) {
  if (!Pairs(params)) {
    return params.EncodedBits();
  }
  return 2 * static_cast<size_t>(std::ceil(ExpectedCells(params, bias) / 2 * 1.15 + 64));
}

// WordHammingDistance compares two packed responses.
size_t WordHammingDistance(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  size_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += static_cast<size_t>(std::popcount(a[i] ^ b[i]));
  }
  return d;
}

std::vector<uint64_t> PackWords(const Bits& bits) {
  std::vector<uint64_t> words((bits.size() + 63) / 64, 0);
  for (size_t i = 0; i < bits.size(); ++i) {
    words[i / 64] |= static_cast<uint64_t>(bits[i]) << (i % 64);
  }
  return words;
}

// ChipVotes lists, for each encoded bit, the cells of its first and (with pairs) second vote.
struct ChipVotes {
  std::vector<uint32_t> first;
  std::vector<uint32_t> second;
  size_t cells_used = 0;
};

bool MapVotes(const ExtractorParams& params, const Bits& enrolled, ChipVotes& out) {
  const size_t encoded = params.EncodedBits();
  out.first.clear();
  out.second.clear();
  if (!Pairs(params)) {
    for (uint32_t i = 0; i < encoded; ++i) {
      out.first.push_back(i);
    }
    out.cells_used = encoded;
    return true;
  }
  std::vector<uint32_t> pairs = internal::SelectPairs(enrolled, encoded);
  if (pairs.size() < encoded) {
    return false;
  }
  for (uint32_t p : pairs) {
    out.first.push_back(2 * p);
    out.second.push_back(2 * p + 1);
  }
  out.cells_used = 2 * (static_cast<size_t>(pairs.back()) + 1);
  return true;
}

// VoteErrorRate fraction of votes of `read` that disagree with enrollment.
double VoteErrorRate(const ChipVotes& v, const Bits& read, const Bits& enrolled) {
  size_t wrong = 0;
  for (uint32_t c : v.first) {
    wrong += static_cast<size_t>(read[c] != enrolled[c]);
  }
  for (uint32_t c : v.second) {
    wrong += static_cast<size_t>(read[c] != enrolled[c]);
  }
  return static_cast<double>(wrong) / static_cast<double>(v.first.size() + v.second.size());
}

}  // namespace

double BlockErrorRate(const ExtractorParams& params, double ber) {
  const int r = params.repetition;
  std::vector<double> votes(static_cast<size_t>(r) + 1);
  for (int a = 0; a <= r; ++a) {
    votes[static_cast<size_t>(a)] = std::exp(internal::LogBinomialPmf(r, a, ber));
  }
  const std::vector<double> none = {1.0};
  return BlockWrongProbability(BlockWrongTable(params), votes, Pairs(params) ? votes : none);
}

double FailureRate(const ExtractorParams& params, double ber) {
  const BchCode& bch = BchCode::Bch511();
  return internal::BinomialTail(bch.n(), bch.t(), BlockErrorRate(params, ber));
}

double BerAtFailureRate(const ExtractorParams& params, double target) {
  double lo = 1e-6;
  double hi = 0.5;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (FailureRate(params, mid) < target) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

double MonteCarloResult::ObservedRate() const {
  return trials == 0 ? 0 : static_cast<double>(failures) / static_cast<double>(trials);
}

double MonteCarloResult::ZScore() const {
  const double n = static_cast<double>(trials);
  const double variance = n * expected_rate * (1 - expected_rate);
  if (variance <= 0) {
    return failures == 0 ? 0 : INFINITY;
  }
  return (static_cast<double>(failures) - n * expected_rate) / std::sqrt(variance);
}

MonteCarloResult MonteCarloFailures(const ExtractorParams& params, double ber, uint64_t trials,
                                    uint64_t seed, const ProgressFn& progress) {
  const BchCode& bch = BchCode::Bch511();
  const auto table = BlockWrongTable(params);
  const int r = params.repetition;
  const bool pairs = Pairs(params);
  BernoulliWords flips(ber, seed);
  MonteCarloResult result{ber, trials, 0, FailureRate(params, ber)};
  const uint64_t batches = (trials + 63) / 64;
  const uint64_t report_every = std::max<uint64_t>(1, batches / 200);
  std::vector<uint64_t> first_eq(static_cast<size_t>(r) + 1);
  std::vector<uint64_t> second_eq(table[0].size());
  for (uint64_t batch = 0; batch < batches; ++batch) {
    const uint64_t lanes = std::min<uint64_t>(64, trials - batch * 64);
    const uint64_t lane_mask = lanes == 64 ? ~uint64_t{0} : (uint64_t{1} << lanes) - 1;
    std::array<int, 64> block_errors{};
    for (int block = 0; block < bch.n(); ++block) {
      SlicedCounter first;
      SlicedCounter second;
      for (int v = 0; v < r; ++v) {
        first.Add(flips.Next());
      }
      if (pairs) {
        for (int v = 0; v < r; ++v) {
          second.Add(flips.Next());
        }
      }
      for (size_t a = 0; a < first_eq.size(); ++a) {
        first_eq[a] = first.Equals(static_cast<int>(a));
      }
      for (size_t b = 0; b < second_eq.size(); ++b) {
        second_eq[b] = second.Equals(static_cast<int>(b));
      }
      uint64_t wrong = 0;
      for (size_t a = 0; a < table.size(); ++a) {
        uint64_t row = 0;
        for (size_t b = 0; b < table[a].size(); ++b) {
          row |= table[a][b] ? second_eq[b] : 0;
        }
        wrong |= first_eq[a] & row;
      }
      for (wrong &= lane_mask; wrong != 0; wrong &= wrong - 1) {
        ++block_errors[static_cast<size_t>(std::countr_zero(wrong))];
      }
    }
    for (uint64_t lane = 0; lane < lanes; ++lane) {
      result.failures += block_errors[lane] > bch.t() ? 1 : 0;
    }
    if (progress && (batch + 1) % report_every == 0) {
      progress(static_cast<double>(batch + 1) / static_cast<double>(batches));
    }
  }
  return result;
}

Distribution Summarize(std::vector<double> values) {
  Distribution d;
  if (values.empty()) {
    return d;
  }
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) {
    sum += v;
  }
  const size_t n = values.size();
  d.mean = sum / static_cast<double>(n);
  d.min = values.front();
  d.max = values.back();
  d.median = values[(n - 1) / 2];
  d.p999 = values[static_cast<size_t>(std::ceil(0.999 * static_cast<double>(n))) - 1];
  return d;
}

double ExpectedCells(const ExtractorParams& params, double bias) {
  const auto encoded = static_cast<double>(params.EncodedBits());
  if (!Pairs(params)) {
    return encoded;
  }
  return 2 * encoded / (2 * bias * (1 - bias));
}

Result<PopulationResult> EvaluatePopulation(const PopulationOptions& options,
                                            const ProgressFn& progress) {
  if (auto s = ValidateParams(options.params); !s) {
    return s.error();
  }
  if (options.chips < 1) {
    return Error(Code::kInvalidArgument, "population needs at least one chip");
  }
  SramPufModel model = options.model;
  model.cells = PopulationCells(options.params, model.bias);
  auto family = SramPufFamily::Create(model);
  if (!family) {
    return family.error();
  }
  const BchCode& bch = BchCode::Bch511();
  const auto table = BlockWrongTable(options.params);
  const auto rep = static_cast<size_t>(options.params.repetition);
  const size_t sample = std::min(options.sample_chips, options.chips);
  const std::array<double, 3> corners = {-40.0, kReferenceTemperatureC, 85.0};

  PopulationResult out;
  out.chips = options.chips;
  std::vector<double> failure, chip_ber, cells_used, measured;
  std::vector<std::vector<double>> by_temperature(corners.size());
  std::vector<std::vector<uint64_t>> references;
  ChipVotes votes;
  std::vector<double> block_q(static_cast<size_t>(bch.n()));
  std::vector<double> first_p(rep), second_p(rep);
  const std::vector<double> no_second = {1.0};
  for (size_t c = 0; c < options.chips; ++c) {
    SimulatedSramPuf chip = family->Chip(ChipSeed(options.seed, c));
    auto enrolled = chip.MajorityRead(options.enrollment_reads);
    if (!enrolled) {
      return enrolled.error();
    }
    if (c < sample) {
      references.push_back(PackWords(chip.Reference()));
    }
    if (!MapVotes(options.params, *enrolled, votes)) {
      ++out.enrollment_failures;
      continue;
    }
    // A vote is wrong when the read differs from the enrolled value: with the cell's error rate
    // if enrollment got the reference right, with its complement if not.
    std::vector<double> e = chip.ErrorRates(options.temperature_c);
    const Bits& reference = chip.Reference();
    for (size_t i = 0; i < e.size(); ++i) {
      e[i] = (*enrolled)[i] == reference[i] ? e[i] : 1 - e[i];
    }
    double ber_sum = 0;
    for (size_t b = 0; b < block_q.size(); ++b) {
      for (size_t v = 0; v < rep; ++v) {
        first_p[v] = e[votes.first[b * rep + v]];
        ber_sum += first_p[v];
        if (!votes.second.empty()) {
          second_p[v] = e[votes.second[b * rep + v]];
          ber_sum += second_p[v];
        }
      }
      block_q[b] = BlockWrongProbability(
          table, internal::PoissonBinomial(first_p),
          votes.second.empty() ? no_second : internal::PoissonBinomial(second_p));
    }
    failure.push_back(internal::PoissonBinomialTail(block_q, bch.t()));
    chip_ber.push_back(ber_sum / static_cast<double>(votes.first.size() + votes.second.size()));
    cells_used.push_back(static_cast<double>(votes.cells_used));

    if (c < sample) {
      for (size_t k = 0; k < corners.size(); ++k) {
        by_temperature[k].push_back(VoteErrorRate(votes, chip.Read(corners[k]), *enrolled));
      }
      measured.push_back(VoteErrorRate(votes, chip.Read(options.temperature_c), *enrolled));
      // End to end: the real extractor, enrolled from this chip, reconstructing from a read.
      auto enrollment = Enroll(*enrolled, options.params);
      if (enrollment) {
        ++out.end_to_end_runs;
        auto again = Reconstruct(chip.Read(options.temperature_c), enrollment->helper_data);
        if (!again || !(again->key.Public() == enrollment->key.Public())) {
          ++out.end_to_end_failures;
        }
      }
    }
    if (progress && (c + 1) % 100 == 0) {
      progress(static_cast<double>(c + 1) / static_cast<double>(options.chips));
    }
  }
  std::vector<double> distances;
  for (size_t i = 0; i < references.size(); ++i) {
    for (size_t j = i + 1; j < references.size(); ++j) {
      distances.push_back(static_cast<double>(WordHammingDistance(references[i], references[j])) /
                          static_cast<double>(model.cells));
    }
  }
  out.uniqueness = Summarize(std::move(distances));
  out.failure = Summarize(std::move(failure));
  out.chip_ber = Summarize(std::move(chip_ber));
  out.cells_used = Summarize(std::move(cells_used));
  out.measured_ber = Summarize(std::move(measured)).mean;
  for (size_t k = 0; k < corners.size(); ++k) {
    out.ber_by_temperature.emplace_back(corners[k], Summarize(std::move(by_temperature[k])).mean);
  }
  return out;
}

}  // namespace hallmark::puf
