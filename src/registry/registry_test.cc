#include "registry/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "core/file.h"
#include "registry/merkle.h"
#include "registry/record.h"
#include "registry/sqlite_storage.h"
#include "registry/testing/registry_fixture.h"
#include "testing/matchers.h"

namespace hallmark::registry {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using testing::ExecSql;
using ::testing::HasSubstr;
using testing::NewDeviceKey;
using ::testing::Not;
using testing::QueryInt;

class RegistryFacadeTest : public testing::RegistryTest {
 protected:
  int64_t LogRows() const { return QueryInt(db_path_, "SELECT COUNT(*) FROM log"); }
  int64_t HeadRows() const { return QueryInt(db_path_, "SELECT COUNT(*) FROM tree_heads"); }
  int64_t DeviceRows() const { return QueryInt(db_path_, "SELECT COUNT(*) FROM devices"); }
};

TEST_F(RegistryFacadeTest, CreateStoresOnlyThePublicKeyAndSignsAnEmptyHead) {
  EXPECT_EQ(registry_->stored_registrar_key(), registrar_->Public());
  ASSERT_OK_AND_ASSIGN(StoredHead head, registry_->NewestHead());
  EXPECT_EQ(head.head.tree_size, 0u);
  EXPECT_EQ(head.head.root_hash, EmptyTreeHash());
  EXPECT_THAT(VerifyTreeHead(registrar_->Public(), head.head), IsOk());
  // Committed pages may still be in the write-ahead log: look at both files.
  ASSERT_OK_AND_ASSIGN(std::string main_file, ReadFile(db_path_, 1 << 24));
  ASSERT_OK_AND_ASSIGN(std::string wal_file, ReadFile(db_path_ + "-wal", 1 << 24));
  std::string db = main_file + wal_file;
  EXPECT_THAT(db, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(db, HasSubstr("BEGIN PUBLIC KEY"));
}

TEST_F(RegistryFacadeTest, CreateRefusesAnExistingFileAndLeavesItAlone) {
  ASSERT_OK_AND_ASSIGN(std::string before, ReadFile(db_path_, 1 << 24));
  EXPECT_THAT(Registry::Create(db_path_, *registrar_, &clock_),
              HasError(Code::kAlreadyExists, HasSubstr("refusing to overwrite")));
  ASSERT_OK_AND_ASSIGN(std::string after, ReadFile(db_path_, 1 << 24));
  EXPECT_EQ(before, after);
}

TEST(RegistryOpenTest, MissingDatabaseIsNotFoundAndIsNotCreated) {
  TempDir dir;
  FakeClock clock(1);
  EXPECT_THAT(Registry::Open(dir / "none.db", &clock),
              HasError(Code::kNotFound, HasSubstr("registry init")));
  EXPECT_FALSE(FileExists(dir / "none.db"));
}

TEST(RegistryOpenTest, OtherFilesAreNotRegistries) {
  TempDir dir;
  FakeClock clock(1);
  ExecSql(dir / "other.db", "CREATE TABLE t (x INTEGER)");
  EXPECT_THAT(Registry::Open(dir / "other.db", &clock),
              HasError(Code::kFailedPrecondition, HasSubstr("not a hallmark registry")));
  ASSERT_THAT(WriteFileAtomic(dir / "garbage.db", std::string(4096, 'x'), 0600), IsOk());
  EXPECT_THAT(Registry::Open(dir / "garbage.db", &clock),
              HasError(Code::kFailedPrecondition, HasSubstr("not a hallmark registry")));
}

TEST_F(RegistryFacadeTest, AddSignsARecordWithItsSeqAndSignsANewHead) {
  PublicKey key = NewDeviceKey();
  clock_.Advance(5);
  ASSERT_OK_AND_ASSIGN(DeviceRecord r,
                       registry_->Add(*registrar_, AddRequest{key, "SN-1", "acme"}));
  EXPECT_EQ(r.device_id, key.DeviceId());
  EXPECT_EQ(r.public_key, key.SpkiDer());
  EXPECT_EQ(r.status, DeviceStatus::kActive);
  EXPECT_EQ(r.path, ProvisioningPath::kManual);
  EXPECT_EQ(r.seq, 0u);
  EXPECT_EQ(r.signer, "registrar");
  EXPECT_EQ(r.created_at, clock_.Now());
  EXPECT_THAT(VerifyRecord(registrar_->Public(), r), IsOk());
  EXPECT_THAT(registry_->CheckDevice(r, registrar_->Public()), IsOk());
  ASSERT_OK_AND_ASSIGN(DeviceRecord stored, registry_->Find(key.DeviceId()));
  EXPECT_EQ(stored, r);

  DeviceRecord second = Add("SN-2");
  EXPECT_EQ(second.seq, 1u);
  ASSERT_OK_AND_ASSIGN(StoredHead head, registry_->NewestHead());
  EXPECT_EQ(head.head.tree_size, 2u);
  EXPECT_THAT(VerifyTreeHead(registrar_->Public(), head.head), IsOk());
  EXPECT_EQ(HeadRows(), 3);
}

TEST_F(RegistryFacadeTest, AddTwiceIsAlreadyExistsAndChangesNothing) {
  PublicKey key = NewDeviceKey(KeyType::kEd25519);
  ASSERT_THAT(registry_->Add(*registrar_, AddRequest{key, "SN-1", "acme"}), IsOk());
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{key, "SN-2", "acme"}),
              HasError(Code::kAlreadyExists, HasSubstr("serial 'SN-1'")));
  EXPECT_EQ(LogRows(), 1);
  EXPECT_EQ(HeadRows(), 2);
}

