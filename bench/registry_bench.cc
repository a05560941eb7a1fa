// Registry throughput: manifest import rate and peak memory; registry lookups through the
// server's path (RecordCache over ServingDirectory), cold (a SQLite read, a Merkle leaf hash and
// an Ed25519 verify) and warm (a cache hit), with latency percentiles, at several registry
// sizes; the cache under a flood of unknown devices; and the building blocks.
//
// Environment (docs/performance.md, "Registry"):
//   HALLMARK_BENCH_DEVICES       manifest lines generated and imported (default 20000); the
//                                imported registry is also the default lookup registry.
//   HALLMARK_BENCH_LOOKUP_SIZES  comma-separated registry sizes for the lookup benchmarks,
//                                e.g. "1000000,10000000". Each is built by a bulk path (records
//                                signed on all cores, written through the Storage API in large
//                                transactions), which reports how long it took. Default: none.
//   HALLMARK_BENCH_DIR           keep the bulk registries here and reuse them in later runs
//                                (default: a temporary directory, removed at exit).
//   HALLMARK_BENCH_SAMPLE        distinct devices looked up cold per size (default 20000).
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/key.h"
#include "registry/manifest.h"
#include "registry/merkle.h"
#include "registry/record.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"
#include "registry/serving_directory.h"
#include "registry/sqlite_storage.h"
#include "registry/tree_head.h"
#include "server/record_cache.h"

namespace {

using namespace hallmark;            // NOLINT: benchmark file
using namespace hallmark::registry;  // NOLINT: benchmark file
using Clk = std::chrono::steady_clock;

void Die(const std::string& what, const Error& e) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), e.ToString().c_str());
  std::abort();
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r) {
    Die(what, r.error());
  }
  return std::move(*r);
}

void Must(const Status& s, const std::string& what) {
  if (!s) {
    Die(what, s.error());
  }
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* env = std::getenv(name);
  return env != nullptr ? std::atoll(env) : fallback;
}

double Seconds(Clk::time_point since) {
  return std::chrono::duration<double>(Clk::now() - since).count();
}

// ProcStatusMiB reads a "VmXXX:" line of /proc/self/status, in MiB.
double ProcStatusMiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return static_cast<double>(std::atoll(line.c_str() + field.size() + 1)) / 1024.0;
    }
  }
  return 0;
}

// ResetPeakRss makes VmHWM start again from the current RSS (Linux 4.0+).
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// ThreadCpu is the calling thread's CPU time so far.
Clk::duration ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::duration_cast<Clk::duration>(std::chrono::seconds(ts.tv_sec) +
                                                   std::chrono::nanoseconds(ts.tv_nsec));
}

// Percentiles of latencies, in microseconds.
struct Latencies {
  std::vector<uint32_t> ns;
  void Add(Clk::duration d) {
    ns.push_back(static_cast<uint32_t>(std::min<int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(), UINT32_MAX)));
  }
  double Us(double q) {
    if (ns.empty()) {
      return 0;
    }
    size_t k = std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())));
    std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(k), ns.end());
    return ns[k] / 1000.0;
  }
  void Report(benchmark::State& state) {
    state.counters["p50_us"] = benchmark::Counter(Us(0.50), benchmark::Counter::kAvgThreads);
    state.counters["p99_us"] = benchmark::Counter(Us(0.99), benchmark::Counter::kAvgThreads);
  }
};

// ---------------------------------------------------------------------------------------------
// Manifest import.

// Scratch is a temporary directory, removed at exit.
struct Scratch {
  Scratch() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "hallmark-registry-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::abort();
    }
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
};

const std::string& ScratchDir() {
  static Scratch scratch;
  return scratch.dir;
}

