// Issuance throughput against the crypto limit.
//
// An issuance is: parse the CSR, verify its proof-of-possession signature (one ECDSA verify),
// decide the profile, sign the certificate (one ECDSA sign), and commit it to the issuance log.
// The crypto limit is 1 / (t_sign + t_verify) for P-256, measured in the same run; the summary
// prints issuance as a fraction of it.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "ca/authority.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/key.h"

namespace {

using namespace hallmark;  // NOLINT: benchmark file

constexpr int kCsrPool = 64;

// Workspace is a CA with one customer, in a fresh directory under `parent`.
struct Workspace {
  explicit Workspace(const std::string& parent) {
    std::string tmpl = parent + "/hallmark-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::abort();
    }
    dir = tmpl;
    auto a = ca::Authority::Init(dir + "/ca", {}, std::nullopt, &SystemClock());
    if (!a) {
      std::fprintf(stderr, "init: %s\n", a.error().ToString().c_str());
      std::abort();
    }
    authority.emplace(std::move(*a));
    if (!authority->AddCustomer("acme", {})) {
      std::abort();
    }
    for (int i = 0; i < kCsrPool; ++i) {
      auto key = PrivateKey::Generate(KeyType::kP256);
      DistinguishedName subject;
      subject.serial_number = "BENCH-" + std::to_string(i);
      auto csr = Csr::Create(*key, subject);
      csrs.push_back(csr->ToDer());
    }
  }
  ~Workspace() {
    authority.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::string dir;
  std::optional<ca::Authority> authority;
  std::vector<Bytes> csrs;
};

Bytes TbsLikeMessage() { return Bytes(400, 0x5a); }  // about a device certificate's TBS size

void BM_EvpSignP256(benchmark::State& state) {
  auto key = PrivateKey::Generate(KeyType::kP256);
  Bytes msg = TbsLikeMessage();
  for (auto _ : state) {
    auto sig = key->Sign(msg);
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EvpSignP256);

void BM_EvpVerifyP256(benchmark::State& state) {
  auto key = PrivateKey::Generate(KeyType::kP256);
  Bytes msg = TbsLikeMessage();
  Bytes sig = *key->Sign(msg);
  PublicKey pub = key->Public();
  for (auto _ : state) {
    Status s = pub.Verify(msg, sig);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EvpVerifyP256);

// The parts of an issuance, to see where the time goes.
void BM_CsrParse(benchmark::State& state) {
  auto key = PrivateKey::Generate(KeyType::kP256);
  DistinguishedName subject;
  subject.serial_number = "BENCH-1";
  Bytes der = Csr::Create(*key, subject)->ToDer();
  for (auto _ : state) {
    auto csr = Csr::FromDer(der);
    benchmark::DoNotOptimize(csr);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CsrParse);

void BM_CsrParseAndVerify(benchmark::State& state) {
  auto key = PrivateKey::Generate(KeyType::kP256);
  DistinguishedName subject;
  subject.serial_number = "BENCH-1";
  Bytes der = Csr::Create(*key, subject)->ToDer();
  for (auto _ : state) {
    auto csr = Csr::FromDer(der);
    Status s = csr->VerifySignature();
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CsrParseAndVerify);

// Issue one certificate per transaction (one fsync each): the durable single-issuance path.
void IssueSingle(benchmark::State& state, const std::string& parent) {
  Workspace ws(parent);
  auto issuer = ws.authority->IssuerFor("acme");
  size_t i = 0;
  for (auto _ : state) {
    auto csr = Csr::FromDer(ws.csrs[i++ % ws.csrs.size()]);
    auto issued = issuer->Issue(ca::IssueRequest{*csr, ca::Profile::kDevice, {}, {}, {}, false});
    if (!issued) {
      state.SkipWithError(issued.error().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(issued);
  }
  state.SetItemsProcessed(state.iterations());
}

// Issue `range(0)` certificates per transaction (group commit, one fsync per batch), as a
// factory station or `hallmark ca issue a.csr b.csr ...` does.
void IssueBatch(benchmark::State& state, const std::string& parent) {
  Workspace ws(parent);
  auto issuer = ws.authority->IssuerFor("acme");
  const auto batch = static_cast<size_t>(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    std::vector<ca::IssueRequest> requests;
    requests.reserve(batch);
    for (size_t k = 0; k < batch; ++k) {
      auto csr = Csr::FromDer(ws.csrs[i++ % ws.csrs.size()]);
      requests.push_back(ca::IssueRequest{*csr, ca::Profile::kDevice, {}, {}, {}, false});
    }
    auto results = issuer->IssueBatch(requests);
    if (!results.front()) {
      state.SkipWithError(results.front().error().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(results);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}

void BM_IssueDurable_Disk(benchmark::State& state) { IssueSingle(state, "."); }
BENCHMARK(BM_IssueDurable_Disk)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_IssueDurable_Tmpfs(benchmark::State& state) { IssueSingle(state, "/dev/shm"); }
BENCHMARK(BM_IssueDurable_Tmpfs)->Unit(benchmark::kMicrosecond);

void BM_IssueBatch_Disk(benchmark::State& state) { IssueBatch(state, "."); }
BENCHMARK(BM_IssueBatch_Disk)->Arg(16)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

// CollectingReporter prints as usual and keeps items/s per benchmark for the summary.
class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) {
        rates[r.benchmark_name()] = it->second.value;
      }
    }
  }
  std::map<std::string, double> rates;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto& r = reporter.rates;
  if (r.count("BM_EvpSignP256") == 0 || r.count("BM_EvpVerifyP256") == 0) {
    return 0;
  }
  double sign_us = 1e6 / r["BM_EvpSignP256"];
  double verify_us = 1e6 / r["BM_EvpVerifyP256"];
  double limit = 1e6 / (sign_us + verify_us);
  std::printf(
      "\nP-256 on this core: sign %.1f us, verify %.1f us -> crypto limit %.0f "
      "issuances/s (one verify + one sign each)\n",
      sign_us, verify_us, limit);
  for (const auto& [name, rate] : r) {
    if (name.rfind("BM_Issue", 0) == 0) {
      std::printf("  %-28s %8.0f certificates/s = %5.1f%% of the crypto limit\n", name.c_str(),
                  rate, 100.0 * rate / limit);
    }
  }
  benchmark::Shutdown();
  return 0;
}
