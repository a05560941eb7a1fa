// Metrics: counters and a latency histogram, rendered in the Prometheus text format.
#ifndef HALLMARK_SERVER_METRICS_H_
#define HALLMARK_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
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

// Metrics is lock-free and thread-safe.
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
  void HandshakeResumed() { Inc(resumed_); }
  uint64_t resumed() const { return resumed_.load(); }

  uint64_t handshakes() const { return ok_ca_.load() + ok_registry_.load(); }
  uint64_t failures(HandshakeFailure f) const { return failures_[static_cast<size_t>(f)].load(); }

  // Render returns the Prometheus text exposition (version 0.0.4).
  std::string Render() const;

 private:
  static void Inc(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

  static constexpr std::array<double, 10> kBucketsSeconds = {0.0005, 0.001, 0.002, 0.005, 0.01,
                                                             0.025,  0.05,  0.1,   0.5,   1.0};

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_at_limit_{0};
  std::atomic<int64_t> active_{0};
  std::atomic<uint64_t> ok_ca_{0};
  std::atomic<uint64_t> ok_registry_{0};
  std::atomic<uint64_t> resumed_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(HandshakeFailure::kCount)> failures_{};
  std::array<std::atomic<uint64_t>, kBucketsSeconds.size()> latency_buckets_{};
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> latency_sum_ns_{0};
  std::atomic<uint64_t> requests_2xx_{0};
  std::atomic<uint64_t> requests_4xx_{0};
  std::atomic<uint64_t> requests_5xx_{0};
};

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_METRICS_H_
