// Attacks on the registry database through plain SQL, as someone who can write the file but
// has no registrar key would make them. Each must be found by `verify` with the right category
// and refused by the server's `ServingDirectory`; the untouched twin verifies clean.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <ostream>

#include "core/encoding.h"
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

std::string Blob(std::span<const uint8_t> bytes) { return "X'" + HexEncode(bytes) + "'"; }

std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? std::string("''") : std::string(1, c);
  }
  return out + "'";
}

// InsertRowSql returns an INSERT of `r` into devices.
std::string InsertRowSql(const DeviceRecord& r) {
  return "INSERT INTO devices VALUES (" + Quote(r.device_id) + ", " + Blob(r.public_key) + ", " +
         Quote(std::string(DeviceStatusName(r.status))) + ", " + Quote(r.owner) + ", " +
         Quote(std::string(ProvisioningPathName(r.path))) + ", " + Quote(r.serial) + ", " +
         Quote(r.reason) + ", " + std::to_string(r.created_at) + ", " +
         std::to_string(r.updated_at) + ", " + std::to_string(r.seq) + ", " + Quote(r.signer) +
         ", " + Blob(r.signature) + ")";
}

// ReplaceRowSql overwrites the row of `r.device_id` with `r`.
std::string ReplaceRowSql(const DeviceRecord& r) {
  return "DELETE FROM devices WHERE device_id = " + Quote(r.device_id) + "; " + InsertRowSql(r);
}

// The fixture's registry: a (active, seq 0), b (added seq 1, revoked seq 3), c (active, seq 2);
// heads of sizes 0, 1, 2, 3, 4.
class TamperTest : public testing::RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    a_ = Add("SN-A");
    b_active_ = Add("SN-B");
    c_ = Add("SN-C");
    b_ = Revoke(b_active_.device_id, "stolen");
    auto dir = ServingDirectory::Open(db_path_, registrar_->Public());
    ASSERT_THAT(dir, IsOk());
    running_ = std::move(*dir);
  }

  VerifyReport Verify() {
    auto report = registry_->Verify(registrar_->Public());
    EXPECT_THAT(report, IsOk());
    return report ? *report : VerifyReport{};
  }

  // ForgedRecord returns a well-formed record for a fresh key, signed by a key that is not the
  // registrar's.
  DeviceRecord ForgedRecord(uint64_t seq) {
    PublicKey key = testing::NewDeviceKey();
    DeviceRecord r;
    r.device_id = key.DeviceId();
    r.public_key = key.SpkiDer();
    r.status = DeviceStatus::kActive;
    r.owner = "acme";
    r.path = ProvisioningPath::kManual;
    r.serial = "SN-EVIL";
    r.created_at = clock_.Now();
    r.updated_at = clock_.Now();
    r.seq = seq;
    r.signer = "registrar";
    auto attacker = PrivateKey::Generate(KeyType::kEd25519);
    EXPECT_THAT(SignRecord(*attacker, &r), IsOk());
    forged_ = r;
    return r;
  }

  DeviceRecord a_, b_active_, b_, c_;
  DeviceRecord forged_;                        // the last record ForgedRecord made
  std::unique_ptr<ServingDirectory> running_;  // opened before the attack
};

TEST_F(TamperTest, UntouchedRegistryVerifiesCleanAndServesEveryDevice) {
  VerifyReport report = Verify();
  EXPECT_TRUE(report.clean()) << report.findings[0].message;
  EXPECT_EQ(report.devices, 3u);
  EXPECT_EQ(report.log_entries, 4u);
  EXPECT_EQ(report.heads, 5u);
  ASSERT_TRUE(report.newest_head.has_value());
  EXPECT_EQ(report.newest_head->tree_size, 4u);
  for (const DeviceRecord& r : {a_, b_, c_}) {
    ASSERT_OK_AND_ASSIGN(DeviceRecord served, running_->Lookup(r.device_id));
    EXPECT_EQ(served, r);
  }
  EXPECT_EQ(running_->Lookup(b_.device_id)->status, DeviceStatus::kRevoked);
  EXPECT_THAT(running_->Refresh(), IsOk());
}

// Attack is one row of the table: SQL to run, what verify must report, and what the server
// must do afterwards.
struct Attack {
  std::string test_name;
  std::function<std::string(TamperTest&)> sql;
  FindingKind kind;
  std::string finding;  // substring of the finding's message
  // check runs against a directory opened before the attack (`running`) and the database.
  std::function<void(TamperTest&, ServingDirectory& running)> check;
};

void PrintTo(const Attack& c, std::ostream* os) { *os << c.test_name; }

