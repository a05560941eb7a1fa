// Batch enrollment and operator approval in the registry (docs/enrollment.md): the legitimate
// paths, the limits the claim path enforces, and what a stolen enrollment key or a writer of the
// database file can and cannot do, each attack next to its legitimate twin.
#include "registry/batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "registry/merkle.h"
#include "registry/record.h"
#include "registry/serving_directory.h"
#include "registry/sqlite_storage.h"
#include "registry/testing/registry_fixture.h"
#include "registry/verifier.h"
#include "testing/matchers.h"

namespace hallmark::registry {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;
using testing::NewDeviceKey;
using testing::QueryInt;

PrivateKey NewEd25519() {
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  EXPECT_TRUE(key.has_value());
  return std::move(*key);
}

class BatchTest : public testing::RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    CreateBatch("b1", 3);
  }

  BatchDefinition CreateBatch(const std::string& id, uint64_t size, int64_t lifetime = 86400) {
    auto batch =
        registry_->CreateBatch(*registrar_, BatchRequest{id, "acme", size, clock_.Now() + lifetime,
                                                         verifier_.Public(), enrollment_.Public()});
    EXPECT_THAT(batch, IsOk());
    return batch ? *batch : BatchDefinition{};
  }

  Result<ClaimResult> Claim(const std::string& serial, const PublicKey& key,
                            const std::string& batch = "b1") {
    clock_.Advance(1);
    return registry_->Claim(registrar_->Public(), enrollment_,
                            ClaimRequest{batch, serial, key, "192.0.2.7:4000"});
  }

  VerifyReport Verify() {
    auto report = registry_->Verify(registrar_->Public());
    EXPECT_THAT(report, IsOk());
    return report ? *report : VerifyReport{};
  }

  std::unique_ptr<ServingDirectory> OpenDirectory() {
    auto dir = ServingDirectory::Open(db_path_, registrar_->Public());
    EXPECT_THAT(dir, IsOk());
    return dir ? std::move(*dir) : nullptr;
  }

  bool HasFinding(const VerifyReport& report, FindingKind kind, const std::string& text) {
    for (const Finding& f : report.findings) {
      if (f.kind == kind && f.message.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  int64_t Rows(const std::string& table) const {
    return QueryInt(db_path_, "SELECT COUNT(*) FROM " + table);
  }

  // AppendAsEnrollmentKey writes `record` as the next log entry signed by `key` for batch
  // `batch`, with a head that key signs, bypassing every check of the claim path: what someone
  // who stole the server's enrollment key (and can write the database) can do.
  void AppendAsEnrollmentKey(DeviceRecord record, const PrivateKey& key, const std::string& batch) {
    auto storage = SqliteStorage::Open(db_path_);
    ASSERT_THAT(storage, IsOk());
    auto w = (*storage)->Write();
    ASSERT_THAT(w, IsOk());
    auto head = (*w)->NewestHead();
    ASSERT_TRUE(head.has_value() && head->has_value());
    auto range = CompactRange::FromBytes((*head)->head.tree_size, (*head)->compact_range);
    ASSERT_THAT(range, IsOk());
    record.seq = range->size();
    record.signer = EnrollmentSigner(batch);
    ASSERT_THAT(SignRecord(key, &record), IsOk());
    std::string canonical = *CanonicalRecord(record);
    LogEntry e{record.seq, record.device_id, Bytes(canonical.begin(), canonical.end()),
               record.signature};
    ASSERT_THAT((*w)->AppendLog(e), IsOk());
    ASSERT_THAT((*w)->PutDevice(record), IsOk());
    range->Append(LeafHash(e.entry));
    TreeHead h{range->size(), range->Root(), clock_.Now(), record.signer, {}};
    ASSERT_THAT(SignTreeHead(key, &h), IsOk());
    ASSERT_THAT((*w)->AddHead(h, range->Serialize()), IsOk());
    ASSERT_THAT((*w)->Commit(), IsOk());
  }

  DeviceRecord BatchRecord(const PublicKey& key, const std::string& serial) {
    DeviceRecord r;
    r.device_id = key.DeviceId();
    r.public_key = key.SpkiDer();
    r.status = DeviceStatus::kActive;
    r.owner = "acme";
    r.path = ProvisioningPath::kBatch;
    r.serial = serial;
    r.created_at = clock_.Now();
    r.updated_at = clock_.Now();
    return r;
  }

  PrivateKey verifier_ = NewEd25519();
  PrivateKey enrollment_ = NewEd25519();
};

TEST_F(BatchTest, ClaimEnrollsAnActiveDeviceSignedByTheEnrollmentKey) {
  PublicKey device = NewDeviceKey();
  ASSERT_OK_AND_ASSIGN(ClaimResult claimed, Claim("SN-1", device));
  EXPECT_FALSE(claimed.already_enrolled);
  const DeviceRecord& r = claimed.record;
  EXPECT_EQ(r.status, DeviceStatus::kActive);
  EXPECT_EQ(r.path, ProvisioningPath::kBatch);
  EXPECT_EQ(r.owner, "acme");
  EXPECT_EQ(r.signer, "enrollment:b1");
  EXPECT_THAT(VerifyRecord(enrollment_.Public(), r), IsOk());
  ASSERT_OK_AND_ASSIGN(StoredHead head, registry_->NewestHead());
  EXPECT_EQ(head.head.signer, "enrollment:b1");

  auto dir = OpenDirectory();
  ASSERT_OK_AND_ASSIGN(DeviceRecord served, dir->Lookup(device.DeviceId()));
  EXPECT_EQ(served, r);
  ASSERT_OK_AND_ASSIGN(VerifiedBatch batch, dir->LookupBatch("b1"));
  EXPECT_EQ(batch.claims, 1u);
  EXPECT_THAT(registry_->CheckDevice(r, registrar_->Public()), IsOk());
  VerifyReport report = Verify();
  EXPECT_TRUE(report.clean()) << report.findings[0].message;
  ASSERT_OK_AND_ASSIGN(BatchInfo info, registry_->FindBatch(registrar_->Public(), "b1"));
  EXPECT_EQ(info.claims, 1u);
}

TEST_F(BatchTest, HeadSignedByTheEnrollmentKeyServesAsTrustedHead) {
  ASSERT_THAT(Claim("SN-1", NewDeviceKey()), IsOk());
  ServingDirectory::Options options;
  options.trusted_head = OpenDirectory()->head();
  ASSERT_EQ(options.trusted_head->signer, "enrollment:b1");
  EXPECT_THAT(ServingDirectory::Open(db_path_, registrar_->Public(), options), IsOk());
  options.trusted_head->signature[0] ^= 1;
  EXPECT_THAT(ServingDirectory::Open(db_path_, registrar_->Public(), options),
              HasError(Code::kDataLoss, HasSubstr("trusted tree head")));
}

TEST_F(BatchTest, RunningDirectoryPicksUpClaimsOnRefresh) {
  auto dir = OpenDirectory();
  PublicKey device = NewDeviceKey();
  EXPECT_THAT(dir->Lookup(device.DeviceId()), HasError(Code::kNotFound, HasSubstr("no device")));
  ASSERT_THAT(Claim("SN-1", device), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> changed, dir->Refresh());
  EXPECT_EQ(changed, std::vector<std::string>{device.DeviceId()});
  EXPECT_THAT(dir->Lookup(device.DeviceId()), IsOk());
}

TEST_F(BatchTest, RetryBySameKeyReturnsItsRecordAndWritesNothing) {
  PublicKey device = NewDeviceKey();
  ASSERT_OK_AND_ASSIGN(ClaimResult first, Claim("SN-1", device));
  int64_t log = Rows("log");
  ASSERT_OK_AND_ASSIGN(ClaimResult again, Claim("SN-1", device));
  EXPECT_TRUE(again.already_enrolled);
  EXPECT_EQ(again.record, first.record);
  EXPECT_EQ(Rows("log"), log);
}

TEST_F(BatchTest, SameSerialWithAnotherKeyIsRefusedAndFlaggedAsClone) {
  PublicKey device = NewDeviceKey();
  PublicKey clone = NewDeviceKey();
  ASSERT_THAT(Claim("SN-1", device), IsOk());
  int64_t log = Rows("log");
  EXPECT_THAT(Claim("SN-1", clone),
              HasError(Code::kAlreadyExists, HasSubstr("flagged as a possible clone")));
  EXPECT_EQ(Rows("log"), log);
  EXPECT_THAT(registry_->Find(clone.DeviceId()), HasError(Code::kNotFound, HasSubstr("no device")));
  ASSERT_OK_AND_ASSIGN(std::vector<CloneAlert> alerts, registry_->CloneAlerts("b1"));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].device_id, clone.DeviceId());
  EXPECT_EQ(alerts[0].claimed_by, device.DeviceId());
  EXPECT_EQ(alerts[0].peer, "192.0.2.7:4000");
  EXPECT_EQ(registry_->FindBatch(registrar_->Public(), "b1")->clone_alerts, 1u);
  EXPECT_TRUE(Verify().clean());
}

