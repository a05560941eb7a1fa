// Integration tests for `hallmark puf ...`: the real binary enrolls simulated chips, regenerates
// their keys from fresh noisy reads, refuses altered helper data, and evaluates the extractor.
// `openssl` (a tool nobody here wrote) checks the device ID of the enrolled public key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "integration/cli_runner.h"
#include "testing/matchers.h"

namespace hallmark::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Lt;

class PufCliTest : public ::testing::Test {
 protected:
  // Puf runs `hallmark [--json] puf [model...] CMD --chip-seed SEED --helper HELPER args...`.
  ProcessResult Puf(const std::string& cmd, const std::string& seed,
                    const std::vector<std::string>& args = {}, bool json = true) const {
    std::vector<std::string> argv;
    if (json) {
      argv.push_back("--json");
    }
    argv.insert(argv.end(), {"puf", cmd, "--chip-seed", seed, "--helper", helper_});
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  std::string Enroll(const std::string& seed, const std::vector<std::string>& args = {}) {
    ProcessResult r = Puf("enroll", seed, args);
    EXPECT_THAT(r, Succeeds());
    return Json(r).value("device_id", "");
  }

  std::string Reconstruct(const std::string& seed, const std::string& read_seed) {
    ProcessResult r = Puf("reconstruct", seed, {"--read-seed", read_seed});
    EXPECT_THAT(r, Succeeds());
    return Json(r).value("device_id", "");
  }

  // FlipByte flips one bit of the helper data file.
  void FlipByte(size_t offset) const {
    std::string blob = ReadText(helper_);
    blob[offset] = static_cast<char>(blob[offset] ^ 0x04);
    WriteText(helper_, blob);
  }

  TempDir tmp_;
  const std::string helper_ = tmp_ / "chip.puf";
};

TEST_F(PufCliTest, ReconstructGivesTheEnrolledDeviceIdFromFreshReads) {
  const std::string pub = tmp_ / "chip.pub";
  const std::string id = Enroll("42", {"--pubkey-out", pub});
  ASSERT_THAT(id, ::testing::MatchesRegex("[0-9a-f]{64}"));
  for (const char* read_seed : {"1", "2", "3"}) {
    EXPECT_EQ(Reconstruct("42", read_seed), id) << "read seed " << read_seed;
  }
  // No read seed: a random fresh read.
  EXPECT_EQ(Json(Puf("reconstruct", "42"))["device_id"], id);
  // openssl computes the same device ID from the public key.
  const std::string spki = tmp_ / "chip.spki";
  ASSERT_THAT(Openssl({"pkey", "-pubin", "-in", pub, "-outform", "DER", "-out", spki}), Succeeds());
  ProcessResult digest = Openssl({"dgst", "-sha256", "-r", spki});
  EXPECT_EQ(digest.out.substr(0, digest.out.find(' ')), id);
  EXPECT_EQ(ReadText(helper_).size(), 512u);
}

TEST_F(PufCliTest, AnotherChipCannotUseTheHelperData) {
  Enroll("42");
  EXPECT_THAT(Puf("reconstruct", "43", {}, false),
              FailsWith(8, HasSubstr("reconstruction failed")));
}

TEST_F(PufCliTest, AlteredHelperDataIsRefused) {
  const std::string id = Enroll("42");
  EXPECT_EQ(Reconstruct("42", "7"), id);  // the legitimate twin
  FlipByte(300);                          // inside the code offset
  EXPECT_THAT(Puf("reconstruct", "42", {"--read-seed", "7"}, false),
              FailsWith(8, HasSubstr("reconstruction failed")));
}

TEST_F(PufCliTest, MalformedHelperDataIsNamed) {
  Enroll("42");
  FlipByte(4);  // the version byte
  EXPECT_THAT(Puf("reconstruct", "42", {}, false), FailsWith(8, HasSubstr("unsupported version")));
}

TEST_F(PufCliTest, EnrollRefusesToReplaceAnIdentity) {
  Enroll("42");
  const std::string before = ReadText(helper_);
  EXPECT_THAT(Puf("enroll", "43", {}, false), FailsWith(6, HasSubstr("already exists")));
  EXPECT_EQ(ReadText(helper_), before);
}

TEST_F(PufCliTest, ReconstructWithoutHelperDataIsNotFound) {
  EXPECT_THAT(Puf("reconstruct", "42", {}, false), FailsWith(4, HasSubstr("chip.puf")));
}

TEST_F(PufCliTest, BiasedChipEnrollsWithPairDebiasing) {
  ProcessResult r = Hallmark(
      {"--json", "puf", "--bias", "0.3", "enroll", "--chip-seed", "9", "--helper", helper_});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["debiasing"], "pairs");
  ProcessResult again = Hallmark(
      {"--json", "puf", "--bias", "0.3", "reconstruct", "--chip-seed", "9", "--helper", helper_});
  ASSERT_THAT(again, Succeeds());
  EXPECT_EQ(Json(again)["device_id"], Json(r)["device_id"]);
}