class TamperTableTest : public TamperTest, public ::testing::WithParamInterface<Attack> {
 public:
  // Expose the fixture to the table's lambdas.
  using TamperTest::a_;
  using TamperTest::b_;
  using TamperTest::b_active_;
  using TamperTest::c_;
  using TamperTest::db_path_;
  using TamperTest::forged_;
  using TamperTest::ForgedRecord;
  using TamperTest::registrar_;
};

// LookupFails expects a fresh directory and the running one to refuse `id` with kDataLoss.
void LookupFails(TamperTest& t, ServingDirectory& running, const std::string& id,
                 const std::string& why) {
  auto& f = static_cast<TamperTableTest&>(t);
  EXPECT_THAT(running.Lookup(id), HasError(Code::kDataLoss, HasSubstr(why)));
  auto fresh = ServingDirectory::Open(f.db_path_, f.registrar_->Public());
  ASSERT_THAT(fresh, IsOk());
  EXPECT_THAT((*fresh)->Lookup(id), HasError(Code::kDataLoss, HasSubstr(why)));
}

// OpenFails expects a fresh directory to refuse the database.
void OpenFails(TamperTest& t, const std::string& why) {
  auto& f = static_cast<TamperTableTest&>(t);
  EXPECT_THAT(ServingDirectory::Open(f.db_path_, f.registrar_->Public()),
              HasError(Code::kDataLoss, HasSubstr(why)));
}

TEST_P(TamperTableTest, IsFoundByVerifyAndRefusedByTheServer) {
  const Attack& attack = GetParam();
  Sql(attack.sql(*this));
  VerifyReport report = Verify();
  EXPECT_FALSE(report.clean());
  bool found = false;
  for (const Finding& f : report.findings) {
    if (f.kind == attack.kind && f.message.find(attack.finding) != std::string::npos) {
      found = true;
    }
  }
  std::string all;
  for (const Finding& f : report.findings) {
    all += std::string(FindingKindName(f.kind)) + ": " + f.message + "\n";
  }
  EXPECT_TRUE(found) << "expected " << FindingKindName(attack.kind) << " '" << attack.finding
                     << "', got:\n"
                     << all;
  attack.check(*this, *running_);
}

