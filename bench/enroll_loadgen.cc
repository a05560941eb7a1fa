// hallmark_enroll_loadgen: load for enrollment in the field (docs/enrollment.md), driven by
// scripts/bench-enroll.sh. Not a test.
//
//   crypto  times, on this core, the public-key operations a claim and an EST enrollment cannot
//           avoid (and those hallmark's implementation adds), and a 4 KiB write + fdatasync;
//           prints the crypto limits (see CryptoReport for exactly what is counted)
//   claim   devices with distinct keys and serials claim through a batch (POST /v1/claim) over
//           mutual TLS 1.3, with the device code itself (device::Claim: a self-signed
//           certificate over the device key, the proof bound to the connection's exporter)
//   est     claimed devices ask for an operational certificate (device::EstEnroll,
//           simpleenroll), each presenting a self-signed certificate over its registered key
//   cfssl   the same CSRs to `cfssl serve`'s POST /api/v1/cfssl/sign, over plain HTTP/1.1 with
//           keep-alive (cfssl serve authenticates no client)
//
// The load modes run --concurrency threads, each making one blocking request at a time. After
// --warmup seconds they measure a window of --duration seconds: the requests that end inside it
// (successes, failures, latency from connect to the end of the response) and the CPU time of
// every --server-pid over the window (utime+stime of all its threads, /proc/PID/stat), divided
// by the successes. Each device claims and enrolls once: a run whose devices are used up ends
// its window early (reported as `ended_early`). Prints one JSON object on stdout and a summary on
// stderr. The target must be in 127.0.0.0/8.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/certificate.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/file.h"
#include "core/key.h"
#include "core/ossl.h"
#include "device/enroll_client.h"
#include "device/tls_client.h"
#include "proc_usage.h"

namespace hallmark::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

constexpr size_t kMaxDataFile = size_t{1} << 30;  // keys and CSRs of many devices
constexpr size_t kMaxFailureReasons = 16;         // distinct reasons kept per worker

// --- The server process, seen through /proc -----------------------------------------------

// ServerCpuSeconds sums the CPU time of `pids`; nullopt if there are none or one is gone.
std::optional<double> ServerCpuSeconds(const std::vector<int>& pids) {
  auto ticks = SumOver(pids, CpuTicks);
  if (!ticks) {
    return std::nullopt;
  }
  return TicksToSeconds(*ticks);
}

// RunQueueSeconds sums how long the threads of `pids` waited for a CPU while runnable.
std::optional<double> RunQueueSeconds(const std::vector<int>& pids) {
  auto ns = SumOver(pids, RunQueueNs);
  if (!ns) {
    return std::nullopt;
  }
  return static_cast<double>(*ns) / 1e9;
}

double ClientCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// --- The load: threads, a warm-up and a measured window ------------------------------------

struct LoadOptions {
  size_t concurrency = 32;
  double warmup_s = 1;
  double duration_s = 10;
  // After the window, keep going (unreported) until `extra_factor` times as many requests
  // succeeded in all as by the window's end, for at most `extra_s` seconds: the claim run
  // provisions enough devices for the EST run this way.
  double extra_factor = 0;
  double extra_s = 60;
  std::vector<int> server_pids;
  std::string label;
};

// Outcome of one request; `failure` names the reason when it did not succeed.
struct Outcome {
  bool ok = false;
  std::string failure;
};

// Operation makes request `item` on behalf of worker thread `worker`.
using Operation = std::function<Outcome(size_t worker, size_t item)>;

struct WorkerStats {
  uint64_t ok = 0;
  uint64_t failed = 0;
  std::map<std::string, uint64_t> failures;
  std::vector<uint32_t> latency_us;
};

// LoadRun drives one measurement. Items are taken in order; with `cycle` they start again when
// used up, else the workers stop.
class LoadRun {
 public:
  LoadRun(const LoadOptions& o, size_t items, bool cycle, Operation op)
      : o_(o), items_(items), cycle_(cycle), op_(std::move(op)), stats_(o.concurrency) {}

  Json Run();
  size_t used() const { return std::min(next_.load(), items_); }

 private:
  enum Phase : int { kWarmup, kMeasure, kExtra, kStop };

  void Worker(size_t w);
  // Wait returns after `seconds`, or earlier once every worker has stopped.
  void Wait(double seconds);

  const LoadOptions& o_;
  const size_t items_;
  const bool cycle_;
  const Operation op_;
  std::vector<WorkerStats> stats_;
  std::atomic<size_t> next_{0};
  std::atomic<int> phase_{kWarmup};
  std::atomic<uint64_t> total_ok_{0};
  std::atomic<uint64_t> min_ok_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  size_t active_ = 0;
};

