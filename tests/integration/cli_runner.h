// CliRunner: runs the real `hallmark` binary (and other programs) for integration tests.
#ifndef HALLMARK_TESTS_INTEGRATION_CLI_RUNNER_H_
#define HALLMARK_TESTS_INTEGRATION_CLI_RUNNER_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/subprocess.h"

namespace hallmark::testing {

// Hallmark runs `hallmark args...` and returns its exit code and output. Fails the test if the
// binary cannot be started.
ProcessResult Hallmark(const std::vector<std::string>& args, const std::string& input = {});

// Run runs any program (`openssl`, ...).
ProcessResult Run(const std::vector<std::string>& argv, const std::string& input = {});

// Json parses a command's stdout as JSON (empty object if it does not parse; the test then
// fails on its own expectations).
nlohmann::json Json(const ProcessResult& r);

}  // namespace hallmark::testing

#endif  // HALLMARK_TESTS_INTEGRATION_CLI_RUNNER_H_
