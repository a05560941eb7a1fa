#include "ca/issuance_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "testing/matchers.h"

namespace hallmark::ca {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using ::testing::HasSubstr;

IssuedRecord Record(const std::string& serial, const std::string& issuer = "acme") {
  IssuedRecord r;
  r.serial = serial;
  r.issuer = issuer;
  r.profile = "device";
  r.subject = "CN=" + serial;
  r.device_id = std::string(64, 'a');
  r.not_before = 100;
  r.not_after = 200;
  r.issued_at = 100;
  r.der = {0x30, 0x00};
  return r;
}

class IssuanceLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = IssuanceLog::Open(dir_ / "ca.db");
    ASSERT_THAT(log, IsOk());
    log_.emplace(std::move(*log));
    AuthorityRecord a{"acme", "customer", "ACME", {0x30, 0x00}, "file:acme.key", 1};
    ASSERT_THAT(log_->AddAuthority(AuthorityRecord{"root", "root", "V", {0x30}, "file:r", 1},
                                   Record("01", "root")),
                IsOk());
    ASSERT_THAT(log_->AddAuthority(a, Record("02", "root")), IsOk());
  }

  TempDir dir_;
  std::optional<IssuanceLog> log_;
};

TEST_F(IssuanceLogTest, BatchIsAllOrNothing) {
  ASSERT_THAT(log_->Record(std::vector<IssuedRecord>{Record("10")}), IsOk());
  EXPECT_THAT(log_->Record(std::vector<IssuedRecord>{Record("11"), Record("10")}),
              HasError(Code::kAlreadyExists, HasSubstr("10")));
  EXPECT_THAT(log_->Find("11"), HasError(Code::kNotFound, HasSubstr("11")));
  EXPECT_EQ(*log_->CountIssued("acme"), 1);
}

TEST_F(IssuanceLogTest, UnknownIssuerIsRefusedByForeignKey) {
  EXPECT_FALSE(log_->Record(std::vector<IssuedRecord>{Record("20", "nobody")}).has_value());
  EXPECT_THAT(log_->Find("20"), HasError(Code::kNotFound, HasSubstr("20")));
}

TEST_F(IssuanceLogTest, RecordsSurviveReopening) {
  ASSERT_THAT(log_->Record(std::vector<IssuedRecord>{Record("30")}), IsOk());
  log_.reset();
  auto reopened = IssuanceLog::Open(dir_ / "ca.db");
  ASSERT_THAT(reopened, IsOk());
  auto r = reopened->Find("30");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->subject, "CN=30");
  EXPECT_FALSE(r->revoked_at.has_value());
}

TEST_F(IssuanceLogTest, RevokeMarksOnceAndListsUntilExpiry) {
  ASSERT_THAT(log_->Record(std::vector<IssuedRecord>{Record("40")}), IsOk());
  EXPECT_THAT(log_->Revoke("40", RevocationReason::kKeyCompromise, 150), IsOk());
  EXPECT_THAT(log_->Revoke("40", RevocationReason::kKeyCompromise, 151),
              HasError(Code::kFailedPrecondition, HasSubstr("already revoked")));
  EXPECT_THAT(log_->Revoke("41", RevocationReason::kKeyCompromise, 151),
              HasError(Code::kNotFound, HasSubstr("41")));
  EXPECT_EQ(log_->Revoked("acme", 150)->size(), 1u);
  EXPECT_EQ(log_->Revoked("acme", 201)->size(), 0u);
}

TEST_F(IssuanceLogTest, CrlNumbersAreMonotonicPerAuthority) {
  EXPECT_EQ(*log_->NextCrlNumber("acme"), 1u);
  EXPECT_EQ(*log_->NextCrlNumber("acme"), 2u);
  EXPECT_EQ(*log_->NextCrlNumber("root"), 1u);
  EXPECT_THAT(log_->NextCrlNumber("nobody"), HasError(Code::kNotFound, HasSubstr("nobody")));
}

TEST_F(IssuanceLogTest, RefusesALogFromAnotherSchemaVersion) {
  log_.reset();
  {
    auto db = sqlite::Database::Open(dir_ / "ca.db");
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db->Exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'"), IsOk());
  }
  EXPECT_THAT(IssuanceLog::Open(dir_ / "ca.db"),
              HasError(Code::kFailedPrecondition, HasSubstr("schema version 99")));
}

TEST(IssuanceLogOpenTest, CorruptFileIsReportedAsDataLoss) {
  TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir / "ca.db", std::string(4096, 'x'), 0600), IsOk());
  EXPECT_THAT(IssuanceLog::Open(dir / "ca.db"),
              HasError(Code::kDataLoss, HasSubstr("not a database")));
}

}  // namespace
}  // namespace hallmark::ca