TEST_F(RegistryFacadeTest, AddRefusesBadSerialsAndOwnersWithoutWriting) {
  PublicKey key = NewDeviceKey();
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{key, "SN\n1", ""}),
              HasError(Code::kInvalidArgument, HasSubstr("serial contains control character")));
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{key, "", ""}),
              HasError(Code::kInvalidArgument, HasSubstr("serial is empty")));
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{key, "SN-1", "a\tb"}),
              HasError(Code::kInvalidArgument, HasSubstr("owner contains control character")));
  EXPECT_EQ(LogRows(), 0);
  EXPECT_EQ(HeadRows(), 1);
}

TEST_F(RegistryFacadeTest, AnotherRegistrarKeyIsRefused) {
  auto other = RegistrarKey::FromPrivateKey(*PrivateKey::Generate(KeyType::kEd25519));
  ASSERT_THAT(other, IsOk());
  EXPECT_THAT(registry_->Add(*other, AddRequest{NewDeviceKey(), "SN-1", ""}),
              HasError(Code::kPermissionDenied, HasSubstr("is not the registrar of")));
  EXPECT_EQ(LogRows(), 0);
}

TEST_F(RegistryFacadeTest, RevokeIsSignedWithReasonAndFinal) {
  DeviceRecord a = Add("SN-1");
  clock_.Advance(10);
  ASSERT_OK_AND_ASSIGN(DeviceRecord r,
                       registry_->Revoke(*registrar_, a.device_id, "key compromise"));
  EXPECT_EQ(r.status, DeviceStatus::kRevoked);
  EXPECT_EQ(r.reason, "key compromise");
  EXPECT_EQ(r.seq, 1u);
  EXPECT_EQ(r.created_at, a.created_at);
  EXPECT_EQ(r.updated_at, clock_.Now());
  EXPECT_THAT(registry_->CheckDevice(r, registrar_->Public()), IsOk());

  EXPECT_THAT(registry_->Revoke(*registrar_, a.device_id, "again"),
              HasError(Code::kFailedPrecondition, HasSubstr("already revoked")));
  auto key = PublicKey::FromDer(a.public_key);
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{*key, "SN-1", "acme"}),
              HasError(Code::kAlreadyExists, HasSubstr("status revoked")));
  ASSERT_OK_AND_ASSIGN(auto history, registry_->History(a.device_id));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].seq, 0u);
  EXPECT_EQ(history[1].seq, 1u);
}

TEST_F(RegistryFacadeTest, RevokeTakesUppercaseIdsAndRefusesUnknownOnes) {
  DeviceRecord a = Add("SN-1");
  std::string upper = a.device_id;
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  EXPECT_THAT(registry_->Revoke(*registrar_, upper, ""), IsOk());
  EXPECT_THAT(registry_->Revoke(*registrar_, std::string(64, 'a'), ""),
              HasError(Code::kNotFound, HasSubstr(std::string(64, 'a'))));
  EXPECT_THAT(registry_->Revoke(*registrar_, "abc", ""),
              HasError(Code::kInvalidArgument, HasSubstr("not a device ID")));
}

// --- The registrar never signs on top of state it did not sign ---