TEST_F(BatchTest, ClaimBeyondTheBatchSizeIsRefused) {
  for (int i = 1; i <= 3; ++i) {
    ASSERT_THAT(Claim("SN-" + std::to_string(i), NewDeviceKey()), IsOk());
  }
  int64_t log = Rows("log");
  EXPECT_THAT(Claim("SN-4", NewDeviceKey()),
              HasError(Code::kResourceExhausted, HasSubstr("all 3 claims are used")));
  EXPECT_EQ(Rows("log"), log);
  EXPECT_EQ(Rows("claims"), 3);
}

TEST_F(BatchTest, ClaimAfterExpiryIsRefused) {
  clock_.Advance(86400);
  EXPECT_THAT(Claim("SN-1", NewDeviceKey()),
              HasError(Code::kFailedPrecondition, HasSubstr("expired")));
  EXPECT_EQ(Rows("claims"), 0);
}

TEST_F(BatchTest, ClaimWithAnotherServersEnrollmentKeyIsRefused) {
  PrivateKey other = NewEd25519();
  EXPECT_THAT(
      registry_->Claim(registrar_->Public(), other, ClaimRequest{"b1", "SN-1", NewDeviceKey(), ""}),
      HasError(Code::kPermissionDenied, HasSubstr("names enrollment key")));
}

