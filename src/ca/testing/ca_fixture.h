// Shared fixture for CA tests: a CA with customers "acme" and "globex" in a temp directory, a
// fake clock, and helpers that make CSRs the way devices (and attackers) do.
#ifndef HALLMARK_CA_TESTING_CA_FIXTURE_H_
#define HALLMARK_CA_TESTING_CA_FIXTURE_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ca/authority.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/key.h"
#include "testing/matchers.h"

namespace hallmark::ca::testing {

// 2026-01-01T00:00:00Z.
inline constexpr int64_t kNow = 1767225600;

// MakeKey makes a key of any kind OpenSSL can generate: "p256", "p384", "ed25519", "rsa1024",
// "rsa2048", "p192".
PrivateKey MakeKey(const std::string& kind);

// MakeCsr makes a CSR signed by `key` with subject serialNumber `serial` (if not empty), and the
// extension requests in `extensions` ({"basicConstraints", "critical,CA:TRUE"}, ...), written in
// OpenSSL's config syntax.
Csr MakeCsr(const PrivateKey& key, const std::string& serial,
            const std::vector<std::pair<std::string, std::string>>& extensions = {});

// TamperSignature flips one bit inside `csr`'s signature.
Csr TamperSignature(const Csr& csr);

class CaTest : public ::testing::Test {
 protected:
  void SetUp() override;

  IssueRequest DeviceRequest(const std::string& serial, const std::string& key_kind = "p256");
  int64_t IssuedCount(const std::string& issuer);
  std::string DbPath() const { return dir_ / "ca/ca.db"; }
  std::string CaDir() const { return dir_ / "ca"; }

  hallmark::testing::TempDir dir_;
  FakeClock clock_{kNow};
  std::optional<Authority> ca_;
};

}  // namespace hallmark::ca::testing

#endif  // HALLMARK_CA_TESTING_CA_FIXTURE_H_