TEST_F(PufCliTest, BadModelIsInvalidInput) {
  EXPECT_THAT(Hallmark({"puf", "--ber", "0.6", "eval"}), FailsWith(3, HasSubstr("bit error rate")));
  EXPECT_THAT(Hallmark({"puf", "--debias", "xor", "eval"}), FailsWith(3, HasSubstr("debiasing")));
}

TEST_F(PufCliTest, EvalReportsTheTargets) {
  ProcessResult r =
      Hallmark({"--json", "puf", "eval", "--trials", "3000", "--chips", "40", "--seed", "3"});
  ASSERT_THAT(r, Succeeds());
  const nlohmann::json j = Json(r);
  EXPECT_EQ(j["code"]["puf_bits"], 3577);
  EXPECT_EQ(j["code"]["helper_bytes"], 512);
  EXPECT_EQ(j["code"]["entropy_left_bits"], 295);
  EXPECT_THAT(j["failure"]["exact_at_target"].get<double>(), Lt(1e-9));
  EXPECT_EQ(j["failure"]["target_met"], true);
  ASSERT_EQ(j["failure"]["monte_carlo"].size(), 4u);
  EXPECT_EQ(j["failure"]["monte_carlo"][3]["trials"], 3000);
  EXPECT_NEAR(j["population"]["uniqueness"]["mean"].get<double>(), 0.5, 0.02);
  EXPECT_EQ(j["population"]["end_to_end_failures"], 0);
  EXPECT_EQ(j["population"]["chips"], 40);
}

// The PUF as a device key store (`--keystore puf:...`): the device commands regenerate the key
// on every use, a CSR made with it verifies with openssl, and another chip cannot use the
// helper data.
TEST_F(PufCliTest, DeviceCommandsUseThePufKeyStore) {
  const std::string spec = "puf:helper=" + helper_ + ";chip=42";
  ProcessResult made = Hallmark({"--json", "device", "--keystore", spec, "keygen"});
  ASSERT_THAT(made, Succeeds());
  const std::string id = Json(made).value("device_id", "");
  ASSERT_EQ(id.size(), 64u);
  ProcessResult again = Hallmark({"--json", "device", "--keystore", spec, "id"});
  ASSERT_THAT(again, Succeeds());
  EXPECT_EQ(Json(again).value("device_id", ""), id);
  const std::string csr = tmp_ / "device.csr";
  ASSERT_THAT(Hallmark({"device", "--keystore", spec, "csr", "--serial", "PUF-1", "--out", csr}),
              Succeeds());
  EXPECT_THAT(Openssl({"req", "-in", csr, "-verify", "-noout"}), Succeeds());
  EXPECT_THAT(Hallmark({"device", "--keystore", "puf:helper=" + helper_ + ";chip=43", "id"}),
              FailsWith(8, HasSubstr("reconstruction failed")));
  EXPECT_THAT(Hallmark({"device", "--keystore", spec, "keygen"}),
              FailsWith(6, HasSubstr("exists")));
  EXPECT_THAT(Hallmark({"device", "--keystore", "puf:helper=" + helper_, "id"}),
              FailsWith(3, HasSubstr("chip=SEED")));
}

}  // namespace
}  // namespace hallmark::testing
