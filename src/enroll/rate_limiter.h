// RateLimiter: token buckets keyed by a string (a source address, a batch, a device), so that
// claims and enrollments cannot be driven faster than configured by one source or against one
// batch.
#ifndef HALLMARK_ENROLL_RATE_LIMITER_H_
#define HALLMARK_ENROLL_RATE_LIMITER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hallmark::enroll {

// RateLimit configures one limiter: `per_second` tokens are added to each key's bucket every
// second, up to `burst`. A `per_second` of 0 (or less) disables the limit.
struct RateLimit {
  double per_second = 1.0;
  double burst = 10.0;
};

// RateLimiter is thread-safe. Memory is bounded by `max_keys`: when it is reached, buckets that
// have refilled completely (idle keys) are dropped, and if that is not enough, all of them (a
// flood of distinct keys then resets the limits instead of exhausting memory).
class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using MonotonicClock = std::function<TimePoint()>;

  struct Decision {
    bool allowed = true;
    double retry_after = 0;  // seconds until the next token, when refused
  };

  explicit RateLimiter(RateLimit limit, size_t max_keys = 100'000, MonotonicClock now = nullptr);

  // Take takes one token from `key`'s bucket (a new key starts with a full bucket).
  Decision Take(std::string_view key);

  bool enabled() const { return limit_.per_second > 0; }

 private:
  struct Bucket {
    double tokens;
    TimePoint updated;
  };
  void Sweep(TimePoint now);

  const RateLimit limit_;
  const size_t max_keys_;
  const MonotonicClock now_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace hallmark::enroll

#endif  // HALLMARK_ENROLL_RATE_LIMITER_H_
