// ServerProcess: runs `hallmark serve` (or any long-running program) for a test, reads its
// ready line, and stops it by PID.
#ifndef HALLMARK_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define HALLMARK_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace hallmark::testing {

class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess();

  // Start runs `argv`; its stderr goes to `stderr_path`. Returns false if it cannot start.
  bool Start(const std::vector<std::string>& argv, const std::string& stderr_path);
  // ReadLine returns the next stdout line, or nullopt on EOF or after `timeout` (a bound for a
  // broken server, not a synchronisation delay).
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // Stop sends SIGTERM, waits, and returns the exit status (-1 if not running).
  int Stop();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string pending_;
};

}  // namespace hallmark::testing

#endif  // HALLMARK_TESTS_INTEGRATION_SERVER_PROCESS_H_