void LoadRun::Worker(size_t w) {
  WorkerStats& s = stats_[w];
  for (;;) {
    const int phase = phase_.load();
    if (phase == kStop || (phase == kExtra && total_ok_.load() >= min_ok_.load())) {
      break;
    }
    size_t item = next_.fetch_add(1);
    if (item >= items_) {
      if (!cycle_ || items_ == 0) {
        break;
      }
      item %= items_;
    }
    const auto start = Clock::now();
    Outcome out = op_(w, item);
    const auto end = Clock::now();
    if (out.ok) {
      ++total_ok_;
    }
    if (phase_.load() != kMeasure) {
      continue;
    }
    if (out.ok) {
      ++s.ok;
      s.latency_us.push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
    } else {
      ++s.failed;
      if (s.failures.size() < kMaxFailureReasons || s.failures.count(out.failure) > 0) {
        ++s.failures[out.failure];
      } else {
        ++s.failures["(other reasons)"];
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  --active_;
  cv_.notify_all();
}

void LoadRun::Wait(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return active_ == 0; });
}

Json LoadRun::Run() {
  std::vector<std::thread> threads;
  active_ = o_.concurrency;
  for (size_t w = 0; w < o_.concurrency; ++w) {
    threads.emplace_back([this, w] { Worker(w); });
  }
  Wait(o_.warmup_s);
  const std::optional<double> cpu0 = ServerCpuSeconds(o_.server_pids);
  const std::optional<double> queue0 = RunQueueSeconds(o_.server_pids);
  const double client0 = ClientCpuSeconds();
  const auto t0 = Clock::now();
  phase_ = kMeasure;
  Wait(o_.duration_s);
  const std::optional<double> cpu1 = ServerCpuSeconds(o_.server_pids);
  const std::optional<double> queue1 = RunQueueSeconds(o_.server_pids);
  const double client1 = ClientCpuSeconds();
  const auto t1 = Clock::now();
  min_ok_ = static_cast<uint64_t>(std::ceil(o_.extra_factor * static_cast<double>(total_ok_)));
  phase_ = min_ok_.load() > total_ok_.load() ? kExtra : kStop;
  if (phase_ == kExtra) {
    Wait(o_.extra_s);
    phase_ = kStop;
  }
  for (std::thread& t : threads) {
    t.join();
  }

  WorkerStats all;
  for (WorkerStats& s : stats_) {
    all.ok += s.ok;
    all.failed += s.failed;
    for (const auto& [reason, n] : s.failures) {
      all.failures[reason] += n;
    }
    all.latency_us.insert(all.latency_us.end(), s.latency_us.begin(), s.latency_us.end());
  }
  std::sort(all.latency_us.begin(), all.latency_us.end());
  const double window = std::chrono::duration<double>(t1 - t0).count();
  Json j;
  j["label"] = o_.label;
  j["concurrency"] = o_.concurrency;
  j["window_s"] = window;
  j["ended_early"] = window + 0.05 < o_.duration_s;
  j["completed"] = all.ok;
  j["failed"] = all.failed;
  j["rate_per_s"] = window > 0 ? static_cast<double>(all.ok) / window : 0.0;
  j["latency_us_p50"] = Percentile(all.latency_us, 0.50);
  j["latency_us_p90"] = Percentile(all.latency_us, 0.90);
  j["latency_us_p99"] = Percentile(all.latency_us, 0.99);
  j["latency_us_max"] = all.latency_us.empty() ? 0 : all.latency_us.back();
  j["client_cpu_s"] = client1 - client0;
  if (cpu0 && cpu1) {
    const double cpu = *cpu1 - *cpu0;
    j["server_cpu_s"] = cpu;
    j["server_cpu_util"] = window > 0 ? cpu / window : 0.0;
    j["server_cpu_us_per_op"] = all.ok > 0 ? cpu * 1e6 / static_cast<double>(all.ok) : 0.0;
    if (queue0 && queue1) {
      j["server_runqueue_s"] = *queue1 - *queue0;
      j["server_runqueue_us_per_op"] =
          all.ok > 0 ? (*queue1 - *queue0) * 1e6 / static_cast<double>(all.ok) : 0.0;
    }
  } else if (!o_.server_pids.empty()) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: cannot read /proc of --server-pid\n");
  }
  j["items"] = items_;
  j["items_used"] = used();
  j["total_ok"] = total_ok_.load();
  j["failure_reasons"] = all.failures;
  return j;
}

void PrintSummary(const Json& j) {
  auto num = [&j](const char* key) { return j.value(key, 0.0); };
  std::fprintf(stderr, "hallmark_enroll_loadgen %s: %.1f s window, concurrency %zu%s\n",
               j["label"].get<std::string>().c_str(), num("window_s"),
               j["concurrency"].get<size_t>(),
               j["ended_early"].get<bool>() ? " (items used up: ended early)" : "");
  std::fprintf(stderr, "  completed %.0f (%.1f/s), failed %.0f\n", num("completed"),
               num("rate_per_s"), num("failed"));
  std::fprintf(stderr, "  latency (us): p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n",
               num("latency_us_p50"), num("latency_us_p90"), num("latency_us_p99"),
               num("latency_us_max"));
  if (j.contains("server_cpu_us_per_op")) {
    std::fprintf(stderr,
                 "  server CPU %.2f s (%.0f%% of one core): %.0f us per success; waited %.2f s "
                 "for a core\n",
                 num("server_cpu_s"), 100 * num("server_cpu_util"), num("server_cpu_us_per_op"),
                 num("server_runqueue_s"));
  }
  std::fprintf(stderr, "  load generator CPU %.2f s\n", num("client_cpu_s"));
  for (const auto& [reason, count] : j["failure_reasons"].items()) {
    std::fprintf(stderr, "  failure x%llu: %s\n",
                 static_cast<unsigned long long>(count.get<uint64_t>()), reason.c_str());
  }
}

