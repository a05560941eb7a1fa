#include "integration/cli_runner.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace hallmark::testing {

ProcessResult RunCommand(const std::vector<std::string>& argv, const std::string& input) {
  auto r = RunProcess(argv, input);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
  return r ? *r : ProcessResult{};
}

ProcessResult Hallmark(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv = {HALLMARK_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, input);
}

ProcessResult Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteText(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

nlohmann::json Json(const ProcessResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

}  // namespace hallmark::testing
