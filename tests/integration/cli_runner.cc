#include "integration/cli_runner.h"

#include <gtest/gtest.h>

namespace hallmark::testing {

ProcessResult Run(const std::vector<std::string>& argv, const std::string& input) {
  auto r = RunProcess(argv, input);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
  return r ? *r : ProcessResult{};
}

ProcessResult Hallmark(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv = {HALLMARK_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, input);
}

nlohmann::json Json(const ProcessResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

}  // namespace hallmark::testing