// --- Targets and files ---------------------------------------------------------------------

Result<sockaddr_in> ParseLoopbackTarget(const std::string& connect) {
  const size_t colon = connect.rfind(':');
  const unsigned long port =
      colon == std::string::npos ? 0 : std::strtoul(connect.c_str() + colon + 1, nullptr, 10);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (port == 0 || port > 65535 ||
      ::inet_pton(AF_INET, connect.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return Error(Code::kInvalidArgument, "--connect wants IPV4:PORT, got " + connect);
  }
  // This tool generates load: it only ever targets this machine.
  if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    return Error(Code::kInvalidArgument, connect + " is not a loopback address (127.0.0.0/8)");
  }
  return addr;
}

Result<device::ClientOptions> DeviceClient(const std::string& connect, const std::string& trust,
                                           double timeout_s) {
  auto addr = ParseLoopbackTarget(connect);
  if (!addr) {
    return addr.error();
  }
  device::ClientOptions c;
  const size_t colon = connect.rfind(':');
  c.host = connect.substr(0, colon);
  c.port = ntohs(addr->sin_port);
  c.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  auto certs = Certificate::ChainFromFile(trust);
  if (!certs) {
    return certs.error();
  }
  c.trust = std::move(*certs);
  return c;
}

// PemBlocks splits `text` into its PEM blocks of `type` ("PRIVATE KEY", ...).
std::vector<std::string> PemBlocks(const std::string& text, const std::string& type) {
  const std::string begin = "-----BEGIN " + type + "-----";
  const std::string end = "-----END " + type + "-----";
  std::vector<std::string> out;
  for (size_t pos = text.find(begin); pos != std::string::npos; pos = text.find(begin, pos)) {
    const size_t stop = text.find(end, pos);
    if (stop == std::string::npos) {
      break;
    }
    out.push_back(text.substr(pos, stop + end.size() - pos) + "\n");
    pos = stop + end.size();
  }
  return out;
}

Status WriteText(const std::string& path, const std::string& text) {
  return WriteFileAtomic(path, text, 0600);
}

// Reason shortens a failure for the report: HTTP refusals by status and reason, other errors
// by message (device IDs and serials would make every reason distinct, so they are cut).
std::string Reason(const std::string& what, const std::string& message) {
  std::string s = what + ": " + message;
  for (const char* cut : {" (device ", " device ", "serial '"}) {
    if (size_t p = s.find(cut); p != std::string::npos) {
      s.resize(p);
    }
  }
  return s.substr(0, 160);
}

std::string RefusalReason(int status, const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string reason = j.is_object() && j.contains("error") && j["error"].is_string()
                           ? j["error"].get<std::string>()
                           : body.substr(0, 100);
  return Reason("HTTP " + std::to_string(status), reason);
}

std::string ErrorReason(const Error& e) {
  return Reason(std::string(CodeName(e.code())), e.message());
}

// Measure runs `run` and returns its report, headed by `mode`.
Json Measure(std::string_view mode, LoadRun& run) {
  Json j = {{"mode", mode}};
  j.update(run.Run());
  return j;
}

// Finish prints the report (JSON on stdout, summary on stderr); exit status 1 if nothing
// succeeded.
int Finish(const Json& j) {
  std::printf("%s\n", j.dump().c_str());
  PrintSummary(j);
  return j["completed"].get<uint64_t>() > 0 ? 0 : 1;
}

// --- claim ---------------------------------------------------------------------------------

struct ClaimOptions {
  std::string connect;
  std::string trust;
  double timeout_s = 10;
  std::string batch;
  std::string secret_file;
  std::string serial_prefix = "BENCH-";
  size_t devices = 20000;
  std::string keys_out;
};