INSTANTIATE_TEST_SUITE_P(
    Attacks, TamperTableTest,
    ::testing::ValuesIn(std::vector<Attack>{
        {"InsertedRowWithBogusSignature",
         [](TamperTest& fx) {
           DeviceRecord r = static_cast<TamperTableTest&>(fx).ForgedRecord(1);
           return InsertRowSql(r);
         },
         FindingKind::kInsertedRow, "no validly signed log entry",
         [](TamperTest& fx, ServingDirectory& running) {
           LookupFails(fx, running, static_cast<TamperTableTest&>(fx).forged_.device_id,
                       "inserted");
         }},
        {"InsertedRowReusingAnotherDevicesSignature",
         [](TamperTest& fx) {
           auto& f = static_cast<TamperTableTest&>(fx);
           DeviceRecord r = f.ForgedRecord(f.a_.seq);
           r.signature = f.a_.signature;
           return InsertRowSql(r);
         },
         FindingKind::kInsertedRow, "inserted",
         [](TamperTest& fx, ServingDirectory& running) {
           LookupFails(fx, running, static_cast<TamperTableTest&>(fx).forged_.device_id,
                       "inserted");
         }},
        {"RevokedRowRolledBackToItsOlderSignedActiveRecord",
         [](TamperTest& fx) { return ReplaceRowSql(static_cast<TamperTableTest&>(fx).b_active_); },
         FindingKind::kRolledBackRow, "rolled back to its older signed record from log entry 1",
         [](TamperTest& fx, ServingDirectory& running) {
           LookupFails(fx, running, static_cast<TamperTableTest&>(fx).b_.device_id, "rolled back");
         }},
        {"RevokedRowFlippedToActive",
         [](TamperTest& fx) {
           return "UPDATE devices SET status = 'active' WHERE device_id = '" +
                  static_cast<TamperTableTest&>(fx).b_.device_id + "'";
         },
         FindingKind::kAlteredRow, "in: status",
         [](TamperTest& fx, ServingDirectory& running) {
           LookupFails(fx, running, static_cast<TamperTableTest&>(fx).b_.device_id, "altered");
         }},
        {"OwnerAltered",
         [](TamperTest& fx) {
           return "UPDATE devices SET owner = 'mallory' WHERE device_id = '" +
                  static_cast<TamperTableTest&>(fx).a_.device_id + "'";
         },
         FindingKind::kAlteredRow, "in: owner",
         [](TamperTest& fx, ServingDirectory& running) {
           LookupFails(fx, running, static_cast<TamperTableTest&>(fx).a_.device_id, "altered");
         }},
        {"SignatureColumnAltered",
         [](TamperTest& fx) {
           return "UPDATE devices SET signature = zeroblob(64) WHERE device_id = '" +
                  static_cast<TamperTableTest&>(fx).c_.device_id + "'";
         },
         FindingKind::kAlteredRow, "signature column was altered",
         [](TamperTest& fx, ServingDirectory& running) {
           LookupFails(fx, running, static_cast<TamperTableTest&>(fx).c_.device_id,
                       "signature does not verify");
         }},
        {"RowDeleted",
         [](TamperTest& fx) {
           return "DELETE FROM devices WHERE device_id = '" +
                  static_cast<TamperTableTest&>(fx).a_.device_id + "'";
         },
         FindingKind::kDeletedRow, "but no row: deleted",
         [](TamperTest& fx, ServingDirectory& running) {
           LookupFails(fx, running, static_cast<TamperTableTest&>(fx).a_.device_id, "deleted");
         }},
        {"LogRowDeleted", [](TamperTest&) { return std::string("DELETE FROM log WHERE seq = 1"); },
         FindingKind::kBrokenLog, "log entry 1 is missing",
         [](TamperTest& fx, ServingDirectory&) { OpenFails(fx, "log entry 1 is missing"); }},
        {"LastLogRowDeleted",
         [](TamperTest&) { return std::string("DELETE FROM log WHERE seq = 3"); },
         FindingKind::kBrokenLog, "the log ends after 3 entries",
         [](TamperTest& fx, ServingDirectory&) { OpenFails(fx, "the log ends after 3 entries"); }},
        {"LogRowAltered",
         [](TamperTest&) {
           return std::string(
               "UPDATE log SET entry = CAST(replace(CAST(entry AS TEXT), 'owner=acme', "
               "'owner=evil') AS BLOB) WHERE seq = 0");
         },
         FindingKind::kBrokenLog, "do not hash to the root signed in tree head",
         [](TamperTest& fx, ServingDirectory&) { OpenFails(fx, "do not hash to the root"); }},
        {"LogRowReplacedByACopyOfAnotherEntry",
         [](TamperTest&) {
           return std::string(
               "UPDATE log SET entry = (SELECT entry FROM log WHERE seq = 1), signature = "
               "(SELECT signature FROM log WHERE seq = 1) WHERE seq = 3");
         },
         FindingKind::kBrokenLog, "holds the record signed for entry 1",
         [](TamperTest& fx, ServingDirectory&) { OpenFails(fx, "do not hash to the root"); }},
        {"LogRowInsertedAfterTheHead",
         [](TamperTest& fx) {
           DeviceRecord r = static_cast<TamperTableTest&>(fx).ForgedRecord(4);
           auto text = CanonicalRecord(r);
           return "INSERT INTO log VALUES (4, " + Blob(AsBytes(*text)) + ", " + Blob(r.signature) +
                  "); " + InsertRowSql(r);
         },
         FindingKind::kBrokenLog, "signature that does not verify: altered or inserted",
         [](TamperTest& fx, ServingDirectory& running) {
           // Entries beyond the newest signed head are invisible to the server.
           auto& f = static_cast<TamperTableTest&>(fx);
           EXPECT_THAT(running.Refresh(), IsOk());
           auto fresh = ServingDirectory::Open(f.db_path_, f.registrar_->Public());
           ASSERT_THAT(fresh, IsOk());
           EXPECT_EQ((*fresh)->head().tree_size, 4u);
           EXPECT_EQ((*fresh)->device_count(), 3u);
         }},
        {"NewestHeadReplacedByAnOlderOne",
         [](TamperTest&) {
           return std::string(
               "DELETE FROM tree_heads WHERE id = (SELECT MAX(id) FROM tree_heads); "
               "INSERT INTO tree_heads(tree_size, root_hash, timestamp, signer, signature, "
               "compact_range) SELECT tree_size, root_hash, timestamp, signer, signature, "
               "compact_range FROM tree_heads WHERE tree_size = 2");
         },
         FindingKind::kRolledBackHead, "smaller than the earlier tree head",
         [](TamperTest& fx, ServingDirectory& running) {
           EXPECT_THAT(running.Refresh(), HasError(Code::kDataLoss, HasSubstr("rolled back")));
           OpenFails(fx, "rolled back");
         }},
        {"NewestHeadDeleted",
         [](TamperTest&) {
           return std::string("DELETE FROM tree_heads WHERE id = (SELECT MAX(id) FROM tree_heads)");
         },
         FindingKind::kRolledBackHead, "no signed tree head covers them",
         [](TamperTest& fx, ServingDirectory& running) {
           auto& f = static_cast<TamperTableTest&>(fx);
           EXPECT_THAT(running.Refresh(), HasError(Code::kDataLoss, HasSubstr("rolled back")));
           // A server that restarts keeps the newest head it saw and passes it back in.
           ServingDirectory::Options options;
           options.trusted_head = running.head();
           EXPECT_THAT(ServingDirectory::Open(f.db_path_, f.registrar_->Public(), options),
                       HasError(Code::kDataLoss, HasSubstr("rolled back")));
         }},
        {"HeadForgedWithGarbageSignature",
         [](TamperTest&) {
           return std::string(
               "INSERT INTO tree_heads(tree_size, root_hash, timestamp, signer, signature, "
               "compact_range) SELECT tree_size, root_hash, timestamp + 1, signer, "
               "zeroblob(64), compact_range FROM tree_heads WHERE id = (SELECT MAX(id) FROM "
               "tree_heads)");
         },
         FindingKind::kBrokenHead, "does not verify with the registrar key: forged",
         [](TamperTest& fx, ServingDirectory& running) {
           EXPECT_THAT(running.Refresh(), HasError(Code::kDataLoss, HasSubstr("forged")));
           OpenFails(fx, "forged");
         }},
        {"HeadAndLogForgedWithTheAttackersOwnKey",
         [](TamperTest& fx) {
           // The attacker appends a forged entry and a head over it that is correct in every
           // respect except that the attacker, not the registrar, signed it.
           auto& f = static_cast<TamperTableTest&>(fx);
           DeviceRecord r = f.ForgedRecord(4);
           auto text = CanonicalRecord(r);
           auto attacker = PrivateKey::Generate(KeyType::kEd25519);
           auto reg = SqliteStorage::Open(f.db_path_);
           auto reader = (*reg)->Read();
           auto newest = (*reader)->NewestHead();
           auto range = CompactRange::FromBytes(4, (*newest)->compact_range);
           range->Append(LeafHash(AsBytes(*text)));
           TreeHead head{5, range->Root(), 1, "registrar", {}};
           EXPECT_THAT(SignTreeHead(*attacker, &head), IsOk());
           return "INSERT INTO log VALUES (4, " + Blob(AsBytes(*text)) + ", " + Blob(r.signature) +
                  "); " + InsertRowSql(r) +
                  "; INSERT INTO tree_heads(tree_size, root_hash, timestamp, signer, "
                  "signature, compact_range) VALUES (5, " +
                  Blob(head.root_hash) + ", 1, 'registrar', " + Blob(head.signature) + ", " +
                  Blob(range->Serialize()) + ")";
         },
         FindingKind::kBrokenHead, "tree head #6 (size 5) has a signature that does not verify",
         [](TamperTest& fx, ServingDirectory& running) {
           EXPECT_THAT(running.Refresh(), HasError(Code::kDataLoss, HasSubstr("forged")));
           OpenFails(fx, "forged");
         }},
    }),
    [](const ::testing::TestParamInfo<Attack>& row) { return row.param.test_name; });

