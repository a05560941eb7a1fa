#include "server/metrics.h"

#include <fmt/format.h>

#include <initializer_list>
#include <utility>

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

void Metrics::RegistryRefreshed(int64_t unix_seconds) {
  Inc(registry_refreshes_);
  registry_last_refresh_.store(unix_seconds, std::memory_order_relaxed);
}

void Metrics::SetRecordCacheStats(const RecordCacheStats& stats) {
  cache_entries_.store(stats.entries, std::memory_order_relaxed);
  cache_negative_entries_.store(stats.negative_entries, std::memory_order_relaxed);
  cache_hits_.store(stats.hits, std::memory_order_relaxed);
  cache_misses_.store(stats.misses, std::memory_order_relaxed);
  cache_evictions_.store(stats.evictions, std::memory_order_relaxed);
}

void Metrics::CrlLoaded(std::string_view anchor, int64_t next_update) {
  std::lock_guard<std::mutex> lock(crl_mu_);
  auto it = crls_.try_emplace(std::string(anchor)).first;
  ++it->second.loaded;
  it->second.next_update = next_update;
}

void Metrics::CrlRefused(std::string_view anchor) {
  std::lock_guard<std::mutex> lock(crl_mu_);
  ++crls_.try_emplace(std::string(anchor)).first->second.refused;
}

namespace {

// LabelValue escapes a label value as the text format requires: backslash, quote, newline.
std::string LabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Exposition appends families and samples to a text exposition.
class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <typename T>
  void Sample(std::string_view name, std::string_view labels, T value) {
    if (labels.empty()) {
      out_ += fmt::format("{} {}\n", name, value);
    } else {
      out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
  }
  // Labelled declares a family whose samples differ in one label, `label`.
  void Labelled(std::string_view name, std::string_view type, std::string_view help,
                std::string_view label,
                std::initializer_list<std::pair<std::string_view, uint64_t>> samples) {
    Family(name, type, help);
    for (const auto& [value, count] : samples) {
      Sample(name, fmt::format("{}=\"{}\"", label, value), count);
    }
  }
  // One declares a family with a single unlabelled sample.
  template <typename T>
  void One(std::string_view name, std::string_view type, std::string_view help, T value) {
    Family(name, type, help);
    Sample(name, "", value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

void Metrics::RenderCrls(std::string* out) const {
  std::lock_guard<std::mutex> lock(crl_mu_);
  if (crls_.empty()) {
    return;
  }
  Exposition e;
  e.Family("hallmark_crl_loads_total", "counter",
           "CRL files loaded (at start or reload) or refused (the previous CRL stays), by anchor.");
  for (const auto& [anchor, f] : crls_) {
    std::string a = LabelValue(anchor);
    e.Sample("hallmark_crl_loads_total", fmt::format("anchor=\"{}\",result=\"ok\"", a), f.loaded);
    e.Sample("hallmark_crl_loads_total", fmt::format("anchor=\"{}\",result=\"refused\"", a),
             f.refused);
  }
  e.Family("hallmark_crl_next_update_timestamp_seconds", "gauge",
           "nextUpdate of the CRL in force, by anchor; past it, the anchor's devices are refused.");
  for (const auto& [anchor, f] : crls_) {
    e.Sample("hallmark_crl_next_update_timestamp_seconds",
             fmt::format("anchor=\"{}\"", LabelValue(anchor)), f.next_update);
  }
  *out += e.Take();
}

std::string Metrics::Render() const {
  Exposition e;
  e.One("hallmark_connections_accepted_total", "counter",
        "TCP connections accepted on device listeners.", accepted_.load());
  e.One("hallmark_connections_refused_total", "counter",
        "Connections closed at once: max_connections.", refused_at_limit_.load());
  e.One("hallmark_connections_active", "gauge", "Open device connections.", active_.load());
  e.Labelled("hallmark_handshakes_total", "counter",
             "Mutual-TLS handshakes that identified a device.", "policy",
             {{"ca", ok_ca_.load()}, {"registry", ok_registry_.load()}});
  e.One("hallmark_handshakes_resumed_total", "counter",
        "Handshakes that resumed a session (also counted in hallmark_handshakes_total).",
        resumed_.load());
  e.Family("hallmark_handshake_failures_total", "counter",
           "Handshakes that did not identify a device.");
  for (size_t i = 0; i < failures_.size(); ++i) {
    e.Sample("hallmark_handshake_failures_total",
             fmt::format("reason=\"{}\"", HandshakeFailureName(static_cast<HandshakeFailure>(i))),
             failures_[i].load());
  }
  e.Family("hallmark_handshake_seconds", "histogram", "Time from accept to an identified device.");
  for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    e.Sample("hallmark_handshake_seconds_bucket", fmt::format("le=\"{}\"", kBucketsSeconds[i]),
             latency_buckets_[i].load());
  }
  e.Sample("hallmark_handshake_seconds_bucket", "le=\"+Inf\"", latency_count_.load());
  e.Sample("hallmark_handshake_seconds_sum", "", static_cast<double>(latency_sum_ns_.load()) / 1e9);
  e.Sample("hallmark_handshake_seconds_count", "", latency_count_.load());
  e.Labelled("hallmark_http_requests_total", "counter", "HTTP responses by status class.", "code",
             {{"2xx", requests_2xx_.load()},
              {"4xx", requests_4xx_.load()},
              {"5xx", requests_5xx_.load()}});
  e.Labelled("hallmark_chain_cache_lookups_total", "counter",
             "ca policy decisions that reused (hit) or made (miss) a chain signature verification.",
             "result", {{"hit", chain_cache_hits_.load()}, {"miss", chain_cache_misses_.load()}});

  e.One("hallmark_registry_refreshes_total", "counter",
        "Registry refreshes that read and verified the newest signed tree head.",
        registry_refreshes_.load());
  e.One("hallmark_registry_refresh_failures_total", "counter",
        "Registry refreshes that failed (the cache was emptied; lookups go to the directory).",
        registry_refresh_failures_.load());
  e.One("hallmark_registry_last_refresh_timestamp_seconds", "gauge",
        "When the last successful registry refresh ran (0: never); alert on time() minus this.",
        registry_last_refresh_.load());
  e.Labelled("hallmark_registry_cache_entries", "gauge",
             "Registry lookups cached: records, and answers that a device is not registered.",
             "cache",
             {{"positive", cache_entries_.load()}, {"negative", cache_negative_entries_.load()}});
  e.Labelled("hallmark_registry_cache_lookups_total", "counter",
             "Registry lookups answered by the cache (hit) or the directory (miss).", "result",
             {{"hit", cache_hits_.load()}, {"miss", cache_misses_.load()}});
  e.One("hallmark_registry_cache_evictions_total", "counter",
        "Cache entries dropped to stay within cache_size or negative_cache_size.",
        cache_evictions_.load());
  std::string out = e.Take();
  RenderCrls(&out);
  return out;
}

}  // namespace hallmark::server
