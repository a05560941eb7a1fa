// PeriodicThread: runs a task on its own thread at a fixed interval (the registry refresher, the
// CRL reloader).
#ifndef HALLMARK_SERVER_INTERNAL_PERIODIC_H_
#define HALLMARK_SERVER_INTERNAL_PERIODIC_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>

namespace hallmark::server::internal {

// PeriodicThread calls `task` every `interval` (after each wait, never at once) until it is
// destroyed; the destructor waits for a running call to return. Thread-safe.
class PeriodicThread {
 public:
  PeriodicThread(std::chrono::milliseconds interval, std::function<void()> task)
      : thread_([this, interval, task = std::move(task)](std::stop_token stop) {
          std::unique_lock<std::mutex> lock(mu_);
          // Returns true only once a stop was requested; false when the interval passed.
          while (!cv_.wait_for(lock, stop, interval, [&stop] { return stop.stop_requested(); })) {
            lock.unlock();
            task();
            lock.lock();
          }
        }) {}
  ~PeriodicThread() {
    thread_.request_stop();
    thread_.join();
  }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::jthread thread_;  // last: it starts after, and stops before, mu_ and cv_
};

}  // namespace hallmark::server::internal

#endif  // HALLMARK_SERVER_INTERNAL_PERIODIC_H_
