// Clock: the source of "now" for everything that checks or sets validity times. Tests pass a
// `FakeClock`; production code uses `SystemClock()`.
#ifndef HALLMARK_CORE_CLOCK_H_
#define HALLMARK_CORE_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace hallmark {

// Clock is an interface; implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Now returns seconds since the Unix epoch.
  virtual int64_t Now() const = 0;
};

// SystemClock returns the process-wide wall clock.
const Clock& SystemClock();

// FakeClock returns whatever it was last set to. Not thread-safe; for tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now) : now_(now) {}
  int64_t Now() const override { return now_; }
  void Set(int64_t now) { now_ = now; }
  void Advance(int64_t seconds) { now_ += seconds; }

 private:
  int64_t now_;
};

}  // namespace hallmark

#endif  // HALLMARK_CORE_CLOCK_H_