TEST_F(BatchTest, ClaimOnUnknownBatchIsNotFound) {
  EXPECT_THAT(Claim("SN-1", NewDeviceKey(), "nope"),
              HasError(Code::kNotFound, HasSubstr("no batch 'nope'")));
}

TEST_F(BatchTest, ClaimOfAnAlreadyRegisteredKeyIsRefused) {
  DeviceRecord manual = Add("SN-M");
  auto key = PublicKey::FromDer(manual.public_key);
  EXPECT_THAT(Claim("SN-1", *key), HasError(Code::kAlreadyExists, HasSubstr("already registered")));
}

TEST_F(BatchTest, RevokedBatchRefusesClaimsAndCanRevokeItsDevices) {
  PublicKey a = NewDeviceKey();
  ASSERT_THAT(Claim("SN-1", a), IsOk());
  auto dir = OpenDirectory();
  clock_.Advance(1);
  ASSERT_OK_AND_ASSIGN(BatchRevocation revoked,
                       registry_->RevokeBatch(*registrar_, "b1", "secret leaked", true));
  EXPECT_EQ(revoked.definition.status, BatchStatus::kRevoked);
  EXPECT_EQ(revoked.revoked_devices, std::vector<std::string>{a.DeviceId()});
  EXPECT_THAT(Claim("SN-2", NewDeviceKey()),
              HasError(Code::kFailedPrecondition, HasSubstr("revoked")));
  ASSERT_THAT(dir->Refresh(), IsOk());
  ASSERT_OK_AND_ASSIGN(DeviceRecord served, dir->Lookup(a.DeviceId()));
  EXPECT_EQ(served.status, DeviceStatus::kRevoked);
  EXPECT_EQ(dir->LookupBatch("b1")->definition.status, BatchStatus::kRevoked);
  EXPECT_THAT(registry_->RevokeBatch(*registrar_, "b1", "", false),
              HasError(Code::kFailedPrecondition, HasSubstr("already revoked")));
  EXPECT_TRUE(Verify().clean());
}

TEST_F(BatchTest, RevokingABatchWithoutTheFlagLeavesItsDevicesActive) {
  PublicKey a = NewDeviceKey();
  ASSERT_THAT(Claim("SN-1", a), IsOk());
  ASSERT_OK_AND_ASSIGN(BatchRevocation revoked,
                       registry_->RevokeBatch(*registrar_, "b1", "", false));
  EXPECT_TRUE(revoked.revoked_devices.empty());
  EXPECT_EQ(OpenDirectory()->Lookup(a.DeviceId())->status, DeviceStatus::kActive);
}

TEST_F(BatchTest, RegistrarCanRevokeOneBatchDevice) {
  PublicKey a = NewDeviceKey();
  ASSERT_THAT(Claim("SN-1", a), IsOk());
  DeviceRecord revoked = Revoke(a.DeviceId(), "stolen");
  EXPECT_EQ(revoked.signer, "registrar");
  EXPECT_EQ(OpenDirectory()->Lookup(a.DeviceId())->status, DeviceStatus::kRevoked);
  EXPECT_TRUE(Verify().clean());
}

