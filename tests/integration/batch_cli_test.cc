// Integration tests for `hallmark batch ...` and the offline parts of enrollment on the CLI
// (docs/enrollment.md). Claims over the network are tested with the server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "integration/cli_runner.h"
#include "testing/matchers.h"

namespace hallmark::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class BatchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(Hallmark({"registry", "--db", db_, "--registrar-key", key_, "init"}), Succeeds());
    ASSERT_THAT(Batch({"enrollment-key", "--out", enroll_}), Succeeds());
  }

  // Batch runs `hallmark [--json] batch --db DB --registrar-key KEY args...`.
  ProcessResult Batch(const std::vector<std::string>& args, bool json = false) {
    std::vector<std::string> argv = {"batch", "--db", db_, "--registrar-key", key_};
    if (json) {
      argv.insert(argv.begin(), "--json");
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  nlohmann::json BatchJson(const std::vector<std::string>& args) {
    ProcessResult r = Batch(args, /*json=*/true);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json(r);
  }

  TempDir tmp_;
  const std::string db_ = tmp_ / "registry.db";
  const std::string key_ = tmp_ / "registrar.key";
  const std::string enroll_ = tmp_ / "enrollment.key";
};

TEST_F(BatchCliTest, CreatePrintsTheSecretOnceAndTheDatabaseNeverHoldsIt) {
  nlohmann::json created = BatchJson({"create", "--id", "b1", "--size", "1000", "--expires", "30d",
                                      "--owner", "acme", "--enrollment-pub", enroll_ + ".pub"});
  const std::string secret = created.value("secret", "");
  ASSERT_EQ(secret.size(), 43u) << created.dump();
  EXPECT_EQ(created["size"], 1000);
  std::string db = ReadText(db_);
  if (std::ifstream(db_ + "-wal").good()) {
    db += ReadText(db_ + "-wal");
  }
  EXPECT_THAT(db, Not(HasSubstr(secret)));
  // Nothing shows it again.
  ProcessResult shown = Batch({"show", "b1"});
  EXPECT_THAT(shown, Succeeds());
  EXPECT_THAT(shown.out, Not(HasSubstr(secret)));
  EXPECT_THAT(Hallmark({"registry", "--db", db_, "--registrar-pub", key_ + ".pub", "verify"}),
              Succeeds());
}

TEST_F(BatchCliTest, SecretOutWritesAPrivateFile) {
  const std::string secret_file = tmp_ / "secret.txt";
  nlohmann::json created =
      BatchJson({"create", "--size", "5", "--expires", "1h", "--enrollment-pub", enroll_ + ".pub",
                 "--secret-out", secret_file});
  EXPECT_FALSE(created.contains("secret"));
  struct stat st {};
  ASSERT_EQ(::stat(secret_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadText(secret_file).size(), 44u);
  EXPECT_THAT(created.value("batch_id", ""), ::testing::StartsWith("b-"));
}

TEST_F(BatchCliTest, ListShowAndRevoke) {
  ASSERT_THAT(Batch({"create", "--id", "b1", "--size", "3", "--expires", "30d", "--owner", "acme",
                     "--enrollment-pub", enroll_ + ".pub"}),
              Succeeds());
  nlohmann::json list = BatchJson({"list"});
  ASSERT_EQ(list["batches"].size(), 1u);
  EXPECT_EQ(list["batches"][0]["claims"], 0);
  EXPECT_EQ(list["batches"][0]["status"], "active");
  ProcessResult revoked = Batch({"revoke", "b1", "--reason", "leaked", "--revoke-devices"});
  EXPECT_THAT(revoked, Succeeds());
  nlohmann::json shown = BatchJson({"show", "b1"});
  EXPECT_EQ(shown["status"], "revoked");
  EXPECT_EQ(shown["reason"], "leaked");
  EXPECT_THAT(Batch({"revoke", "b1"}), FailsWith(6, HasSubstr("already revoked")));
  EXPECT_THAT(Batch({"show", "nope"}), FailsWith(4, HasSubstr("no batch")));
}

TEST_F(BatchCliTest, OnlyTheRegistrarCreatesBatches) {
  ASSERT_THAT(Hallmark({"registry", "--db", tmp_ / "other.db", "--registrar-key",
                        tmp_ / "other.key", "init"}),
              Succeeds());
  ProcessResult r =
      Hallmark({"batch", "--db", db_, "--registrar-key", tmp_ / "other.key", "create", "--size",
                "3", "--expires", "1d", "--enrollment-pub", enroll_ + ".pub"});
  EXPECT_THAT(r, FailsWith(5, HasSubstr("is not the registrar")));
  EXPECT_THAT(
      Batch({"create", "--size", "0", "--expires", "1d", "--enrollment-pub", enroll_ + ".pub"}),
      FailsWith(3, HasSubstr("out of range")));
  EXPECT_EQ(BatchJson({"list"})["batches"].size(), 0u);
}

TEST_F(BatchCliTest, DeviceCodeAndRenewalDueDateWorkOffline) {
  const std::string device_key = tmp_ / "device.pem";
  ASSERT_THAT(Hallmark({"device", "--key", device_key, "keygen"}), Succeeds());
  ProcessResult code = Hallmark({"--json", "device", "--key", device_key, "code"});
  ASSERT_THAT(code, Succeeds());
  EXPECT_THAT(Json(code).value("code", ""), ::testing::MatchesRegex("[0-9A-Z]{4}-[0-9A-Z]{4}"));
  // A certificate that was just issued is not due for renewal: nothing is contacted.
  const std::string cert = tmp_ / "op.pem";
  ASSERT_EQ(
      Openssl({"req", "-x509", "-key", device_key, "-subj", "/CN=x", "-days", "3", "-out", cert})
          .exit_code,
      0);
  ProcessResult renew = Hallmark({"device", "--key", device_key, "renew", "--server", "127.0.0.1:9",
                                  "--trust", cert, "--cert", cert});
  EXPECT_THAT(renew, Succeeds());
  EXPECT_THAT(renew.out, HasSubstr("Not due"));
}

}  // namespace
}  // namespace hallmark::testing
