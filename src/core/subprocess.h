// RunProcess: run another program (openssl, curl, ...) and collect its output. Used by the demo
// and by integration tests to drive tools nobody here wrote.
#ifndef HALLMARK_CORE_SUBPROCESS_H_
#define HALLMARK_CORE_SUBPROCESS_H_

#include <string>
#include <vector>

#include "core/status.h"

namespace hallmark {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal number if it was killed by a signal
  std::string out;
  std::string err;
};

// RunProcess runs `argv` (argv[0] looked up in PATH) with `input` on its standard input and
// waits for it. kNotFound if the program cannot be started.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const std::string& input = {});

}  // namespace hallmark

#endif  // HALLMARK_CORE_SUBPROCESS_H_