TEST_F(BatchTest, BatchIdsAreNeverReusedAndLimitsAreChecked) {
  EXPECT_THAT(
      registry_->CreateBatch(*registrar_, BatchRequest{"b1", "acme", 5, clock_.Now() + 60,
                                                       verifier_.Public(), enrollment_.Public()}),
      HasError(Code::kAlreadyExists, HasSubstr("never reused")));
  EXPECT_THAT(
      registry_->CreateBatch(*registrar_, BatchRequest{"b2", "acme", 5, clock_.Now() - 1,
                                                       verifier_.Public(), enrollment_.Public()}),
      HasError(Code::kInvalidArgument, HasSubstr("not in the future")));
  EXPECT_THAT(
      registry_->CreateBatch(*registrar_, BatchRequest{"b2", "acme", 0, clock_.Now() + 60,
                                                       verifier_.Public(), enrollment_.Public()}),
      HasError(Code::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(
      registry_->CreateBatch(*registrar_, BatchRequest{"B 2", "acme", 5, clock_.Now() + 60,
                                                       verifier_.Public(), enrollment_.Public()}),
      HasError(Code::kInvalidArgument, HasSubstr("batch ID")));
  EXPECT_THAT(
      registry_->CreateBatch(*registrar_, BatchRequest{"b2", "acme", 5, clock_.Now() + 60,
                                                       NewDeviceKey(), enrollment_.Public()}),
      HasError(Code::kInvalidArgument, HasSubstr("Ed25519")));
  ASSERT_OK_AND_ASSIGN(std::vector<BatchInfo> all, registry_->ListBatches(registrar_->Public()));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].definition.batch_id, "b1");
}

TEST_F(BatchTest, BatchListedOnlyIfTheTrustedRegistrarSignedIt) {
  PrivateKey stranger = NewEd25519();
  EXPECT_THAT(registry_->ListBatches(stranger.Public()),
              HasError(Code::kDataLoss, HasSubstr("does not verify")));
}

// --- What a stolen enrollment key can do: at most what the batch allows. ---

TEST_F(BatchTest, StolenEnrollmentKeyWithinTheLimitsIsIndistinguishable) {
  AppendAsEnrollmentKey(BatchRecord(NewDeviceKey(), "SN-1"), enrollment_, "b1");
  // The claims index is the server's; a direct writer may not have updated it.
  VerifyReport report = Verify();
  EXPECT_TRUE(HasFinding(report, FindingKind::kDeletedRow, "has no claims row"));
  EXPECT_FALSE(HasFinding(report, FindingKind::kUnauthorisedEntry, ""));
}

TEST_F(BatchTest, StolenEnrollmentKeyCannotExceedTheBatchSize) {
  for (int i = 1; i <= 3; ++i) {
    ASSERT_THAT(Claim("SN-" + std::to_string(i), NewDeviceKey()), IsOk());
  }
  PublicKey extra = NewDeviceKey();
  AppendAsEnrollmentKey(BatchRecord(extra, "SN-4"), enrollment_, "b1");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kUnauthorisedEntry, "exceeds the batch size"));
  EXPECT_THAT(OpenDirectory()->Lookup(extra.DeviceId()),
              HasError(Code::kDataLoss, HasSubstr("exceeds the batch size")));
}

TEST_F(BatchTest, StolenEnrollmentKeyCannotEnrollAfterRevocation) {
  ASSERT_THAT(registry_->RevokeBatch(*registrar_, "b1", "", false), IsOk());
  PublicKey extra = NewDeviceKey();
  AppendAsEnrollmentKey(BatchRecord(extra, "SN-1"), enrollment_, "b1");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kUnauthorisedEntry, "after the batch was revoked"));
  EXPECT_THAT(OpenDirectory()->Lookup(extra.DeviceId()),
              HasError(Code::kDataLoss, HasSubstr("revoked")));
}

TEST_F(BatchTest, StolenEnrollmentKeyCannotEnrollAfterExpiry) {
  clock_.Advance(86400 + 1);
  PublicKey extra = NewDeviceKey();
  AppendAsEnrollmentKey(BatchRecord(extra, "SN-1"), enrollment_, "b1");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kUnauthorisedEntry, "after the batch expired"));
  EXPECT_THAT(OpenDirectory()->Lookup(extra.DeviceId()),
              HasError(Code::kDataLoss, HasSubstr("expired")));
}

