#include "enroll/rate_limiter.h"

#include <algorithm>

namespace hallmark::enroll {

RateLimiter::RateLimiter(RateLimit limit, size_t max_keys, MonotonicClock now)
    : limit_(limit),
      max_keys_(std::max<size_t>(1, max_keys)),
      now_(now ? std::move(now) : MonotonicClock([] { return std::chrono::steady_clock::now(); })) {
}

RateLimiter::Decision RateLimiter::Take(std::string_view key) {
  if (!enabled()) {
    return {};
  }
  const TimePoint now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      Sweep(now);
    }
    it = buckets_.emplace(std::string(key), Bucket{limit_.burst, now}).first;
  }
  Bucket& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.updated).count();
  b.tokens = std::min(limit_.burst, b.tokens + std::max(0.0, elapsed) * limit_.per_second);
  b.updated = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {};
  }
  return Decision{false, (1.0 - b.tokens) / limit_.per_second};
}

void RateLimiter::Sweep(TimePoint now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    if (it->second.tokens + elapsed * limit_.per_second >= limit_.burst) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  if (buckets_.size() >= max_keys_) {
    buckets_.clear();
  }
}

}  // namespace hallmark::enroll
