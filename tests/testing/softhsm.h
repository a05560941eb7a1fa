// SoftHsm: a SoftHSM2 token store in a temporary directory, for tests of the PKCS#11 key
// stores. SOFTHSM2_CONF points at it while the object lives (inherited by child processes).
#ifndef HALLMARK_TESTS_TESTING_SOFTHSM_H_
#define HALLMARK_TESTS_TESTING_SOFTHSM_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "testing/matchers.h"

namespace hallmark::testing {

class SoftHsm {
 public:
  // The SO PIN of every token made here.
  static constexpr const char* kSoPin = "12345678";

  SoftHsm();
  SoftHsm(const SoftHsm&) = delete;
  SoftHsm& operator=(const SoftHsm&) = delete;
  ~SoftHsm();

  // Module is the path of SoftHSM2's PKCS#11 module ("" if it is not installed).
  static std::string Module();

  // InitToken initialises a fresh token labelled `label` with user PIN `pin`.
  ::testing::AssertionResult InitToken(const std::string& label, const std::string& pin);

  // Spec returns "pkcs11:module=...;token=TOKEN;label=LABEL" (no label part if empty).
  static std::string Spec(const std::string& token, const std::string& label = "");

  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::optional<std::string> previous_conf_;
};

}  // namespace hallmark::testing

#endif  // HALLMARK_TESTS_TESTING_SOFTHSM_H_
