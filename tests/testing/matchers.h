// Test helpers shared by unit and integration tests: Result/Status matchers and temp dirs.
#ifndef HALLMARK_TESTS_TESTING_MATCHERS_H_
#define HALLMARK_TESTS_TESTING_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/status.h"

namespace hallmark::testing {

// IsOk matches a Result<T> or Status that holds a value.
MATCHER(IsOk, "") {
  if (arg.has_value()) {
    return true;
  }
  *result_listener << "error: " << arg.error();
  return false;
}

// HasError(code, message_matcher) matches a failed Result/Status with that code whose message
// matches.
MATCHER_P2(HasError, code, message_matcher,
           std::string("fails with ") + std::string(CodeName(code))) {
  if (arg.has_value()) {
    *result_listener << "succeeded";
    return false;
  }
  if (arg.error().code() != code) {
    *result_listener << "error: " << arg.error();
    return false;
  }
  return ::testing::ExplainMatchResult(message_matcher, arg.error().message(), result_listener);
}

// TempDir is a fresh directory removed (with its contents) when the object dies.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace hallmark::testing

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                       \
  auto HALLMARK_CONCAT(result_, __LINE__) = (expr);           \
  ASSERT_TRUE(HALLMARK_CONCAT(result_, __LINE__).has_value()) \
      << HALLMARK_CONCAT(result_, __LINE__).error();          \
  lhs = std::move(HALLMARK_CONCAT(result_, __LINE__)).value()
#define HALLMARK_CONCAT_INNER(a, b) a##b
#define HALLMARK_CONCAT(a, b) HALLMARK_CONCAT_INNER(a, b)

#endif  // HALLMARK_TESTS_TESTING_MATCHERS_H_