int RunClaim(const ClaimOptions& c, const LoadOptions& lo) {
  auto client = DeviceClient(c.connect, c.trust, c.timeout_s);
  if (!client) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", client.error().ToString().c_str());
    return 2;
  }
  auto text = ReadSecretFile(c.secret_file);
  auto secret = text ? device::ParseBatchSecret(text->view(SecretAccess::Grant()))
                     : Result<SecretBytes>(text.error());
  if (!secret) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: %s: %s\n", c.secret_file.c_str(),
                 secret.error().ToString().c_str());
    return 2;
  }
  // Keys first, outside the measurement: a device has its key long before it claims.
  const auto gen_start = Clock::now();
  std::vector<PrivateKey> keys;
  std::vector<std::string> serials;
  keys.reserve(c.devices);
  for (size_t i = 0; i < c.devices; ++i) {
    auto key = PrivateKey::Generate(KeyType::kP256);
    if (!key) {
      std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", key.error().ToString().c_str());
      return 1;
    }
    keys.push_back(std::move(*key));
    char serial[32];
    std::snprintf(serial, sizeof(serial), "%06zu", i + 1);
    serials.push_back(c.serial_prefix + serial);
  }
  std::fprintf(stderr, "hallmark_enroll_loadgen: %zu device keys in %.1f s\n", c.devices,
               std::chrono::duration<double>(Clock::now() - gen_start).count());

  std::vector<char> claimed(c.devices, 0);
  LoadRun run(lo, c.devices, /*cycle=*/false, [&](size_t, size_t i) -> Outcome {
    auto reply = device::Claim(keys[i], *client, device::BatchClaim{c.batch, serials[i], &*secret},
                               SystemClock());
    if (!reply) {
      return {false, ErrorReason(reply.error())};
    }
    if (reply->status != 201) {
      return {false, RefusalReason(reply->status, reply->body)};
    }
    claimed[i] = 1;
    return {true, ""};
  });
  Json j = Measure("claim", run);
  if (!c.keys_out.empty()) {
    std::string out;
    size_t n = 0;
    for (size_t i = 0; i < c.devices; ++i) {
      if (claimed[i] == 0) {
        continue;
      }
      auto pem = keys[i].ToPem(SecretAccess::Grant());
      if (!pem) {
        continue;
      }
      out += Json{{"serial", serials[i]}, {"key", std::string(pem->view(SecretAccess::Grant()))}}
                 .dump() +
             "\n";
      ++n;
    }
    if (auto s = WriteText(c.keys_out, out); !s) {
      std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", s.error().ToString().c_str());
      return 1;
    }
    j["claimed_devices_written"] = n;
  }
  return Finish(j);
}

// --- est -----------------------------------------------------------------------------------

struct EstOptions {
  std::string connect;
  std::string trust;
  double timeout_s = 10;
  std::string keys;
  std::string csr_out;
};

struct EnrollingDevice {
  PrivateKey key;
  std::vector<Certificate> chain;  // self-signed over the key: the registry policy's container
  Csr csr;
};

int RunEst(const EstOptions& e, const LoadOptions& lo) {
  auto client = DeviceClient(e.connect, e.trust, e.timeout_s);
  auto text = client ? ReadFile(e.keys, kMaxDataFile) : Result<std::string>(client.error());
  if (!text) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", text.error().ToString().c_str());
    return 2;
  }
  // Certificates and requests first, outside the measurement, as a device makes its CSR
  // before it connects.
  std::vector<EnrollingDevice> devices;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) {
      continue;
    }
    const std::string serial = j.value("serial", "");
    auto key = PrivateKey::FromPem(j.value("key", ""));
    if (!key) {
      std::fprintf(stderr, "hallmark_enroll_loadgen: %s: %s\n", e.keys.c_str(),
                   key.error().ToString().c_str());
      return 2;
    }
    auto self = device::SelfSignedCertificate(*key, SystemClock());
    auto csr = self ? Csr::Create(*key, DistinguishedName{"", "", "", serial, serial})
                    : Result<Csr>(self.error());
    if (!csr) {
      std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", csr.error().ToString().c_str());
      return 1;
    }
    devices.push_back(EnrollingDevice{std::move(*key), {*self}, std::move(*csr)});
  }
  if (devices.empty()) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: no device keys in %s\n", e.keys.c_str());
    return 2;
  }
  if (!e.csr_out.empty()) {
    std::string pems;
    for (const EnrollingDevice& d : devices) {
      pems += d.csr.ToPem();
    }
    if (auto s = WriteText(e.csr_out, pems); !s) {
      std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", s.error().ToString().c_str());
      return 1;
    }
  }
  LoadRun run(lo, devices.size(), /*cycle=*/false, [&](size_t, size_t i) -> Outcome {
    const EnrollingDevice& d = devices[i];
    auto cert = device::EstEnroll(d.key, d.chain, *client, d.csr, /*reenroll=*/false);
    if (!cert) {
      return {false, ErrorReason(cert.error())};
    }
    return {true, ""};
  });
  Json j = Measure("est", run);
  return Finish(j);
}

// --- cfssl ---------------------------------------------------------------------------------

// HttpConnection is one keep-alive HTTP/1.1 connection over plain TCP. Not thread-safe.
class HttpConnection {
 public:
  HttpConnection(sockaddr_in target, double timeout_s) : target_(target), timeout_s_(timeout_s) {}
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection() { Close(); }

  // Exchange sends `request` (a whole HTTP/1.1 request) and returns the status and body of the
  // response, connecting first if needed. On any error the connection is closed.
  Result<std::pair<int, std::string>> Exchange(const std::string& request);

 private:
  Status Connect();
  Status ReadMore();
  void Close() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = -1;
    in_.clear();
  }
  Result<std::pair<int, std::string>> ReadResponse();

  const sockaddr_in target_;
  const double timeout_s_;
  int fd_ = -1;
  std::string in_;
};