TEST_F(BatchTest, StolenEnrollmentKeyCannotReviveARevokedDevice) {
  DeviceRecord victim = Add("SN-V");
  Revoke(victim.device_id, "stolen");
  auto key = PublicKey::FromDer(victim.public_key);
  AppendAsEnrollmentKey(BatchRecord(*key, "SN-V"), enrollment_, "b1");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kUnauthorisedEntry, "not the device's first"));
  EXPECT_THAT(OpenDirectory()->Lookup(victim.device_id),
              HasError(Code::kDataLoss, HasSubstr("not the device's first")));
}

TEST_F(BatchTest, StolenEnrollmentKeyCannotClaimATakenSerial) {
  ASSERT_THAT(Claim("SN-1", NewDeviceKey()), IsOk());
  PublicKey clone = NewDeviceKey();
  AppendAsEnrollmentKey(BatchRecord(clone, "SN-1"), enrollment_, "b1");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kUnauthorisedEntry, "already claimed"));
  EXPECT_THAT(OpenDirectory()->Lookup(clone.DeviceId()),
              HasError(Code::kDataLoss, HasSubstr("already claimed")));
}

TEST_F(BatchTest, KeyNotNamedByTheBatchCannotSignEnrollments) {
  PrivateKey stranger = NewEd25519();
  AppendAsEnrollmentKey(BatchRecord(NewDeviceKey(), "SN-1"), stranger, "b1");
  VerifyReport report = Verify();
  EXPECT_TRUE(HasFinding(report, FindingKind::kBrokenHead, "does not verify"));
  EXPECT_THAT(ServingDirectory::Open(db_path_, registrar_->Public()),
              HasError(Code::kDataLoss, HasSubstr("does not verify")));
}

// --- What a writer of the database file (without keys) can do. ---

TEST_F(BatchTest, AlteredBatchLimitsBreakTheLog) {
  Sql("UPDATE log SET entry = CAST(replace(CAST(entry AS TEXT), 'size=3', 'size=9') AS BLOB) "
      "WHERE seq = 0");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kBrokenLog, "batch definition"));
  EXPECT_THAT(ServingDirectory::Open(db_path_, registrar_->Public()),
              HasError(Code::kDataLoss, HasSubstr("altered")));
  EXPECT_THAT(Claim("SN-1", NewDeviceKey()), HasError(Code::kDataLoss, HasSubstr("batch b1")));
}

TEST_F(BatchTest, DeletedClaimsRowIsFoundAndTheServerStillRefusesTheClone) {
  PublicKey device = NewDeviceKey();
  ASSERT_THAT(Claim("SN-1", device), IsOk());
  Sql("DELETE FROM claims");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kDeletedRow, "has no claims row"));
  // The claim path trusts its index and enrolls the clone; the server's verified view refuses it.
  PublicKey clone = NewDeviceKey();
  ASSERT_THAT(Claim("SN-1", clone), IsOk());
  EXPECT_THAT(OpenDirectory()->Lookup(clone.DeviceId()),
              HasError(Code::kDataLoss, HasSubstr("already claimed")));
  EXPECT_THAT(OpenDirectory()->Lookup(device.DeviceId()), IsOk());
}

TEST_F(BatchTest, EnrollmentRowAlteredBySqlIsRefused) {
  PublicKey device = NewDeviceKey();
  ASSERT_THAT(Claim("SN-1", device), IsOk());
  Sql("UPDATE devices SET owner = 'evil' WHERE device_id = '" + device.DeviceId() + "'");
  EXPECT_TRUE(HasFinding(Verify(), FindingKind::kAlteredRow, "owner"));
  EXPECT_THAT(OpenDirectory()->Lookup(device.DeviceId()),
              HasError(Code::kDataLoss, HasSubstr("altered")));
}

// --- Operator approval. ---

class PendingTest : public BatchTest {};

