// CliRunner: runs the real `hallmark` binary (and other programs) for integration tests.
#ifndef HALLMARK_TESTS_INTEGRATION_CLI_RUNNER_H_
#define HALLMARK_TESTS_INTEGRATION_CLI_RUNNER_H_

#include <gmock/gmock.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "core/subprocess.h"

namespace hallmark {

// PrintTo lets gMock show a command's outcome when an expectation fails.
inline void PrintTo(const ProcessResult& r, std::ostream* os) {
  *os << "{exit " << r.exit_code << ", stdout: \"" << r.out << "\", stderr: \"" << r.err << "\"}";
}

namespace testing {

// Succeeds matches a command that exited 0.
MATCHER(Succeeds, "exits 0") {
  if (arg.exit_code == 0) {
    return true;
  }
  *result_listener << "exited " << arg.exit_code << "; stderr: " << arg.err;
  return false;
}

// FailsWith(code, stderr_matcher) matches a command that exited `code` with a matching stderr.
MATCHER_P2(FailsWith, code, stderr_matcher,
           "exits " + ::testing::PrintToString(code) + " with a matching message") {
  if (arg.exit_code != code) {
    *result_listener << "exited " << arg.exit_code << "; stderr: " << arg.err;
    return false;
  }
  return ::testing::ExplainMatchResult(stderr_matcher, arg.err, result_listener);
}

// Hallmark runs `hallmark args...` and returns its exit code and output. Fails the test if the
// binary cannot be started.
ProcessResult Hallmark(const std::vector<std::string>& args, const std::string& input = {});

// Run runs any program (`openssl`, ...).
ProcessResult RunCommand(const std::vector<std::string>& argv, const std::string& input = {});

// Openssl runs `openssl args...`.
ProcessResult Openssl(const std::vector<std::string>& args);

// Json parses a command's stdout as JSON (empty object if it does not parse; the test then
// fails on its own expectations).
nlohmann::json Json(const ProcessResult& r);

// CaseName names a parameterized test after its table row's `test_name`.
template <typename Case>
std::string CaseName(const ::testing::TestParamInfo<Case>& row) {
  return row.param.test_name;
}

std::string ReadText(const std::string& path);
void WriteText(const std::string& path, const std::string& data);

}  // namespace testing
}  // namespace hallmark

#endif  // HALLMARK_TESTS_INTEGRATION_CLI_RUNNER_H_