TEST_F(RegistryFacadeTest, RevokeRefusesARowAlteredBySql) {
  DeviceRecord a = Add("SN-1");
  Sql("UPDATE devices SET owner = 'evil' WHERE device_id = '" + a.device_id + "'");
  EXPECT_THAT(registry_->Revoke(*registrar_, a.device_id, ""),
              HasError(Code::kDataLoss, HasSubstr("registry verify")));
  EXPECT_EQ(LogRows(), 1);
}

TEST_F(RegistryFacadeTest, WritesRefuseAForgedNewestHead) {
  Add("SN-1");
  Sql("UPDATE tree_heads SET signature = zeroblob(64) WHERE id = (SELECT MAX(id) FROM "
      "tree_heads)");
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{NewDeviceKey(), "SN-2", ""}),
              HasError(Code::kDataLoss, HasSubstr("does not verify with the registrar key")));
  EXPECT_EQ(LogRows(), 1);
}

TEST_F(RegistryFacadeTest, WritesRefuseALogLongerThanItsHead) {
  DeviceRecord a = Add("SN-1");
  Sql("INSERT INTO log(seq, entry, signature) SELECT 1, entry, signature FROM log WHERE seq = 0");
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{NewDeviceKey(), "SN-2", ""}),
              HasError(Code::kDataLoss, HasSubstr("has 2 entries but its newest signed head "
                                                  "covers 1")));
}

TEST_F(RegistryFacadeTest, AddRefusesToReviveADeviceWhoseRowWasDeleted) {
  DeviceRecord a = Add("SN-1");
  Revoke(a.device_id);
  Sql("DELETE FROM devices WHERE device_id = '" + a.device_id + "'");
  auto key = PublicKey::FromDer(a.public_key);
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{*key, "SN-1", "acme"}),
              HasError(Code::kDataLoss, HasSubstr("but no row")));
  EXPECT_EQ(LogRows(), 2);
}

TEST_F(RegistryFacadeTest, AFailedCommitLeavesNothingBehind) {
  Sql("CREATE TRIGGER fail BEFORE INSERT ON tree_heads BEGIN SELECT RAISE(ABORT, 'injected'); "
      "END;");
  EXPECT_THAT(registry_->Add(*registrar_, AddRequest{NewDeviceKey(), "SN-1", ""}),
              HasError(Code::kFailedPrecondition, HasSubstr("injected")));
  EXPECT_EQ(LogRows(), 0);
  EXPECT_EQ(DeviceRows(), 0);
  Sql("DROP TRIGGER fail");
  EXPECT_EQ(Add("SN-1").seq, 0u);
}

TEST_F(RegistryFacadeTest, TwoConnectionsAppendWithoutConflict) {
  ASSERT_OK_AND_ASSIGN(Registry other, Registry::Open(db_path_, &clock_));
  Add("SN-1");
  ASSERT_OK_AND_ASSIGN(DeviceRecord b,
                       other.Add(*registrar_, AddRequest{NewDeviceKey(), "SN-2", ""}));
  EXPECT_EQ(b.seq, 1u);
  EXPECT_EQ(Add("SN-3").seq, 2u);
  ASSERT_OK_AND_ASSIGN(VerifyReport report, registry_->Verify(registrar_->Public()));
  EXPECT_TRUE(report.clean()) << report.findings[0].message;
}

TEST_F(RegistryFacadeTest, ProofsVerifyAgainstSignedHeads) {
  for (int i = 0; i < 5; ++i) {
    Add("SN-" + std::to_string(i));
  }
  ASSERT_OK_AND_ASSIGN(StoredHead head, registry_->NewestHead());
  ASSERT_EQ(head.head.tree_size, 5u);
  for (uint64_t seq = 0; seq < 5; ++seq) {
    ASSERT_OK_AND_ASSIGN(auto proof, registry_->InclusionProof(seq, 5));
    auto r = SqliteStorage::Open(db_path_);
    auto reader = (*r)->Read();
    auto entry = (*reader)->GetLogEntry(seq);
    ASSERT_TRUE(entry.has_value() && entry->has_value());
    EXPECT_THAT(VerifyInclusion(LeafHash((*entry)->entry), seq, 5, proof, head.head.root_hash),
                IsOk());
  }
  std::vector<TreeHead> heads;
  {
    auto r = SqliteStorage::Open(db_path_);
    auto reader = (*r)->Read();
    ASSERT_THAT((*reader)->ScanHeads(0,
                                     [&heads](StoredHead&& h) -> Status {
                                       heads.push_back(h.head);
                                       return OkStatus();
                                     }),
                IsOk());
  }
  ASSERT_EQ(heads.size(), 6u);
  for (const TreeHead& old : heads) {
    ASSERT_OK_AND_ASSIGN(auto proof, registry_->ConsistencyProof(old.tree_size, 5));
    EXPECT_THAT(VerifyConsistency(old.tree_size, 5, old.root_hash, head.head.root_hash, proof),
                IsOk());
  }
  EXPECT_THAT(registry_->InclusionProof(5, 6), HasError(Code::kOutOfRange, HasSubstr("5")));
}