Status HttpConnection::Connect() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    return Error(Code::kUnavailable, std::string("socket: ") + std::strerror(errno));
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_s_);
  tv.tv_usec = static_cast<suseconds_t>((timeout_s_ - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&target_), sizeof(target_)) != 0) {
    std::string why = std::strerror(errno);
    Close();
    return Error(Code::kUnavailable, "connect: " + why);
  }
  return OkStatus();
}

Status HttpConnection::ReadMore() {
  char buf[16384];
  const ssize_t n = ::read(fd_, buf, sizeof(buf));
  if (n > 0) {
    in_.append(buf, static_cast<size_t>(n));
    return OkStatus();
  }
  return Error(Code::kUnavailable, n == 0 ? std::string("the server closed the connection")
                                          : std::string("read: ") + std::strerror(errno));
}

Result<std::pair<int, std::string>> HttpConnection::ReadResponse() {
  size_t head_end;
  while ((head_end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (auto s = ReadMore(); !s) {
      return s.error();
    }
  }
  std::string head = in_.substr(0, head_end + 2);
  if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) {
    return Error(Code::kUnavailable, "malformed HTTP response");
  }
  const int status = std::atoi(head.c_str() + 9);
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  const bool close = head.find("\r\nconnection: close\r\n") != std::string::npos;
  std::string body;
  size_t pos = head_end + 4;
  if (head.find("\r\ntransfer-encoding: chunked\r\n") != std::string::npos) {
    for (;;) {
      size_t eol;
      while ((eol = in_.find("\r\n", pos)) == std::string::npos) {
        if (auto s = ReadMore(); !s) {
          return s.error();
        }
      }
      const size_t size = std::strtoul(in_.c_str() + pos, nullptr, 16);
      while (in_.size() < eol + 2 + size + 2) {
        if (auto s = ReadMore(); !s) {
          return s.error();
        }
      }
      body.append(in_, eol + 2, size);
      pos = eol + 2 + size + 2;
      if (size == 0) {
        break;  // no trailers from cfssl
      }
    }
  } else {
    const size_t cl = head.find("\r\ncontent-length:");
    if (cl == std::string::npos) {
      return Error(Code::kUnavailable, "HTTP response without Content-Length");
    }
    const size_t length = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    while (in_.size() < pos + length) {
      if (auto s = ReadMore(); !s) {
        return s.error();
      }
    }
    body = in_.substr(pos, length);
    pos += length;
  }
  in_.erase(0, pos);
  if (close) {
    Close();
  }
  return std::make_pair(status, std::move(body));
}

Result<std::pair<int, std::string>> HttpConnection::Exchange(const std::string& request) {
  if (fd_ < 0) {
    if (auto s = Connect(); !s) {
      return s.error();
    }
  }
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      std::string why = std::strerror(errno);
      Close();
      return Error(Code::kUnavailable, "send: " + why);
    }
    sent += static_cast<size_t>(n);
  }
  auto response = ReadResponse();
  if (!response) {
    Close();
  }
  return response;
}

struct CfsslOptions {
  std::string connect;
  std::string csrs;
  std::string profile;
  double timeout_s = 10;
};

int RunCfssl(const CfsslOptions& c, const LoadOptions& lo) {
  auto target = ParseLoopbackTarget(c.connect);
  auto text = target ? ReadFile(c.csrs, kMaxDataFile) : Result<std::string>(target.error());
  if (!text) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", text.error().ToString().c_str());
    return 2;
  }
  std::vector<std::string> requests;
  std::vector<PublicKey> keys;
  for (const std::string& pem : PemBlocks(*text, "CERTIFICATE REQUEST")) {
    auto csr = Csr::FromPem(pem);
    if (!csr) {
      std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", csr.error().ToString().c_str());
      return 2;
    }
    Json body = {{"certificate_request", pem}};
    if (!c.profile.empty()) {
      body["profile"] = c.profile;
    }
    const std::string b = body.dump();
    requests.push_back("POST /api/v1/cfssl/sign HTTP/1.1\r\nHost: " + c.connect +
                       "\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(b.size()) + "\r\n\r\n" + b);
    keys.push_back(csr->Key());
  }
  if (requests.empty()) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: no CSRs in %s\n", c.csrs.c_str());
    return 2;
  }
  std::vector<std::unique_ptr<HttpConnection>> conns;
  for (size_t w = 0; w < lo.concurrency; ++w) {
    conns.push_back(std::make_unique<HttpConnection>(*target, c.timeout_s));
  }
  // cfssl signs a CSR again happily: the requests go round when they are used up.
  LoadRun run(lo, requests.size(), /*cycle=*/true, [&](size_t w, size_t i) -> Outcome {
    auto response = conns[w]->Exchange(requests[i]);
    if (!response) {
      return {false, ErrorReason(response.error())};
    }
    auto j = nlohmann::json::parse(response->second, nullptr, false);
    if (response->first != 200 || !j.is_object() || !j.value("success", false)) {
      return {false,
              Reason("HTTP " + std::to_string(response->first), response->second.substr(0, 100))};
    }
    // Like device::EstEnroll: the answer must hold a certificate for the request's key.
    const auto& result = j["result"];
    auto cert = result.is_object() && result.contains("certificate")
                    ? Certificate::FromPem(result["certificate"].get<std::string>())
                    : Result<Certificate>(Error(Code::kUnavailable, "no certificate"));
    if (!cert || !(cert->Key() == keys[i])) {
      return {false, "the response holds no certificate for the request's key"};
    }
    return {true, ""};
  });
  Json j = Measure("cfssl", run);
  return Finish(j);
}