// Workspace holds the keys, the manifest and the imported database.
struct Workspace {
  Workspace() : dir(ScratchDir()) {
    registrar.emplace(
        Must(RegistrarKey::FromPrivateKey(Must(PrivateKey::Generate(KeyType::kEd25519), "key")),
             "registrar"));
    factory.emplace(Must(PrivateKey::Generate(KeyType::kEd25519), "factory key"));
    manifest = dir + "/manifest.jsonl";
    const auto start = Clk::now();
    WriteManifest(EnvInt("HALLMARK_BENCH_DEVICES", 20000));
    std::fprintf(stderr, "generated a manifest of %zu lines in %.1f s\n", ids.size(),
                 Seconds(start));
  }
  // WriteManifest writes `n` lines (fresh Ed25519 device keys, signed by the factory key),
  // generated on every core.
  void WriteManifest(int64_t n) {
    std::ofstream out(manifest, std::ios::binary);
    const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
    constexpr int64_t kChunk = 10000;
    for (int64_t base = 0; base < n; base += kChunk * workers) {
      std::vector<std::vector<std::pair<std::string, std::string>>> parts(workers);
      std::vector<std::thread> threads;
      for (unsigned w = 0; w < workers; ++w) {
        threads.emplace_back([&, w]() {
          const int64_t from = base + static_cast<int64_t>(w) * kChunk;
          for (int64_t i = from; i < std::min(n, from + kChunk); ++i) {
            auto device = Must(PrivateKey::Generate(KeyType::kEd25519), "device key");
            parts[w].emplace_back(
                Must(FormatManifestLine(device.Public(), "SN-" + std::to_string(i), *factory),
                     "manifest"),
                device.Public().DeviceId());
          }
        });
      }
      for (auto& t : threads) {
        t.join();
      }
      for (auto& part : parts) {
        for (auto& [line, id] : part) {
          out << line << "\n";
          ids.push_back(std::move(id));
        }
      }
    }
  }

