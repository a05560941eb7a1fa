#include "server/metrics.h"

#include <fmt/format.h>

namespace hallmark::server {

std::string_view HandshakeFailureName(HandshakeFailure failure) {
  switch (failure) {
    case HandshakeFailure::kPolicyRejected:
      return "policy_rejected";
    case HandshakeFailure::kNoClientCertificate:
      return "no_client_certificate";
    case HandshakeFailure::kTlsVersion:
      return "tls_version";
    case HandshakeFailure::kTimeout:
      return "timeout";
    case HandshakeFailure::kProtocol:
      return "protocol_error";
    case HandshakeFailure::kCount:
      break;
  }
  return "unknown";
}

void Metrics::HandshakeSucceeded(std::string_view policy, std::chrono::nanoseconds latency) {
  Inc(policy == "ca" ? ok_ca_ : ok_registry_);
  const double seconds = static_cast<double>(latency.count()) / 1e9;
  for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    if (seconds <= kBucketsSeconds[i]) {
      Inc(latency_buckets_[i]);
    }
  }
  Inc(latency_count_);
  latency_sum_ns_.fetch_add(static_cast<uint64_t>(latency.count()), std::memory_order_relaxed);
}

void Metrics::Request(int status) {
  Inc(status < 400 ? requests_2xx_ : status < 500 ? requests_4xx_ : requests_5xx_);
}

std::string Metrics::Render() const {
  std::string out;
  auto line = [&out](std::string_view text) {
    out += text;
    out += '\n';
  };
  line("# HELP hallmark_connections_accepted_total TCP connections accepted on device listeners.");
  line("# TYPE hallmark_connections_accepted_total counter");
  line(fmt::format("hallmark_connections_accepted_total {}", accepted_.load()));
  line("# HELP hallmark_connections_refused_total Connections closed at once: max_connections.");
  line("# TYPE hallmark_connections_refused_total counter");
  line(fmt::format("hallmark_connections_refused_total {}", refused_at_limit_.load()));
  line("# HELP hallmark_connections_active Open device connections.");
  line("# TYPE hallmark_connections_active gauge");
  line(fmt::format("hallmark_connections_active {}", active_.load()));
  line("# HELP hallmark_handshakes_total Mutual-TLS handshakes that identified a device.");
  line("# TYPE hallmark_handshakes_total counter");
  line(fmt::format("hallmark_handshakes_total{{policy=\"ca\"}} {}", ok_ca_.load()));
  line(fmt::format("hallmark_handshakes_total{{policy=\"registry\"}} {}", ok_registry_.load()));
  line("# HELP hallmark_handshake_failures_total Handshakes that did not identify a device.");
  line("# TYPE hallmark_handshake_failures_total counter");
  for (size_t i = 0; i < failures_.size(); ++i) {
    line(fmt::format("hallmark_handshake_failures_total{{reason=\"{}\"}} {}",
                     HandshakeFailureName(static_cast<HandshakeFailure>(i)), failures_[i].load()));
  }
  line("# HELP hallmark_handshake_seconds Time from accept to an identified device.");
  line("# TYPE hallmark_handshake_seconds histogram");
  for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    line(fmt::format("hallmark_handshake_seconds_bucket{{le=\"{}\"}} {}", kBucketsSeconds[i],
                     latency_buckets_[i].load()));
  }
  line(fmt::format("hallmark_handshake_seconds_bucket{{le=\"+Inf\"}} {}", latency_count_.load()));
  line(fmt::format("hallmark_handshake_seconds_sum {}",
                   static_cast<double>(latency_sum_ns_.load()) / 1e9));
  line(fmt::format("hallmark_handshake_seconds_count {}", latency_count_.load()));
  line("# HELP hallmark_http_requests_total HTTP responses by status class.");
  line("# TYPE hallmark_http_requests_total counter");
  line(fmt::format("hallmark_http_requests_total{{code=\"2xx\"}} {}", requests_2xx_.load()));
  line(fmt::format("hallmark_http_requests_total{{code=\"4xx\"}} {}", requests_4xx_.load()));
  line(fmt::format("hallmark_http_requests_total{{code=\"5xx\"}} {}", requests_5xx_.load()));
  return out;
}

}  // namespace hallmark::server