TEST_F(RegistryFacadeTest, ForEachDeviceFiltersByStatusInIdOrder) {
  DeviceRecord a = Add("SN-1");
  DeviceRecord b = Add("SN-2");
  Add("SN-3");
  Revoke(b.device_id);
  std::vector<std::string> all;
  ASSERT_THAT(registry_->ForEachDevice(std::nullopt,
                                       [&all](const DeviceRecord& r) -> Status {
                                         all.push_back(r.device_id);
                                         return OkStatus();
                                       }),
              IsOk());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  std::vector<std::string> revoked;
  ASSERT_THAT(registry_->ForEachDevice(DeviceStatus::kRevoked,
                                       [&revoked](const DeviceRecord& r) -> Status {
                                         revoked.push_back(r.device_id);
                                         return OkStatus();
                                       }),
              IsOk());
  EXPECT_EQ(revoked, std::vector<std::string>{b.device_id});
}

// --- Registrar key files ---

TEST(RegistrarKeyTest, CreateWritesMode0600AndRefusesToOverwrite) {
  TempDir dir;
  const std::string path = dir / "registrar.key";
  ASSERT_OK_AND_ASSIGN(RegistrarKey key, RegistrarKey::Create(path, std::nullopt));
  EXPECT_THAT(CheckPrivateFile(path), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string pem, ReadFile(path));
  EXPECT_THAT(RegistrarKey::Create(path, std::nullopt),
              HasError(Code::kAlreadyExists, HasSubstr("refusing to overwrite")));
  EXPECT_EQ(*ReadFile(path), pem);
  ASSERT_OK_AND_ASSIGN(RegistrarKey loaded, RegistrarKey::Load(path, std::nullopt));
  EXPECT_EQ(loaded.Public(), key.Public());
}

TEST(RegistrarKeyTest, PassphraseEncryptsTheKey) {
  TempDir dir;
  const std::string path = dir / "registrar.key";
  ASSERT_THAT(RegistrarKey::Create(path, SecretBytes(std::string_view("correct horse"))), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string pem, ReadFile(path));
  EXPECT_THAT(pem, HasSubstr("ENCRYPTED PRIVATE KEY"));
  EXPECT_THAT(RegistrarKey::Load(path, std::nullopt),
              HasError(Code::kFailedPrecondition, HasSubstr("--passphrase-file")));
  EXPECT_THAT(RegistrarKey::Load(path, SecretBytes(std::string_view("wrong"))),
              HasError(Code::kPermissionDenied, HasSubstr(path)));
  EXPECT_THAT(RegistrarKey::Load(path, SecretBytes(std::string_view("correct horse"))), IsOk());
}

TEST(RegistrarKeyTest, LoadRefusesKeysOthersCanReadAndNonEd25519Keys) {
  TempDir dir;
  const std::string path = dir / "registrar.key";
  ASSERT_THAT(RegistrarKey::Create(path, std::nullopt), IsOk());
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_THAT(RegistrarKey::Load(path, std::nullopt),
              HasError(Code::kPermissionDenied, HasSubstr("0644")));
  auto p256 = PrivateKey::Generate(KeyType::kP256);
  auto pem = p256->ToPem(SecretAccess::Grant());
  ASSERT_THAT(WriteFileAtomic(dir / "p256.key", pem->view(SecretAccess::Grant()), 0600), IsOk());
  EXPECT_THAT(RegistrarKey::Load(dir / "p256.key", std::nullopt),
              HasError(Code::kInvalidArgument, HasSubstr("must be Ed25519, not EC P-256")));
  EXPECT_THAT(RegistrarKey::Load(dir / "missing.key", std::nullopt),
              HasError(Code::kNotFound, HasSubstr("does not exist")));
}

}  // namespace
}  // namespace hallmark::registry
