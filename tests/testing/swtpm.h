// Swtpm: a software TPM 2.0 (`swtpm socket --tpm2`) on a Unix socket in a temporary directory,
// started for one test and stopped by PID.
#ifndef HALLMARK_TESTS_TESTING_SWTPM_H_
#define HALLMARK_TESTS_TESTING_SWTPM_H_

#include <sys/types.h>

#include <string>

#include "testing/matchers.h"

namespace hallmark::testing {

class Swtpm {
 public:
  // Starting runs swtpm with fresh state; check `ok()`, and `error()` if it is not.
  Swtpm();
  Swtpm(const Swtpm&) = delete;
  Swtpm& operator=(const Swtpm&) = delete;
  // Stops swtpm (if still running) and removes its directory.
  ~Swtpm();

  bool ok() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  pid_t pid() const { return pid_; }

  // Tcti is the TCTI configuration that reaches this TPM: "swtpm:path=DIR/sock".
  std::string Tcti() const { return "swtpm:path=" + dir_ / "sock"; }
  const std::string& dir() const { return dir_.path(); }

  // Stop sends SIGTERM and waits (bounded) until the process is gone. True if it stopped.
  bool Stop();

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace hallmark::testing

#endif  // HALLMARK_TESTS_TESTING_SWTPM_H_