TEST_F(PendingTest, ApproveMakesAnActiveEngineerRecordAndClearsTheRequest) {
  PublicKey device = NewDeviceKey();
  ASSERT_OK_AND_ASSIGN(PendingDevice p,
                       registry_->RequestApproval(device, "SN-9", "192.0.2.1:5", 100));
  EXPECT_EQ(p.requests, 1u);
  ASSERT_THAT(registry_->RequestApproval(device, "", "192.0.2.1:6", 100), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<PendingDevice> pending, registry_->ListPending());
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].requests, 2u);
  EXPECT_EQ(pending[0].serial, "SN-9");
  // Pending grants nothing: the server's view does not know the device.
  EXPECT_THAT(OpenDirectory()->Lookup(device.DeviceId()), HasError(Code::kNotFound, HasSubstr("")));
  ASSERT_OK_AND_ASSIGN(
      DeviceRecord r,
      registry_->Approve(*registrar_, device.DeviceId().substr(0, 10), ApproveOptions{"acme", ""}));
  EXPECT_EQ(r.status, DeviceStatus::kActive);
  EXPECT_EQ(r.path, ProvisioningPath::kEngineer);
  EXPECT_EQ(r.serial, "SN-9");
  EXPECT_EQ(r.signer, "registrar");
  EXPECT_TRUE(registry_->ListPending()->empty());
  EXPECT_THAT(OpenDirectory()->Lookup(device.DeviceId()), IsOk());
  EXPECT_THAT(registry_->RequestApproval(device, "", "", 100),
              HasError(Code::kAlreadyExists, HasSubstr("already registered")));
}

TEST_F(PendingTest, RejectRemovesTheRequest) {
  PublicKey device = NewDeviceKey();
  ASSERT_THAT(registry_->RequestApproval(device, "SN-9", "", 100), IsOk());
  ASSERT_THAT(registry_->Reject(device.DeviceId()), IsOk());
  EXPECT_TRUE(registry_->ListPending()->empty());
  EXPECT_THAT(registry_->Approve(*registrar_, device.DeviceId(), ApproveOptions{}),
              HasError(Code::kNotFound, HasSubstr("no pending request")));
}

TEST_F(PendingTest, QueueIsBounded) {
  ASSERT_THAT(registry_->RequestApproval(NewDeviceKey(), "", "", 1), IsOk());
  EXPECT_THAT(registry_->RequestApproval(NewDeviceKey(), "", "", 1),
              HasError(Code::kResourceExhausted, HasSubstr("queue is full")));
}

TEST_F(PendingTest, ApproveRefusesARequestWhoseKeyWasSwappedBySql) {
  PublicKey device = NewDeviceKey();
  PublicKey attacker = NewDeviceKey();
  ASSERT_THAT(registry_->RequestApproval(device, "SN-9", "", 100), IsOk());
  Sql("UPDATE pending SET public_key = X'" + HexEncode(attacker.SpkiDer()) + "'");
  EXPECT_THAT(registry_->Approve(*registrar_, device.DeviceId(), ApproveOptions{}),
              HasError(Code::kDataLoss, HasSubstr("another device ID")));
  EXPECT_THAT(registry_->Find(attacker.DeviceId()), HasError(Code::kNotFound, HasSubstr("")));
}

TEST_F(PendingTest, ApproveNeedsASerialAndAnUnambiguousId) {
  PublicKey device = NewDeviceKey();
  ASSERT_THAT(registry_->RequestApproval(device, "", "", 100), IsOk());
  EXPECT_THAT(registry_->Approve(*registrar_, device.DeviceId(), ApproveOptions{}),
              HasError(Code::kInvalidArgument, HasSubstr("--serial")));
  EXPECT_THAT(registry_->Approve(*registrar_, "abc", ApproveOptions{}),
              HasError(Code::kInvalidArgument, HasSubstr("at least 8 hex")));
  ASSERT_THAT(registry_->Approve(*registrar_, device.DeviceId(), ApproveOptions{"", "SN-X"}),
              IsOk());
}

TEST(RegistrySchemaTest, VersionOneDatabaseIsUpgradedOnOpen) {
  ::hallmark::testing::TempDir dir;
  std::string path = dir / "old.db";
  ASSERT_THAT(SqliteStorage::Create(path), IsOk());
  testing::ExecSql(path,
                   "DROP TABLE claims; DROP TABLE clone_alerts; DROP TABLE pending; "
                   "DROP INDEX log_batches; UPDATE meta SET value = '1' WHERE key = "
                   "'schema_version'");
  ASSERT_OK_AND_ASSIGN(auto storage, SqliteStorage::Open(path));
  EXPECT_EQ(QueryInt(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 2);
  EXPECT_EQ(QueryInt(path, "SELECT COUNT(*) FROM claims"), 0);
}

}  // namespace
}  // namespace hallmark::registry
