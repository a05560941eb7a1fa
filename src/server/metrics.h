// Metrics: counters and a latency histogram, rendered in the Prometheus text format.
#ifndef HALLMARK_SERVER_METRICS_H_
#define HALLMARK_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace hallmark::server {

// HandshakeFailure names why a handshake did not produce an accepted device.
enum class HandshakeFailure {
  kPolicyRejected,       // the trust policy said no (unknown, revoked, wrong CA, ...)
  kNoClientCertificate,  // the client sent no certificate
  kTlsVersion,           // not TLS 1.3
  kTimeout,              // did not finish within the handshake timeout
  kProtocol,             // anything else: garbage, aborted connection
  kCount,
};
std::string_view HandshakeFailureName(HandshakeFailure failure);

// RecordCacheStats is a snapshot of the registry cache's counters.
struct RecordCacheStats {
  uint64_t entries = 0;           // cached records
  uint64_t negative_entries = 0;  // cached "no such device" answers
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;  // entries dropped to stay within a capacity (both caches)
};

// Metrics is thread-safe. The per-handshake counters are lock-free; the per-anchor CRL figures
// (set every few seconds at most) take a mutex.
class Metrics {
 public:
  void ConnectionAccepted() { Inc(accepted_); }
  void ConnectionRefusedAtLimit() { Inc(refused_at_limit_); }
  void ConnectionOpened() { active_.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() { active_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t active() const { return active_.load(std::memory_order_relaxed); }

  void HandshakeSucceeded(std::string_view policy, std::chrono::nanoseconds latency);
  void HandshakeFailed(HandshakeFailure failure) { Inc(failures_[static_cast<size_t>(failure)]); }
  void Request(int status);
  // HandshakeResumed counts a handshake that resumed a session (the policy decided on the
  // certificate of the session). Call it in addition to HandshakeSucceeded.
  void HandshakeResumed() { Inc(resumed_); }
  uint64_t resumed() const { return resumed_.load(); }

  // ChainCacheLookup counts a `ca` policy decision that reused (`hit`) or had to make the
  // chain's signature verification.
  void ChainCacheLookup(bool hit) { Inc(hit ? chain_cache_hits_ : chain_cache_misses_); }

  // RegistryRefreshed records a successful registry refresh at `unix_seconds`;
  // RegistryRefreshFailed a failed one. SetRecordCacheStats publishes the cache's counters.
  void RegistryRefreshed(int64_t unix_seconds);
  void RegistryRefreshFailed() { Inc(registry_refresh_failures_); }
  void SetRecordCacheStats(const RecordCacheStats& stats);

  // CrlLoaded records that the CRL of `anchor` (its subject) was loaded or reloaded and is valid
  // until `next_update` (seconds since the epoch); CrlRefused that a new CRL file for it was
  // refused (the previous one stays in force).
  void CrlLoaded(std::string_view anchor, int64_t next_update);
  void CrlRefused(std::string_view anchor);

  uint64_t handshakes() const { return ok_ca_.load() + ok_registry_.load(); }
  uint64_t failures(HandshakeFailure f) const { return failures_[static_cast<size_t>(f)].load(); }
  uint64_t chain_cache_hits() const { return chain_cache_hits_.load(); }
  uint64_t chain_cache_misses() const { return chain_cache_misses_.load(); }
  uint64_t registry_refresh_failures() const { return registry_refresh_failures_.load(); }
  int64_t registry_last_refresh() const { return registry_last_refresh_.load(); }

  // Render returns the Prometheus text exposition (version 0.0.4).
  std::string Render() const;

 private:
  static void Inc(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
  void RenderCrls(std::string* out) const;

  struct CrlFigures {
    uint64_t loaded = 0;
    uint64_t refused = 0;
    int64_t next_update = 0;
  };

  static constexpr std::array<double, 10> kBucketsSeconds = {0.0005, 0.001, 0.002, 0.005, 0.01,
                                                             0.025,  0.05,  0.1,   0.5,   1.0};

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_at_limit_{0};
  std::atomic<int64_t> active_{0};
  std::atomic<uint64_t> ok_ca_{0};
  std::atomic<uint64_t> ok_registry_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(HandshakeFailure::kCount)> failures_{};
  std::array<std::atomic<uint64_t>, kBucketsSeconds.size()> latency_buckets_{};
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> latency_sum_ns_{0};
  std::atomic<uint64_t> requests_2xx_{0};
  std::atomic<uint64_t> requests_4xx_{0};
  std::atomic<uint64_t> requests_5xx_{0};
  std::atomic<uint64_t> resumed_{0};
  std::atomic<uint64_t> chain_cache_hits_{0};
  std::atomic<uint64_t> chain_cache_misses_{0};
  std::atomic<uint64_t> registry_refreshes_{0};
  std::atomic<uint64_t> registry_refresh_failures_{0};
  std::atomic<int64_t> registry_last_refresh_{0};
  std::atomic<uint64_t> cache_entries_{0};
  std::atomic<uint64_t> cache_negative_entries_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> cache_misses_{0};
  std::atomic<uint64_t> cache_evictions_{0};

  mutable std::mutex crl_mu_;
  std::map<std::string, CrlFigures, std::less<>> crls_;  // by anchor subject
};

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_METRICS_H_