// --- crypto --------------------------------------------------------------------------------

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// TimeOp returns the CPU time of one call of `op`, in microseconds: the median of three rounds
// of at least `seconds` / 3 each.
double TimeOp(const std::function<bool()>& op, double seconds) {
  std::vector<double> rounds;
  for (int r = 0; r < 3; ++r) {
    const double start = ThreadCpuSeconds();
    uint64_t n = 0;
    double now = start;
    do {
      for (int i = 0; i < 16; ++i) {
        if (!op()) {
          std::fprintf(stderr, "hallmark_enroll_loadgen: a timed operation failed: %s\n",
                       DrainOsslErrors().c_str());
          std::exit(1);
        }
      }
      n += 16;
      now = ThreadCpuSeconds();
    } while (now - start < seconds / 3);
    rounds.push_back((now - start) * 1e6 / static_cast<double>(n));
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[1];
}

OsslPtr<EVP_PKEY> X25519Key(EVP_PKEY_CTX* keygen) {
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(keygen, &raw) != 1) {
    return nullptr;
  }
  return OsslPtr<EVP_PKEY>(raw);
}

// X25519Derive is the server's half of the TLS 1.3 key exchange after its key share exists.
bool X25519Derive(EVP_PKEY* own, EVP_PKEY* peer) {
  OsslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  uint8_t secret[32];
  size_t len = sizeof(secret);
  return ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
         EVP_PKEY_derive_set_peer(ctx.get(), peer) == 1 &&
         EVP_PKEY_derive(ctx.get(), secret, &len) == 1;
}

// TimeFsync times a 4 KiB write and fdatasync in `dir` (wall time, microseconds). The blocks are
// allocated and synced first and then overwritten in turn, as SQLite reuses its write-ahead log:
// a commit in WAL mode with synchronous=FULL waits for about one of these.
Result<std::vector<uint32_t>> TimeFsync(const std::string& dir, int count) {
  constexpr size_t kBlock = 4096;
  constexpr int kBlocks = 256;
  const std::string path = dir + "/fsync-probe.tmp";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Error(Code::kUnavailable, path + ": " + std::strerror(errno));
  }
  const std::vector<char> block(kBlock, 'x');
  auto write_block = [&](int i) {
    const auto offset = static_cast<off_t>(i % kBlocks) * static_cast<off_t>(kBlock);
    return ::pwrite(fd, block.data(), kBlock, offset) == static_cast<ssize_t>(kBlock);
  };
  bool ok = true;
  for (int i = 0; i < kBlocks && ok; ++i) {
    ok = write_block(i);
  }
  ok = ok && ::fsync(fd) == 0;
  std::vector<uint32_t> us;
  for (int i = 0; i < count && ok; ++i) {
    const auto start = Clock::now();
    ok = write_block(i) && ::fdatasync(fd) == 0;
    us.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
  }
  const std::string why = ok ? "" : std::strerror(errno);
  ::close(fd);
  ::unlink(path.c_str());
  if (!ok) {
    return Error(Code::kUnavailable, path + ": " + why);
  }
  std::sort(us.begin(), us.end());
  return us;
}

struct CryptoOptions {
  double seconds = 0.6;  // per operation
  std::string fsync_dir;
  int fsync_count = 200;
};