TEST_F(TamperTest, UnknownDeviceIsNotFoundNotTampering) {
  std::string id = testing::NewDeviceKey().DeviceId();
  EXPECT_THAT(running_->Lookup(id), HasError(Code::kNotFound, HasSubstr(id)));
  EXPECT_THAT(running_->Lookup("XYZ"), HasError(Code::kInvalidArgument, HasSubstr("'XYZ'")));
}

TEST_F(TamperTest, VerifyAgainstTheWrongRegistrarKeyFindsEverythingForged) {
  auto other = PrivateKey::Generate(KeyType::kEd25519);
  auto report = registry_->Verify(other->Public());
  ASSERT_THAT(report, IsOk());
  EXPECT_FALSE(report->clean());
  EXPECT_EQ(report->findings[0].kind, FindingKind::kBrokenHead);
  EXPECT_THAT(ServingDirectory::Open(db_path_, other->Public()),
              HasError(Code::kDataLoss, HasSubstr("does not verify")));
}

TEST_F(TamperTest, VerifyWithATrustedHeadFindsAWholeDatabaseRollback) {
  // An attacker restores a copy of the database from before the revocation: everything in it
  // is genuine, so only a head kept from before can tell.
  ASSERT_OK_AND_ASSIGN(StoredHead newest, registry_->NewestHead());
  Sql("DELETE FROM log WHERE seq = 3; DELETE FROM tree_heads WHERE tree_size = 4; " +
      ReplaceRowSql(b_active_));
  VerifyReport plain = Verify();
  EXPECT_TRUE(plain.clean()) << plain.findings[0].message;
  VerifyOptions options;
  options.trusted_head = newest.head;
  auto report = registry_->Verify(registrar_->Public(), options);
  ASSERT_THAT(report, IsOk());
  ASSERT_FALSE(report->clean());
  EXPECT_EQ(report->findings[0].kind, FindingKind::kRolledBackHead);
  EXPECT_THAT(report->findings[0].message, HasSubstr("smaller than the trusted head's 4"));
}

}  // namespace
}  // namespace hallmark::registry
