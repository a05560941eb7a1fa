// Registry throughput: manifest import rate and peak memory, the server's log replay at open,
// and verified lookups per second, next to the cost of the one Ed25519 verify a lookup makes.
//
// HALLMARK_BENCH_DEVICES (default 100000) sets the registry size. The manifest is generated
// once (Ed25519 device and factory keys), streamed to a file, and imported into a fresh
// database; the lookup benchmarks then use that database.
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/key.h"
#include "registry/manifest.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"
#include "registry/serving_directory.h"

namespace {

using namespace hallmark;            // NOLINT: benchmark file
using namespace hallmark::registry;  // NOLINT: benchmark file

void Die(const std::string& what, const Error& e) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), e.ToString().c_str());
  std::abort();
}

int64_t Devices() {
  const char* env = std::getenv("HALLMARK_BENCH_DEVICES");
  return env != nullptr ? std::atoll(env) : 100000;
}

double PeakRssMiB() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Workspace holds the keys, the manifest and the imported database for every benchmark.
struct Workspace {
  Workspace() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "hallmark-registry-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::abort();
    }
    dir = tmpl;
    auto key = RegistrarKey::FromPrivateKey(*PrivateKey::Generate(KeyType::kEd25519));
    registrar.emplace(std::move(*key));
    factory.emplace(std::move(*PrivateKey::Generate(KeyType::kEd25519)));
    manifest = dir + "/manifest.jsonl";
    std::ofstream out(manifest, std::ios::binary);
    int64_t n = Devices();
    ids.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      auto device = PrivateKey::Generate(KeyType::kEd25519);
      auto line = FormatManifestLine(device->Public(), "SN-" + std::to_string(i), *factory);
      if (!line) {
        Die("manifest", line.error());
      }
      out << *line << "\n";
      ids.push_back(device->Public().DeviceId());
    }
  }
  ~Workspace() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  // Import imports the manifest into a new database and returns its path.
  std::string Import(double* seconds) {
    std::string db = dir + "/registry-" + std::to_string(imports++) + ".db";
    auto reg = Registry::Create(db, *registrar, &SystemClock());
    if (!reg) {
      Die("create", reg.error());
    }
    std::ifstream in(manifest, std::ios::binary);
    auto start = std::chrono::steady_clock::now();
    auto summary = reg->Import(*registrar, in, factory->Public(), {});
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!summary) {
      Die("import", summary.error());
    }
    return db;
  }

  // Db returns an imported database, importing once if no benchmark has yet.
  const std::string& Db() {
    if (imported.empty()) {
      double ignored = 0;
      imported = Import(&ignored);
    }
    return imported;
  }

  std::string dir;
  std::optional<RegistrarKey> registrar;
  std::optional<PrivateKey> factory;
  std::string manifest;
  std::vector<std::string> ids;
  std::string imported;
  int imports = 0;
};

// Shared is destroyed at exit, which removes the workspace directory.
Workspace& Shared() {
  static Workspace w;
  return w;
}

void BM_ImportManifest(benchmark::State& state) {
  Workspace& w = Shared();
  double rss_before = PeakRssMiB();
  double seconds = 0;
  for (auto _ : state) {
    w.imported = w.Import(&seconds);
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(static_cast<int64_t>(w.ids.size()) * state.iterations());
  state.counters["lines"] = static_cast<double>(w.ids.size());
  state.counters["peak_rss_MiB"] = PeakRssMiB();
  state.counters["rss_growth_MiB"] = PeakRssMiB() - rss_before;
}
BENCHMARK(BM_ImportManifest)->Iterations(1)->UseManualTime()->Unit(benchmark::kSecond);

void BM_OpenServingDirectory(benchmark::State& state) {
  Workspace& w = Shared();
  const std::string& db = w.Db();
  for (auto _ : state) {
    auto dir = ServingDirectory::Open(db, w.registrar->Public());
    if (!dir) {
      Die("open", dir.error());
    }
    benchmark::DoNotOptimize(dir);
  }
  state.SetItemsProcessed(static_cast<int64_t>(w.ids.size()) * state.iterations());
  state.counters["devices"] = static_cast<double>(w.ids.size());
}
BENCHMARK(BM_OpenServingDirectory)->Iterations(3)->Unit(benchmark::kMillisecond);

ServingDirectory& SharedDirectory() {
  static ServingDirectory* d = []() {
    auto dir = ServingDirectory::Open(Shared().Db(), Shared().registrar->Public());
    if (!dir) {
      Die("open", dir.error());
    }
    return dir->release();
  }();
  return *d;
}

// BM_Lookup looks up random registered devices: one SQLite read, one SHA-256 of the record,
// one Ed25519 verify.
void BM_Lookup(benchmark::State& state) {
  Workspace& w = Shared();
  ServingDirectory& dir = SharedDirectory();
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(state.thread_index() + 1);
  for (auto _ : state) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    auto r = dir.Lookup(w.ids[(x >> 33) % w.ids.size()]);
    if (!r) {
      Die("lookup", r.error());
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Lookup)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// BM_LookupUnknown looks up devices that are not registered: the index answers, no signature.
void BM_LookupUnknown(benchmark::State& state) {
  ServingDirectory& dir = SharedDirectory();
  std::string id(64, '0');
  uint64_t i = 0;
  for (auto _ : state) {
    std::snprintf(id.data(), 17, "%016llx", static_cast<unsigned long long>(++i));
    id[16] = '0';
    auto r = dir.Lookup(id);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupUnknown)->Unit(benchmark::kMicrosecond);

// BM_Ed25519Verify is the crypto floor of a lookup.
void BM_Ed25519Verify(benchmark::State& state) {
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  std::string msg(400, 'x');
  auto sig = key->Sign(AsBytes(msg));
  for (auto _ : state) {
    auto s = key->Public().Verify(AsBytes(msg), *sig);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ed25519Verify)->Unit(benchmark::kMicrosecond);

// BM_LeafHash is one Merkle leaf hash of a typical record: the replay's unit of work.
void BM_LeafHash(benchmark::State& state) {
  std::string entry(330, 'x');
  for (auto _ : state) {
    Hash h = LeafHash(AsBytes(entry));
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LeafHash)->Unit(benchmark::kMicrosecond);

// BM_VerifyRegistry is `hallmark registry verify`: two signature checks per device plus the
// log replay.
void BM_VerifyRegistry(benchmark::State& state) {
  Workspace& w = Shared();
  auto reg = Registry::Open(w.Db(), &SystemClock());
  if (!reg) {
    Die("open", reg.error());
  }
  for (auto _ : state) {
    auto report = reg->Verify(w.registrar->Public());
    if (!report || !report->clean()) {
      std::fprintf(stderr, "verify failed\n");
      std::abort();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(w.ids.size()) * state.iterations());
}
BENCHMARK(BM_VerifyRegistry)->Iterations(1)->Unit(benchmark::kSecond);

// BM_RefreshIdle measures a refresh that finds nothing new: what the server pays every poll.
void BM_RefreshIdle(benchmark::State& state) {
  ServingDirectory& dir = SharedDirectory();
  for (auto _ : state) {
    auto r = dir.Refresh();
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_RefreshIdle)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