// CryptoReport: the public-key operations each request costs the server. "Protocol" is what the
// protocol cannot do without, "implemented" what the server does (calls into OpenSSL counted
// with breakpoints on one claim and one enrollment; docs/performance.md):
//   TLS 1.3 full handshake, server side: X25519 key generation + X25519 derivation (ECDHE), one
//     ECDSA P-256 signature (CertificateVerify), one ECDSA P-256 verification (the client's
//     CertificateVerify). Hashing, HKDF and AES-GCM are not counted.
//   claim, protocol:    TLS + Ed25519 verify (the proof) + Ed25519 sign (the device's record)
//   claim, implemented: + Ed25519 sign (the tree head) + 1 Ed25519 verify (the new tree head,
//                       when the claim refreshes the server's registry view); the newest head
//                       and the batch definition the transaction re-reads are verified once and
//                       remembered (core/signature_memo.h)
//   EST, protocol:      TLS + ECDSA verify (the CSR's signature) + ECDSA sign (the certificate)
//   EST, implemented:   + 1 Ed25519 verify (the device's registry record, when it enters the
//                       server's cache)
//   cfssl sign:         ECDSA verify (the CSR) + ECDSA sign (the certificate); no TLS
Json CryptoReport(const CryptoOptions& o) {
  auto p256 = PrivateKey::Generate(KeyType::kP256);
  auto ed = PrivateKey::Generate(KeyType::kEd25519);
  if (!p256 || !ed) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: key generation failed\n");
    std::exit(1);
  }
  const Bytes tbs(400, 0x5a);    // about a certificate's TBS, or a TLS 1.3 CertificateVerify
  const Bytes proof(220, 0x5a);  // about a claim proof's message or a registry record
  const Bytes p256_sig = *p256->Sign(tbs);
  const Bytes ed_sig = *ed->Sign(proof);
  OsslPtr<EVP_PKEY_CTX> keygen(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  if (!keygen || EVP_PKEY_keygen_init(keygen.get()) != 1) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: X25519 unavailable\n");
    std::exit(1);
  }
  OsslPtr<EVP_PKEY> own = X25519Key(keygen.get());
  OsslPtr<EVP_PKEY> peer = X25519Key(keygen.get());

  Json us;
  us["ecdsa_p256_sign"] = TimeOp([&] { return p256->Sign(tbs).has_value(); }, o.seconds);
  us["ecdsa_p256_verify"] =
      TimeOp([&] { return p256->Public().Verify(tbs, p256_sig).has_value(); }, o.seconds);
  us["ed25519_sign"] = TimeOp([&] { return ed->Sign(proof).has_value(); }, o.seconds);
  us["ed25519_verify"] =
      TimeOp([&] { return ed->Public().Verify(proof, ed_sig).has_value(); }, o.seconds);
  us["x25519_keygen"] = TimeOp([&] { return X25519Key(keygen.get()) != nullptr; }, o.seconds);
  us["x25519_derive"] = TimeOp([&] { return X25519Derive(own.get(), peer.get()); }, o.seconds);

  auto get = [&us](const char* name) { return us[name].get<double>(); };
  const double sign = get("ecdsa_p256_sign");
  const double verify = get("ecdsa_p256_verify");
  const double tls = get("x25519_keygen") + get("x25519_derive") + sign + verify;
  const double claim = tls + get("ed25519_verify") + get("ed25519_sign");
  const double claim_impl = claim + get("ed25519_sign") + get("ed25519_verify");
  const double est = tls + verify + sign;
  const double est_impl = est + get("ed25519_verify");
  const double cfssl = verify + sign;
  Json j;
  j["mode"] = "crypto";
  j["us"] = us;
  j["tls_server_us"] = tls;
  j["claim_us"] = claim;
  j["claim_implemented_us"] = claim_impl;
  j["est_us"] = est;
  j["est_implemented_us"] = est_impl;
  j["cfssl_us"] = cfssl;
  j["claim_limit_per_s"] = 1e6 / claim;
  j["est_limit_per_s"] = 1e6 / est;
  j["cfssl_limit_per_s"] = 1e6 / cfssl;
  if (!o.fsync_dir.empty()) {
    auto fsync = TimeFsync(o.fsync_dir, o.fsync_count);
    if (fsync) {
      j["fdatasync_4k_us_p50"] = Percentile(*fsync, 0.5);
      j["fdatasync_4k_us_p99"] = Percentile(*fsync, 0.99);
    } else {
      std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", fsync.error().ToString().c_str());
    }
  }
  return j;
}

int RunFsync(const CryptoOptions& o) {
  auto fsync = TimeFsync(o.fsync_dir, o.fsync_count);
  if (!fsync) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", fsync.error().ToString().c_str());
    return 1;
  }
  const Json j = {{"mode", "fsync"},
                  {"fdatasync_4k_us_p50", Percentile(*fsync, 0.5)},
                  {"fdatasync_4k_us_p99", Percentile(*fsync, 0.99)}};
  std::printf("%s\n", j.dump().c_str());
  std::fprintf(stderr,
               "hallmark_enroll_loadgen: 4 KiB write + fdatasync in %s: p50 %u us, p99 %u us\n",
               o.fsync_dir.c_str(), Percentile(*fsync, 0.5), Percentile(*fsync, 0.99));
  return 0;
}

int RunCrypto(const CryptoOptions& o) {
  const Json j = CryptoReport(o);
  std::printf("%s\n", j.dump().c_str());
  std::fprintf(stderr, "hallmark_enroll_loadgen crypto (CPU time per operation, this core):\n");
  for (const auto& [name, value] : j["us"].items()) {
    std::fprintf(stderr, "  %-20s %7.1f us\n", name.c_str(), value.get<double>());
  }
  std::fprintf(stderr,
               "  TLS 1.3 server handshake %.0f us; claim %.0f us (%.0f/s), as implemented %.0f "
               "us; EST %.0f us (%.0f/s), as implemented %.0f us; cfssl sign %.0f us (%.0f/s)\n",
               j["tls_server_us"].get<double>(), j["claim_us"].get<double>(),
               j["claim_limit_per_s"].get<double>(), j["claim_implemented_us"].get<double>(),
               j["est_us"].get<double>(), j["est_limit_per_s"].get<double>(),
               j["est_implemented_us"].get<double>(), j["cfssl_us"].get<double>(),
               j["cfssl_limit_per_s"].get<double>());
  if (j.contains("fdatasync_4k_us_p50")) {
    std::fprintf(stderr, "  4 KiB write + fdatasync: p50 %u us, p99 %u us\n",
                 j["fdatasync_4k_us_p50"].get<uint32_t>(),
                 j["fdatasync_4k_us_p99"].get<uint32_t>());
  }
  return 0;
}

