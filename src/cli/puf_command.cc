// `hallmark puf ...`: the PUF root of trust on a simulated SRAM PUF: enroll a chip, regenerate its
// key from a fresh noisy read, and evaluate the fuzzy extractor (docs/puf.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/file.h"
#include "core/random.h"
#include "puf/evaluation.h"
#include "puf/fuzzy_extractor.h"
#include "puf/helper_data.h"
#include "puf/puf_key_store.h"
#include "puf/sram_puf.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

// PufOptions are the `puf` group's options: the simulated chip family.
struct PufOptions {
  puf::SramPufModel model;
  std::string debias = "auto";
  int repetition = 0;  // 0: the mode's default
};

void AddModelOptions(CLI::App* cmd, PufOptions& o) {
  cmd->add_option("--bias", o.model.bias, "Probability that a PUF cell is 1")
      ->capture_default_str();
  cmd->add_option("--ber", o.model.ber, "Mean bit error rate of one read at 25 C")
      ->capture_default_str();
  cmd->add_option("--cells", o.model.cells, "SRAM cells per simulated chip")->capture_default_str();
  cmd->add_option("--chip-spread", o.model.chip_spread,
                  "Log-normal sigma of the noise level from chip to chip")
      ->capture_default_str();
  cmd->add_option("--drift", o.model.drift_per_kelvin,
                  "Per-kelvin skew drift of each cell away from 25 C (noise units)")
      ->capture_default_str();
  cmd->add_option("--debias", o.debias,
                  "auto, none or pairs (auto: pairs unless the bias is "
                  "close enough to 50% for 256 bits without)")
      ->capture_default_str();
  cmd->add_option("--repetition", o.repetition,
                  "Inner repetition length, odd (default 7 without debiasing, 5 with pairs)");
}

Result<puf::ExtractorParams> ParamsFor(const PufOptions& o) {
  puf::Debiasing debiasing = puf::RecommendedDebiasing(o.model.bias);
  if (o.debias != "auto") {
    auto d = puf::ParseDebiasing(o.debias);
    if (!d) {
      return d.error();
    }
    debiasing = *d;
  }
  puf::ExtractorParams params = puf::ExtractorParams::For(debiasing);
  if (o.repetition != 0) {
    params.repetition = o.repetition;
  }
  if (auto s = puf::ValidateParams(params); !s) {
    return s.error();
  }
  return params;
}

std::string Sci(double v, int digits = 2) {
  std::ostringstream s;
  s << std::scientific << std::setprecision(digits) << v;
  return s.str();
}

std::string Fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string Percent(double v, int digits = 1) { return Fixed(100 * v, digits) + "%"; }

// ChipOptions select one simulated chip and how it is read.
struct ChipOptions {
  uint64_t chip_seed = 0;
  std::string helper;
  double temperature = puf::kReferenceTemperatureC;
};

void AddChipOptions(CLI::App* cmd, ChipOptions& c) {
  cmd->add_option("--chip-seed", c.chip_seed, "Seed of the simulated chip (its silicon)")
      ->required();
  cmd->add_option("--helper", c.helper, "Helper data file")->required();
  cmd->add_option("--temperature", c.temperature, "Temperature of the reads, in C")
      ->capture_default_str();
}

json KeyJson(const PublicKey& pub) {
  return {{"device_id", pub.DeviceId()},
          {"algorithm", pub.Algorithm().Describe()},
          {"public_key_pem", pub.ToPem()}};
}