  // Import imports the manifest into a new database and returns its path.
  std::string Import(double* seconds) {
    std::string db = dir + "/registry-" + std::to_string(imports++) + ".db";
    auto reg = Must(Registry::Create(db, *registrar, &SystemClock()), "create");
    std::ifstream in(manifest, std::ios::binary);
    auto start = Clk::now();
    Must(reg.Import(*registrar, in, factory->Public(), {}), "import");
    *seconds = Seconds(start);
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

Workspace& Shared() {
  static Workspace w;
  return w;
}

// BM_ImportManifest: every line's signature checked, every record signed, one transaction.
// peak_rss_MiB is VmHWM after the import with the peak reset just before it; rss_before_MiB
// is what the process held then (mostly the benchmark's own list of device IDs).
void BM_ImportManifest(benchmark::State& state) {
  Workspace& w = Shared();
  double seconds = 0;
  double rss_before = 0;
  double peak = 0;
  for (auto _ : state) {
    rss_before = ProcStatusMiB("VmRSS");
    ResetPeakRss();
    w.imported = w.Import(&seconds);
    peak = ProcStatusMiB("VmHWM");
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(static_cast<int64_t>(w.ids.size()) * state.iterations());
  state.counters["lines"] = static_cast<double>(w.ids.size());
  state.counters["rss_before_MiB"] = rss_before;
  state.counters["peak_rss_MiB"] = peak;
  state.counters["import_added_MiB"] = peak - rss_before;
}

// ---------------------------------------------------------------------------------------------
// Registries for the lookup benchmarks.

// SyntheticSpki returns device `i`'s Ed25519 SubjectPublicKeyInfo: the 12-byte DER prefix and 32
// bytes derived from `i`. The lookup path never decodes the key (the record binds its device ID
// to the key's hash, which it checks), so these need not be points on the curve.
Bytes SyntheticSpki(uint64_t i) {
  static const uint8_t kPrefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                    0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  uint8_t counter[8];
  for (int b = 0; b < 8; ++b) {
    counter[b] = static_cast<uint8_t>(i >> (8 * b));
  }
  Bytes key = Sha256(counter);
  Bytes spki(sizeof(kPrefix) + key.size());
  std::copy(std::begin(kPrefix), std::end(kPrefix), spki.begin());
  std::copy(key.begin(), key.end(), spki.begin() + sizeof(kPrefix));
  return spki;
}

// Lookup registry: a database, its registrar's public key and a way to name its devices.
struct LookupRegistry {
  std::string db;
  std::optional<PublicKey> registrar;
  int64_t devices = 0;
  std::function<std::string(uint64_t)> id_of;  // device i's ID, 0 <= i < devices
};

// BuildBulkRegistry writes `n` active devices into a new registry at `db`, signed by
// `registrar`: records made and signed on every core, written through the Storage API as
// `Registry::Import` would (log entry, device row, and a signed tree head per transaction),
// half a million per transaction. Within a transaction the records are appended in device ID
// order, so that SQLite's B-trees (devices by ID, the log's index by device) fill in order.
void BuildBulkRegistry(const std::string& db, const RegistrarKey& registrar, int64_t n) {
  const auto start = Clk::now();
  Must(Registry::Create(db, registrar, &SystemClock()), "create");
  auto storage = Must(SqliteStorage::Open(db), "open");
  const int64_t now = SystemClock().Now();
  CompactRange range;
  double sign_s = 0;
  double write_s = 0;
  constexpr int64_t kBatch = 500000;
  const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  for (int64_t base = 0; base < n; base += kBatch) {
    const int64_t count = std::min(kBatch, n - base);
    auto t0 = Clk::now();
    std::vector<DeviceRecord> records(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      DeviceRecord& r = records[static_cast<size_t>(i)];
      r.public_key = SyntheticSpki(static_cast<uint64_t>(base + i));
      r.device_id = DeviceIdFromSpki(r.public_key);
      r.status = DeviceStatus::kActive;
      r.owner = "ACME";
      r.path = ProvisioningPath::kExtract;
      r.serial = "SN-" + std::to_string(base + i);
      r.created_at = now;
      r.updated_at = now;
      r.signer = std::string(kRegistrarSigner);
    }
    std::sort(records.begin(), records.end(), [](const DeviceRecord& a, const DeviceRecord& b) {
      return a.device_id < b.device_id;
    });
    std::vector<std::string> canonical(records.size());
    std::vector<std::thread> threads;
    for (unsigned w = 0; w < workers; ++w) {
      threads.emplace_back([&, w]() {
        for (size_t i = w; i < records.size(); i += workers) {
          records[i].seq = range.size() + i;
          canonical[i] = Must(CanonicalRecord(records[i]), "canonical");
          records[i].signature = Must(registrar.key().Sign(AsBytes(canonical[i])), "sign record");
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    sign_s += Seconds(t0);
    t0 = Clk::now();
    auto w = Must(storage->Write(), "write");
    for (size_t i = 0; i < records.size(); ++i) {
      LogEntry e;
      e.seq = records[i].seq;
      e.entry.assign(canonical[i].begin(), canonical[i].end());
      e.signature = records[i].signature;
      Must(w->AppendLog(e), "append");
      Must(w->PutDevice(records[i]), "put");
      range.Append(LeafHash(e.entry));
    }
    TreeHead head;
    head.tree_size = range.size();
    head.root_hash = range.Root();
    head.timestamp = now;
    head.signer = std::string(kRegistrarSigner);
    Must(SignTreeHead(registrar.key(), &head), "sign head");
    Must(w->AddHead(head, range.Serialize()), "head");
    Must(w->Commit(), "commit");
    write_s += Seconds(t0);
    std::fprintf(stderr, "  %lld / %lld devices\r", static_cast<long long>(base + count),
                 static_cast<long long>(n));
  }
  struct stat st {};
  ::stat(db.c_str(), &st);
  std::fprintf(stderr,
               "built a registry of %lld devices in %.0f s (records and signatures %.0f s on %u "
               "threads, SQLite %.0f s); %.1f GiB\n",
               static_cast<long long>(n), Seconds(start), sign_s, workers, write_s,
               static_cast<double>(st.st_size) / (1 << 30));
}

// BulkRegistry returns a registry of `n` devices from the bulk path, reusing one kept in
// HALLMARK_BENCH_DIR.
LookupRegistry BulkRegistry(int64_t n) {
  const char* keep = std::getenv("HALLMARK_BENCH_DIR");
  std::string dir = keep != nullptr ? std::string(keep) : ScratchDir();
  std::filesystem::create_directories(dir);
  const std::string base = dir + "/bulk-" + std::to_string(n);
  LookupRegistry reg;
  reg.db = base + ".db";
  reg.devices = n;
  reg.id_of = [](uint64_t i) { return DeviceIdFromSpki(SyntheticSpki(i)); };
  if (std::filesystem::exists(reg.db) && std::filesystem::exists(base + ".key")) {
    reg.registrar = Must(RegistrarKey::Load(base + ".key", std::nullopt), "load key").Public();
    std::fprintf(stderr, "reusing %s\n", reg.db.c_str());
    return reg;
  }
  std::filesystem::remove(reg.db);
  std::filesystem::remove(base + ".key");
  auto key = Must(RegistrarKey::Create(base + ".key", std::nullopt), "registrar key");
  BuildBulkRegistry(reg.db, key, n);
  reg.registrar = key.Public();
  return reg;
}

LookupRegistry ImportedRegistry() {
  LookupRegistry reg;
  reg.db = Shared().Db();
  reg.registrar = Shared().registrar->Public();
  reg.devices = static_cast<int64_t>(Shared().ids.size());
  reg.id_of = [](uint64_t i) { return Shared().ids[i]; };
  return reg;
}

// SampleSize is how many distinct devices of a registry of `devices` are looked up cold.
int64_t SampleSize(int64_t devices) {
  return std::min(devices, EnvInt("HALLMARK_BENCH_SAMPLE", 20000));
}

// Server is the server's lookup path over one registry: the ServingDirectory (opened once, its
// log replayed) and a RecordCache as `hallmark serve` makes it. `sample` is the devices the
// cold benchmark looks up, in random order; afterwards they are all cached.
struct Server {
  explicit Server(LookupRegistry r) : reg(std::move(r)) {
    const auto start = Clk::now();
    ResetPeakRss();
    const double rss = ProcStatusMiB("VmRSS");
    directory = Must(ServingDirectory::Open(reg.db, *reg.registrar), "open");
    open_s = Seconds(start);
    open_mib = ProcStatusMiB("VmHWM") - rss;
    server::RecordCache::Options o;
    o.cache_size = 1'000'000;
    cache = std::make_unique<server::RecordCache>(directory.get(), o);
    std::mt19937_64 rng(42);
    const auto n = static_cast<size_t>(SampleSize(reg.devices));
    std::unordered_set<uint64_t> picked;
    while (sample.size() < n) {
      const uint64_t p = rng() % static_cast<uint64_t>(reg.devices);
      if (picked.insert(p).second) {
        sample.push_back(reg.id_of(p));
      }
    }
  }

  LookupRegistry reg;
  std::unique_ptr<ServingDirectory> directory;
  std::unique_ptr<server::RecordCache> cache;
  std::vector<std::string> sample;
  double open_s = 0;
  double open_mib = 0;
};

std::map<int64_t, std::unique_ptr<Server>>& Servers() {
  static std::map<int64_t, std::unique_ptr<Server>> servers;
  return servers;
}

// ServerFor opens (once) the lookup registry of `size` devices; size 0 is the imported one.
Server& ServerFor(int64_t size) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto& s = Servers()[size];
  if (!s) {
    s = std::make_unique<Server>(size == 0 ? ImportedRegistry() : BulkRegistry(size));
  }
  return *s;
}

void CheckFound(const Result<server::CachedRecord>& r) {
  if (!r) {
    Die("lookup", r.error());
  }
}

// BM_LookupCold: each iteration is the first lookup of a device since the server started: a
// cache miss, a SQLite read, a Merkle leaf hash and an Ed25519 verify.
// The latency percentiles are of wall time, which on a shared machine includes waiting for a
// core; cpu_p50_us and cpu_p99_us are of the thread's CPU time (user and system: SQLite's reads
// from the page cache included), which does not.
void BM_LookupCold(benchmark::State& state, int64_t size) {
  Server& s = ServerFor(size);
  Latencies lat;
  Latencies cpu;
  size_t next = 0;
  for (auto _ : state) {
    if (next == s.sample.size()) {
      state.SkipWithError("sample exhausted");
      break;
    }
    const auto c0 = ThreadCpu();
    const auto t0 = Clk::now();
    auto r = s.cache->Lookup(s.sample[next++]);
    lat.Add(Clk::now() - t0);
    cpu.Add(ThreadCpu() - c0);
    CheckFound(r);
  }
  state.SetItemsProcessed(state.iterations());
  lat.Report(state);
  state.counters["cpu_p50_us"] = cpu.Us(0.50);
  state.counters["cpu_p99_us"] = cpu.Us(0.99);
  state.counters["devices"] = static_cast<double>(s.reg.devices);
  state.counters["open_s"] = s.open_s;
  state.counters["open_peak_MiB"] = s.open_mib;
}

// BM_LookupWarm: lookups of the devices the cold benchmark cached, in random order: a hit.
void BM_LookupWarm(benchmark::State& state, int64_t size) {
  Server& s = ServerFor(size);
  Latencies lat;
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(state.thread_index() + 1);
  for (auto _ : state) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const std::string& id = s.sample[(x >> 33) % s.sample.size()];
    const auto t0 = Clk::now();
    auto r = s.cache->Lookup(id);
    lat.Add(Clk::now() - t0);
    CheckFound(r);
  }
  state.SetItemsProcessed(state.iterations());
  lat.Report(state);
}

// BM_LookupWarmUnderFlood: the same warm lookups, each followed by a lookup of a device nobody
// registered (an unauthenticated client presenting a random key). The registered devices stay
// cached (every one a hit) and the flood costs the directory a read each.
void BM_LookupWarmUnderFlood(benchmark::State& state, int64_t size) {
  Server& s = ServerFor(size);
  Latencies lat;
  Latencies flood;
  const server::RecordCacheStats before = s.cache->Stats();
  // Kept across the runs Google Benchmark makes, so that no unknown ID is ever repeated.
  static uint64_t x = 0x2545f4914f6cdd1dull;
  std::string unknown(64, '0');
  for (auto _ : state) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const std::string& id = s.sample[(x >> 33) % s.sample.size()];
    auto t0 = Clk::now();
    auto r = s.cache->Lookup(id);
    lat.Add(Clk::now() - t0);
    CheckFound(r);
    std::snprintf(unknown.data(), 17, "%016llx", static_cast<unsigned long long>(x));
    unknown[16] = 'f';  // never a real ID in practice
    t0 = Clk::now();
    auto u = s.cache->Lookup(unknown);
    flood.Add(Clk::now() - t0);
    benchmark::DoNotOptimize(u);
  }
  const server::RecordCacheStats after = s.cache->Stats();
  state.SetItemsProcessed(state.iterations());
  lat.Report(state);
  state.counters["flood_p99_us"] = flood.Us(0.99);
  // Misses other than the flood's own: registered devices pushed out (should be 0).
  state.counters["registered_misses"] =
      static_cast<double>(after.misses - before.misses) - static_cast<double>(state.iterations());
  state.counters["negative_entries"] = static_cast<double>(after.negative_entries);
}

// ---------------------------------------------------------------------------------------------
// The cache alone: hits from several threads, with one shard (one mutex) or sixteen.

class MemoryDirectory : public Directory {
 public:
  explicit MemoryDirectory(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      DeviceRecord r;
      r.device_id = DeviceIdFromSpki(SyntheticSpki(i));
      r.status = DeviceStatus::kActive;
      r.owner = "ACME";
      r.serial = "SN-" + std::to_string(i);
      ids_.push_back(r.device_id);
      records_.emplace(r.device_id, r);
    }
  }
  Result<DeviceRecord> Lookup(std::string_view id) override {
    auto it = records_.find(std::string(id));
    if (it == records_.end()) {
      return Error(Code::kNotFound, "no such device");
    }
    return it->second;
  }
  Result<std::vector<std::string>> Refresh() override { return std::vector<std::string>(); }
  const std::vector<std::string>& ids() const { return ids_; }

 private:
  std::map<std::string, DeviceRecord> records_;
  std::vector<std::string> ids_;
};

void BM_CacheHit(benchmark::State& state) {
  static MemoryDirectory dir(100000);
  static std::map<int64_t, std::unique_ptr<server::RecordCache>> caches;
  static std::map<int64_t, double> bytes_per_entry;
  static std::mutex mu;
  server::RecordCache* cache = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto& c = caches[state.range(0)];
    if (!c) {
      server::RecordCache::Options o;
      o.shards = static_cast<size_t>(state.range(0));
      const double before = ProcStatusMiB("VmRSS");
      c = std::make_unique<server::RecordCache>(&dir, o);
      for (const std::string& id : dir.ids()) {
        CheckFound(c->Lookup(id));
      }
      bytes_per_entry[state.range(0)] =
          (ProcStatusMiB("VmRSS") - before) * 1024 * 1024 / static_cast<double>(dir.ids().size());
    }
    cache = c.get();
  }
  state.counters["bytes_per_entry"] =
      benchmark::Counter(bytes_per_entry[state.range(0)], benchmark::Counter::kAvgThreads);
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(state.thread_index() + 1);
  for (auto _ : state) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    auto r = cache->Lookup(dir.ids()[(x >> 33) % dir.ids().size()]);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheHit)
    ->ArgName("shards")
    ->Arg(1)
    ->Arg(16)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kNanosecond);

// ---------------------------------------------------------------------------------------------
// Building blocks, over the imported registry.

// BM_Ed25519Verify is the crypto floor of a cold lookup.
void BM_Ed25519Verify(benchmark::State& state) {
  auto key = Must(PrivateKey::Generate(KeyType::kEd25519), "key");
  std::string msg(400, 'x');
  auto sig = Must(key.Sign(AsBytes(msg)), "sign");
  for (auto _ : state) {
    auto s = key.Public().Verify(AsBytes(msg), sig);
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

// BM_DirectoryLookupUnknown: a device nobody registered, straight from the directory (an index
// probe and a SQLite read that finds no row; no signature).
void BM_DirectoryLookupUnknown(benchmark::State& state) {
  ServingDirectory& dir = *ServerFor(0).directory;
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
BENCHMARK(BM_DirectoryLookupUnknown)->Unit(benchmark::kMicrosecond);

// BM_RefreshIdle measures a refresh that finds nothing new: what the server pays every poll.
void BM_RefreshIdle(benchmark::State& state) {
  ServingDirectory& dir = *ServerFor(0).directory;
  for (auto _ : state) {
    auto r = dir.Refresh();
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_RefreshIdle)->Unit(benchmark::kMicrosecond);

// BM_VerifyRegistry is `hallmark registry verify`: two signature checks per device plus the
// log replay.
void BM_VerifyRegistry(benchmark::State& state) {
  Workspace& w = Shared();
  auto reg = Must(Registry::Open(w.Db(), &SystemClock()), "open");
  for (auto _ : state) {
    auto report = reg.Verify(w.registrar->Public());
    if (!report || !report->clean()) {
      std::fprintf(stderr, "verify failed\n");
      std::abort();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(w.ids.size()) * state.iterations());
}
BENCHMARK(BM_VerifyRegistry)->Iterations(1)->Unit(benchmark::kSecond);

// RegisterLookups adds the lookup benchmarks for a registry of `size` devices (0: the imported
// one).
void RegisterLookups(int64_t size) {
  const std::string suffix =
      "/devices:" + (size == 0 ? std::string("imported") : std::to_string(size));
  const int64_t devices = size == 0 ? EnvInt("HALLMARK_BENCH_DEVICES", 20000) : size;
  benchmark::RegisterBenchmark(("BM_LookupCold" + suffix).c_str(), BM_LookupCold, size)
      ->Iterations(SampleSize(devices))
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(("BM_LookupWarm" + suffix).c_str(), BM_LookupWarm, size)
      ->Threads(1)
      ->Threads(2)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(("BM_LookupWarmUnderFlood" + suffix).c_str(),
                               BM_LookupWarmUnderFlood, size)
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  benchmark::RegisterBenchmark("BM_ImportManifest", BM_ImportManifest)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kSecond);
  RegisterLookups(0);
  if (const char* sizes = std::getenv("HALLMARK_BENCH_LOOKUP_SIZES"); sizes != nullptr) {
    std::string list(sizes);
    for (size_t pos = 0; pos < list.size();) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) {
        comma = list.size();
      }
      if (int64_t n = std::atoll(list.substr(pos, comma - pos).c_str()); n > 0) {
        RegisterLookups(n);
      }
      pos = comma + 1;
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // The directories hold SQLite connections into the workspace: close them before it goes.
  Servers().clear();
  return 0;
}