// --- Command line --------------------------------------------------------------------------

void AddLoadOptions(CLI::App* cmd, LoadOptions* o) {
  cmd->add_option("--concurrency", o->concurrency, "Requests in flight (one thread each)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup_s, "Seconds of unreported load first")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  cmd->add_option("--duration", o->duration_s, "Seconds of the measured window")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--server-pid", o->server_pids,
                  "Server process(es) whose CPU time to report (repeatable)");
  cmd->add_option("--label", o->label, "Name of this run in the report");
}

void AddDeviceTarget(CLI::App* cmd, std::string* connect, std::string* trust, double* timeout) {
  cmd->add_option("--connect", *connect, "Server IPV4:PORT (127.0.0.0/8 only)")->required();
  cmd->add_option("--trust", *trust, "Pinned server CA (PEM)")->required();
  cmd->add_option("--timeout", *timeout, "Per-request limit, seconds")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
}

int ParseAndRun(int argc, char** argv) {
  CLI::App app{
      "Enrollment load generator: batch claims and EST enrollments against `hallmark serve`, "
      "signatures against `cfssl serve`, and the crypto limit. One JSON report on stdout, a "
      "summary on stderr."};
  app.require_subcommand(1);
  LoadOptions load;

  CryptoOptions crypto;
  CLI::App* crypto_cmd = app.add_subcommand("crypto", "Time the public-key operations");
  crypto_cmd->add_option("--seconds", crypto.seconds, "CPU seconds per operation")
      ->check(CLI::Range(0.03, 60.0))
      ->capture_default_str();
  crypto_cmd->add_option("--fsync-dir", crypto.fsync_dir, "Also time write + fdatasync here");

  CLI::App* fsync_cmd = app.add_subcommand("fsync", "Time 4 KiB write + fdatasync only");
  fsync_cmd->add_option("--dir", crypto.fsync_dir, "Directory to write in")->required();

  ClaimOptions claim;
  CLI::App* claim_cmd = app.add_subcommand("claim", "Batch claims (POST /v1/claim)");
  AddLoadOptions(claim_cmd, &load);
  AddDeviceTarget(claim_cmd, &claim.connect, &claim.trust, &claim.timeout_s);
  claim_cmd->add_option("--batch", claim.batch, "Batch ID")->required();
  claim_cmd->add_option("--secret-file", claim.secret_file, "The batch secret")->required();
  claim_cmd->add_option("--serial-prefix", claim.serial_prefix, "Serials are PREFIX000001...")
      ->capture_default_str();
  claim_cmd->add_option("--devices", claim.devices, "Device keys to generate (at most)")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  claim_cmd->add_option("--keys-out", claim.keys_out,
                        "Write the claimed devices (JSON lines: serial, PEM key) here");
  claim_cmd
      ->add_option("--extra-factor", load.extra_factor,
                   "After the window, keep claiming (unreported) until F times as many devices "
                   "are claimed as by its end (for the EST run)")
      ->check(CLI::Range(0.0, 100.0));
  claim_cmd->add_option("--max-extra", load.extra_s, "At most this many seconds for that")
      ->capture_default_str();

  EstOptions est;
  CLI::App* est_cmd = app.add_subcommand("est", "EST simpleenroll of claimed devices");
  AddLoadOptions(est_cmd, &load);
  AddDeviceTarget(est_cmd, &est.connect, &est.trust, &est.timeout_s);
  est_cmd->add_option("--keys", est.keys, "Devices (claim --keys-out)")->required();
  est_cmd->add_option("--csr-out", est.csr_out, "Write the devices' CSRs (PEM) here");

  CfsslOptions cfssl;
  CLI::App* cfssl_cmd = app.add_subcommand("cfssl", "cfssl serve: POST /api/v1/cfssl/sign");
  AddLoadOptions(cfssl_cmd, &load);
  cfssl_cmd->add_option("--connect", cfssl.connect, "cfssl IPV4:PORT (127.0.0.0/8 only)")
      ->required();
  cfssl_cmd->add_option("--csrs", cfssl.csrs, "PEM CSRs (est --csr-out)")->required();
  cfssl_cmd->add_option("--profile", cfssl.profile, "cfssl signing profile (default: default)");
  cfssl_cmd->add_option("--timeout", cfssl.timeout_s, "Per-request limit, seconds")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  if (crypto_cmd->parsed()) {
    return RunCrypto(crypto);
  }
  if (fsync_cmd->parsed()) {
    return RunFsync(crypto);
  }
  if (claim_cmd->parsed()) {
    return RunClaim(claim, load);
  }
  if (est_cmd->parsed()) {
    return RunEst(est, load);
  }
  return RunCfssl(cfssl, load);
}

}  // namespace
}  // namespace hallmark::bench

int main(int argc, char** argv) {
  try {
    return hallmark::bench::ParseAndRun(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hallmark_enroll_loadgen: %s\n", e.what());
    return 1;
  }
}