void AddEnroll(CLI::App* group, Context& ctx, std::shared_ptr<PufOptions> o) {
  auto* cmd = group->add_subcommand("enroll",
                                    "Enroll a simulated chip: write its helper data, "
                                    "print its device ID");
  struct Opts {
    ChipOptions chip;
    int reads = 15;
    std::string pubkey_out;
  };
  auto opts = std::make_shared<Opts>();
  AddChipOptions(cmd, opts->chip);
  cmd->add_option("--enroll-reads", opts->reads, "Enroll from the majority of this many reads")
      ->capture_default_str();
  cmd->add_option("--pubkey-out", opts->pubkey_out, "Also write the public key (PEM) here");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto params = ParamsFor(*o);
    if (!params) {
      return params.error();
    }
    puf::PufKeyStoreOptions so;
    so.helper_path = opts->chip.helper;
    so.chip_seed = opts->chip.chip_seed;
    so.model = o->model;
    so.params = *params;
    so.enrollment_reads = opts->reads;
    so.temperature_c = opts->chip.temperature;
    auto store = puf::PufKeyStore::Open(so);
    if (!store) {
      return store.error();
    }
    auto pub = store->Create(KeyType::kP256);
    if (!pub) {
      return pub.error();
    }
    auto blob = ReadFile(opts->chip.helper);
    if (!blob) {
      return blob.error();
    }
    auto helper = puf::HelperData::Parse(AsBytes(*blob));
    if (!helper) {
      return helper.error();
    }
    if (!opts->pubkey_out.empty()) {
      if (auto s = WriteFileAtomic(opts->pubkey_out, pub->ToPem(), 0644); !s) {
        return s.error();
      }
    }
    json j = KeyJson(*pub);
    j["helper"] = opts->chip.helper;
    j["helper_bytes"] = blob->size();
    j["cells_used"] = helper->cells;
    j["debiasing"] = std::string(puf::DebiasingName(params->debiasing));
    std::ostringstream h;
    h << "Enrolled chip " << opts->chip.chip_seed << ": helper data " << opts->chip.helper << " ("
      << blob->size() << " bytes, " << helper->cells << " cells, debiasing "
      << puf::DebiasingName(params->debiasing)
      << "); no key stored\n  device id: " << pub->DeviceId() << "\n";
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

void AddReconstruct(CLI::App* group, Context& ctx, std::shared_ptr<PufOptions> o) {
  auto* cmd = group->add_subcommand(
      "reconstruct", "Regenerate the key from a fresh noisy read; print its device ID");
  struct Opts {
    ChipOptions chip;
    std::optional<uint64_t> read_seed;
  };
  auto opts = std::make_shared<Opts>();
  AddChipOptions(cmd, opts->chip);
  cmd->add_option("--read-seed", opts->read_seed,
                  "Seed of the read noise (default: random, a fresh read each time)");
  cmd->callback(Run(ctx, [&ctx, o, opts]() -> Status {
    auto helper = ReadFile(opts->chip.helper);
    if (!helper) {
      return helper.error();
    }
    auto chip = puf::SimulatedSramPuf::Create(opts->chip.chip_seed, o->model);
    if (!chip) {
      return chip.error();
    }
    uint64_t read_seed = 0;
    if (opts->read_seed) {
      read_seed = *opts->read_seed;
    } else {
      for (uint8_t b : RandomBytes(8)) {
        read_seed = (read_seed << 8) | b;
      }
    }
    chip->SeedReads(read_seed);
    puf::Bits read = chip->Read(opts->chip.temperature);
    auto r = puf::Reconstruct(read, AsBytes(*helper));
    puf::WipeBits(read);
    if (!r) {
      return r.error().WithContext(opts->chip.helper);
    }
    json j = KeyJson(r->key.Public());
    j["read_seed"] = read_seed;
    j["bit_errors"] = r->bit_errors;
    j["block_errors"] = r->block_errors;
    std::ostringstream h;
    h << r->key.Public().DeviceId() << "\n  (read seed " << read_seed << ": corrected "
      << r->bit_errors << " bit errors, " << r->block_errors << " in the outer code)\n";
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

// --- eval ---

struct EvalOpts {
  uint64_t trials = 200000;
  std::vector<double> mc_bers;  // default: where this construction's failures are observable
  double target_ber = 0.15;
  size_t chips = 10000;
  uint64_t seed = 1;
  double temperature = puf::kReferenceTemperatureC;
};

// Progress rewrites one stderr line when stderr is a terminal, and does nothing otherwise.
puf::ProgressFn Progress(const std::string& what) {
  if (!StderrIsTerminal()) {
    return nullptr;
  }
  return [what](double done) {
    std::fprintf(stderr, "\r  %s: %3.0f%%   ", what.c_str(), 100 * done);
    std::fflush(stderr);
  };
}

void EndProgress() {
  if (StderrIsTerminal()) {
    std::fprintf(stderr, "\r%60s\r", "");
  }
}

json DistributionJson(const puf::Distribution& d) {
  return {{"mean", d.mean},
          {"min", d.min},
          {"median", d.median},
          {"worst_0_1_percent", d.p999},
          {"max", d.max}};
}

// CodeSection: the construction, its size and the entropy left after the helper data.
json CodeSection(const puf::ExtractorParams& p, double bias, std::ostream& h) {
  const puf::ExtractorParams pairs = puf::ExtractorParams::For(puf::Debiasing::kPairs);
  const puf::ExtractorParams none = puf::ExtractorParams::For(puf::Debiasing::kNone);
  // The widest bias window in which no debiasing still keeps 256 bits.
  double window = 0;
  while (window < 0.5 && puf::ResidualEntropyBits(none, 0.5 - window - 0.001) >= 256) {
    window += 0.001;
  }
  const double cells = puf::ExpectedCells(p, bias);
  const size_t helper_bytes =
      puf::HelperData::FileSize(p, static_cast<size_t>(std::llround(cells)));
  json j = {{"outer_code", "BCH(511,295,t=26)"},
            {"repetition", p.repetition},
            {"debiasing", std::string(puf::DebiasingName(p.debiasing))},
            {"bias", bias},
            {"puf_bits", std::llround(cells)},
            {"helper_bytes", helper_bytes},
            {"entropy_left_bits", puf::ResidualEntropyBits(p, bias)},
            {"min_entropy_left_bits", puf::ResidualMinEntropyBits(p, bias)},
            {"no_debiasing_bias_window", {0.5 - window, 0.5 + window}},
            {"pairs_at_30_percent_bias",
             {{"puf_bits", std::llround(puf::ExpectedCells(pairs, 0.3))},
              {"entropy_left_bits", puf::ResidualEntropyBits(pairs, 0.3)}}}};
  h << "Construction: repetition-" << p.repetition << " inside BCH(511,295,t=26), debiasing "
    << puf::DebiasingName(p.debiasing) << ", HKDF-SHA-256 -> P-256\n"
    << "  PUF bits used:        " << Fixed(cells, 0)
    << (p.debiasing == puf::Debiasing::kPairs ? " (mean, at this bias)" : "") << "\n"
    << "  helper data:          " << helper_bytes << " bytes"
    << (p.debiasing == puf::Debiasing::kPairs ? " (mean)" : "") << "\n"
    << "  entropy left:         " << Fixed(puf::ResidualEntropyBits(p, bias), 0)
    << " bits after helper-data leakage at bias " << Fixed(bias, 2) << " (min-entropy bound "
    << Fixed(puf::ResidualMinEntropyBits(p, bias), 0) << "); 256 needed\n"
    << "  bias supported:       " << Fixed(0.5 - window, 3) << ".." << Fixed(0.5 + window, 3)
    << " without debiasing; any bias with pairs (30%: "
    << Fixed(puf::ResidualEntropyBits(pairs, 0.3), 0) << " bits left, ~"
    << Fixed(puf::ExpectedCells(pairs, 0.3), 0) << " PUF bits)\n";
  return j;
}

json FailureSection(const puf::ExtractorParams& p, const EvalOpts& e, std::ostream& h) {
  const double at_target = puf::FailureRate(p, e.target_ber);
  const double ber_1e6 = puf::BerAtFailureRate(p, 1e-6);
  json mc = json::array();
  h << "Failure rate per reconstruction, independent bit errors:\n"
    << "  exact at " << Percent(e.target_ber) << " BER:     " << Sci(at_target)
    << (at_target < 1e-9 ? "  (target < 1e-9: met)" : "  (target < 1e-9: NOT met)") << "\n"
    << "  failure reaches 1e-6 at " << Percent(ber_1e6, 2) << " BER\n"
    << "  Monte-Carlo, " << e.trials << " trials per BER, against the exact binomial model:\n"
    << "    BER     failures   observed    exact       z\n";
  for (size_t i = 0; i < e.mc_bers.size(); ++i) {
    const double ber = e.mc_bers[i];
    puf::MonteCarloResult r = puf::MonteCarloFailures(p, ber, e.trials, e.seed + i,
                                                      Progress("Monte-Carlo at " + Percent(ber)));
    EndProgress();
    mc.push_back({{"ber", ber},
                  {"trials", r.trials},
                  {"failures", r.failures},
                  {"observed_rate", r.ObservedRate()},
                  {"exact_rate", r.expected_rate},
                  {"z", r.ZScore()}});
    h << "    " << std::left << std::setw(8) << Percent(ber) << std::right << std::setw(8)
      << r.failures << "   " << Sci(r.ObservedRate()) << "   " << Sci(r.expected_rate) << "   "
      << (r.ZScore() >= 0 ? "+" : "") << Fixed(r.ZScore(), 2) << "\n";
  }
  return {{"target_ber", e.target_ber},
          {"exact_at_target", at_target},
          {"target_met", at_target < 1e-9},
          {"ber_at_1e-6", ber_1e6},
          {"monte_carlo", mc}};
}

Result<json> PopulationSection(const PufOptions& o, const puf::ExtractorParams& p,
                               const EvalOpts& e, std::ostream& h) {
  puf::PopulationOptions po;
  po.model = o.model;
  po.params = p;
  po.chips = e.chips;
  po.seed = e.seed;
  po.temperature_c = e.temperature;
  auto r = puf::EvaluatePopulation(po, Progress("simulated chips"));
  EndProgress();
  if (!r) {
    return r.error();
  }
  json temps = json::array();
  std::ostringstream t;
  for (const auto& [celsius, ber] : r->ber_by_temperature) {
    temps.push_back({{"celsius", celsius}, {"ber", ber}});
    t << (t.tellp() == 0 ? "" : ", ") << Fixed(celsius, 0) << " C " << Percent(ber);
  }
  h << "Population: " << r->chips << " simulated chips (BER " << Percent(o.model.ber)
    << " at 25 C, chip spread " << Fixed(o.model.chip_spread, 3) << ", drift "
    << Fixed(o.model.drift_per_kelvin, 4) << "/K, enrolled from " << po.enrollment_reads
    << " reads, read at " << Fixed(e.temperature, 0) << " C)\n"
    << "  uniqueness:           inter-chip HD mean " << Percent(r->uniqueness.mean, 2) << ", min "
    << Percent(r->uniqueness.min, 2) << ", max " << Percent(r->uniqueness.max, 2) << " ("
    << std::min(po.sample_chips, r->chips) << " chips pairwise)\n"
    << "  reliability:          intra-chip HD to enrollment mean " << Percent(r->chip_ber.mean)
    << ", worst 0.1% of chips " << Percent(r->chip_ber.p999) << ", worst "
    << Percent(r->chip_ber.max) << "\n"
    << "  measured from reads:  " << t.str() << "\n"
    << "  failure per chip:     mean " << Sci(r->failure.mean) << ", median "
    << Sci(r->failure.median) << ", worst 0.1% of chips " << Sci(r->failure.p999) << ", worst chip "
    << Sci(r->failure.max) << "\n"
    << "  end to end:           " << r->end_to_end_runs << " real enroll + reconstruct runs, "
    << r->end_to_end_failures << " failed; " << r->enrollment_failures
    << " chips could not enroll\n";
  return json{{"chips", r->chips},
              {"enrollment_failures", r->enrollment_failures},
              {"uniqueness", DistributionJson(r->uniqueness)},
              {"reliability_ber", DistributionJson(r->chip_ber)},
              {"measured_ber", r->measured_ber},
              {"ber_by_temperature", temps},
              {"failure", DistributionJson(r->failure)},
              {"cells_used", DistributionJson(r->cells_used)},
              {"end_to_end_runs", r->end_to_end_runs},
              {"end_to_end_failures", r->end_to_end_failures}};
}

void AddEval(CLI::App* group, Context& ctx, std::shared_ptr<PufOptions> o) {
  auto* cmd = group->add_subcommand(
      "eval", "Uniqueness, reliability, failure rates (exact and Monte-Carlo), entropy");
  auto e = std::make_shared<EvalOpts>();
  cmd->add_option("--trials", e->trials,
                  "Monte-Carlo trials per BER (1000000 for the full "
                  "validation)")
      ->capture_default_str();
  cmd->add_option(
         "--mc-ber", e->mc_bers,
         "Bit error rates for the Monte-Carlo, comma-separated (default: 0.17,0.18,0.19,0.2 "
         "without debiasing, 0.2,0.21,0.22,0.23 with pairs)")
      ->delimiter(',');
  cmd->add_option("--target-ber", e->target_ber, "BER of the exact failure target (< 1e-9)")
      ->capture_default_str();
  cmd->add_option("--chips", e->chips, "Simulated chips in the population")->capture_default_str();
  cmd->add_option("--seed", e->seed, "Seed of the simulation")->capture_default_str();
  cmd->add_option("--temperature", e->temperature, "Temperature of the reconstructions, in C")
      ->capture_default_str();
  cmd->callback(Run(ctx, [&ctx, o, e]() -> Status {
    if (auto s = puf::ValidateModel(o->model); !s) {
      return s.error();
    }
    for (double ber : e->mc_bers) {
      if (!(ber > 0 && ber < 0.5)) {
        return Error(Code::kInvalidArgument, "--mc-ber values must be in (0, 0.5)");
      }
    }
    auto params = ParamsFor(*o);
    if (!params) {
      return params.error();
    }
    if (e->mc_bers.empty()) {
      e->mc_bers = params->debiasing == puf::Debiasing::kNone
                       ? std::vector<double>{0.17, 0.18, 0.19, 0.20}
                       : std::vector<double>{0.20, 0.21, 0.22, 0.23};
    }
    const auto start = std::chrono::steady_clock::now();
    std::ostringstream h;
    json j;
    j["code"] = CodeSection(*params, o->model.bias, h);
    j["failure"] = FailureSection(*params, *e, h);
    auto population = PopulationSection(*o, *params, *e, h);
    if (!population) {
      return population.error();
    }
    j["population"] = std::move(*population);
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    h << "(" << Fixed(j["seconds"].get<double>(), 1) << " s)\n";
    Succeed(ctx, j, h.str());
    return OkStatus();
  }));
}

}  // namespace

void AddPufCommands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("puf", "PUF root of trust on a simulated SRAM PUF");
  group->require_subcommand(1);
  auto o = std::make_shared<PufOptions>();
  AddModelOptions(group, *o);
  AddEnroll(group, ctx, o);
  AddReconstruct(group, ctx, o);
  AddEval(group, ctx, o);
}

}  // namespace hallmark::cli
