#include "enroll/rate_limiter.h"

#include <gtest/gtest.h>

namespace hallmark::enroll {
namespace {

class RateLimiterTest : public ::testing::Test {
 protected:
  RateLimiter::MonotonicClock Clock() {
    return [this] { return now_; };
  }
  std::chrono::steady_clock::time_point now_{};
};

TEST_F(RateLimiterTest, BurstThenOneTokenPerInterval) {
  RateLimiter limiter(RateLimit{2.0, 3.0}, 100, Clock());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.Take("a").allowed);
  }
  RateLimiter::Decision refused = limiter.Take("a");
  EXPECT_FALSE(refused.allowed);
  EXPECT_NEAR(refused.retry_after, 0.5, 1e-9);
  EXPECT_TRUE(limiter.Take("b").allowed) << "keys have their own buckets";
  now_ += std::chrono::milliseconds(500);
  EXPECT_TRUE(limiter.Take("a").allowed);
  EXPECT_FALSE(limiter.Take("a").allowed);
}

TEST_F(RateLimiterTest, BucketsNeverHoldMoreThanTheBurst) {
  RateLimiter limiter(RateLimit{1.0, 2.0}, 100, Clock());
  EXPECT_TRUE(limiter.Take("a").allowed);
  now_ += std::chrono::hours(1);
  EXPECT_TRUE(limiter.Take("a").allowed);
  EXPECT_TRUE(limiter.Take("a").allowed);
  EXPECT_FALSE(limiter.Take("a").allowed);
}

TEST_F(RateLimiterTest, ZeroRateDisablesTheLimit) {
  RateLimiter limiter(RateLimit{0.0, 0.0}, 100, Clock());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(limiter.Take("a").allowed);
  }
}

TEST_F(RateLimiterTest, MemoryIsBoundedByDroppingIdleKeys) {
  RateLimiter limiter(RateLimit{1.0, 1.0}, 2, Clock());
  EXPECT_TRUE(limiter.Take("busy").allowed);
  EXPECT_TRUE(limiter.Take("idle").allowed);
  now_ += std::chrono::seconds(10);
  EXPECT_TRUE(limiter.Take("busy").allowed);
  // A third key evicts the refilled ones; "busy" was just used and keeps its empty bucket.
  EXPECT_TRUE(limiter.Take("new").allowed);
  EXPECT_FALSE(limiter.Take("busy").allowed);
}

}  // namespace
}  // namespace hallmark::enroll
