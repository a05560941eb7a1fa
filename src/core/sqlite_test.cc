#include "core/sqlite.h"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "testing/matchers.h"

namespace hallmark::sqlite {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, Database::Open(path_));
    ASSERT_THAT(db_->Exec("CREATE TABLE devices (id TEXT PRIMARY KEY, serial INTEGER NOT NULL, "
                          "cert BLOB)"),
                IsOk());
  }

  Status Insert(Database& db, std::string_view id, int64_t serial) {
    auto stmt = db.Prepare("INSERT INTO devices (id, serial) VALUES (?1, ?2)");
    if (!stmt) {
      return stmt.error();
    }
    return stmt->Bind(1, id).Bind(2, serial).Run();
  }

  int64_t Count(Database& db) {
    auto stmt = db.Prepare("SELECT COUNT(*) FROM devices");
    EXPECT_THAT(stmt, IsOk());
    if (!stmt) {
      return -1;
    }
    auto row = stmt->Step();
    EXPECT_THAT(row, IsOk());
    return row && *row ? stmt->ColumnInt(0) : -1;
  }

  TempDir dir_;
  std::string path_ = dir_ / "registry.db";
  std::optional<Database> db_;
};

TEST_F(SqliteTest, TransactionRollsBackWhenNotCommitted) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
    ASSERT_THAT(Insert(*db_, "dev-1", 1), IsOk());
    EXPECT_EQ(Count(*db_), 1);
  }
  EXPECT_EQ(Count(*db_), 0);
}

TEST_F(SqliteTest, CommittedTransactionPersists) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
    ASSERT_THAT(Insert(*db_, "dev-1", 1), IsOk());
    ASSERT_THAT(tx.Commit(), IsOk());
  }
  EXPECT_EQ(Count(*db_), 1);
}

TEST_F(SqliteTest, RolledBackTransactionLeavesEarlierCommitsAlone) {
  ASSERT_THAT(Insert(*db_, "dev-1", 1), IsOk());
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
    ASSERT_THAT(Insert(*db_, "dev-2", 2), IsOk());
  }
  EXPECT_EQ(Count(*db_), 1);
}

TEST_F(SqliteTest, MovedTransactionRollsBackOnce) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
    ASSERT_THAT(Insert(*db_, "dev-1", 1), IsOk());
    Transaction moved(std::move(tx));
  }
  EXPECT_EQ(Count(*db_), 0);
  // The connection is usable again: no transaction was left open.
  ASSERT_OK_AND_ASSIGN(Transaction again, Transaction::Begin(*db_));
  ASSERT_THAT(again.Commit(), IsOk());
}

TEST_F(SqliteTest, NestedBeginFails) {
  ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
  EXPECT_THAT(Transaction::Begin(*db_),
              HasError(Code::kInternal, HasSubstr("within a transaction")));
}

TEST_F(SqliteTest, ConstraintViolationIsAlreadyExists) {
  ASSERT_THAT(Insert(*db_, "dev-1", 1), IsOk());
  EXPECT_THAT(Insert(*db_, "dev-1", 2),
              HasError(Code::kAlreadyExists, HasSubstr("UNIQUE constraint failed")));
  EXPECT_EQ(Count(*db_), 1);
}

TEST_F(SqliteTest, ConstraintViolationInsideTransactionThenRollback) {
  ASSERT_THAT(Insert(*db_, "dev-1", 1), IsOk());
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
    ASSERT_THAT(Insert(*db_, "dev-2", 2), IsOk());
    EXPECT_THAT(Insert(*db_, "dev-1", 3), HasError(Code::kAlreadyExists, HasSubstr("UNIQUE")));
  }
  EXPECT_EQ(Count(*db_), 1);
}

TEST_F(SqliteTest, ReopenedDatabaseSeesCommittedData) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
    ASSERT_THAT(Insert(*db_, "committed", 1), IsOk());
    ASSERT_THAT(tx.Commit(), IsOk());
  }
  {
    ASSERT_OK_AND_ASSIGN(Transaction tx, Transaction::Begin(*db_));
    ASSERT_THAT(Insert(*db_, "abandoned", 2), IsOk());
  }
  db_.reset();
  ASSERT_OK_AND_ASSIGN(Database reopened, Database::Open(path_));
  ASSERT_OK_AND_ASSIGN(Statement stmt, reopened.Prepare("SELECT id FROM devices ORDER BY id"));
  ASSERT_OK_AND_ASSIGN(bool row, stmt.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(stmt.ColumnText(0), "committed");
  ASSERT_OK_AND_ASSIGN(bool more, stmt.Step());
  EXPECT_FALSE(more);
}

TEST_F(SqliteTest, OpensInWalModeWithForeignKeys) {
  ASSERT_OK_AND_ASSIGN(Statement journal, db_->Prepare("PRAGMA journal_mode"));
  ASSERT_OK_AND_ASSIGN(bool row, journal.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(journal.ColumnText(0), "wal");
  ASSERT_OK_AND_ASSIGN(Statement fk, db_->Prepare("PRAGMA foreign_keys"));
  ASSERT_OK_AND_ASSIGN(bool fk_row, fk.Step());
  ASSERT_TRUE(fk_row);
  EXPECT_EQ(fk.ColumnInt(0), 1);
}

TEST_F(SqliteTest, BindsAndReadsEveryColumnType) {
  ASSERT_OK_AND_ASSIGN(Statement insert,
                       db_->Prepare("INSERT INTO devices (id, serial, cert) VALUES (?, ?, ?)"));
  const Bytes blob = {0x00, 0xff, 0x30};
  ASSERT_THAT(insert.Bind(1, std::string_view("dev-\xc3\xa9"))
                  .Bind(2, int64_t{1} << 40)
                  .Bind(3, std::span<const uint8_t>(blob))
                  .Run(),
              IsOk());
  insert.Reset();
  ASSERT_THAT(insert.Bind(1, std::string_view("dev-null")).Bind(2, int64_t{-7}).BindNull(3).Run(),
              IsOk());

  ASSERT_OK_AND_ASSIGN(Statement select,
                       db_->Prepare("SELECT id, serial, cert FROM devices ORDER BY serial DESC"));
  ASSERT_OK_AND_ASSIGN(bool first, select.Step());
  ASSERT_TRUE(first);
  EXPECT_EQ(select.ColumnText(0), "dev-\xc3\xa9");
  EXPECT_EQ(select.ColumnInt(1), int64_t{1} << 40);
  EXPECT_EQ(select.ColumnBlob(2), blob);
  EXPECT_FALSE(select.ColumnIsNull(2));
  ASSERT_OK_AND_ASSIGN(bool second, select.Step());
  ASSERT_TRUE(second);
  EXPECT_EQ(select.ColumnInt(1), -7);
  EXPECT_TRUE(select.ColumnIsNull(2));
  EXPECT_TRUE(select.ColumnBlob(2).empty());
}

TEST_F(SqliteTest, ResetClearsBindings) {
  ASSERT_OK_AND_ASSIGN(Statement insert,
                       db_->Prepare("INSERT INTO devices (id, serial) VALUES (?, ?)"));
  ASSERT_THAT(insert.Bind(1, std::string_view("a")).Bind(2, int64_t{1}).Run(), IsOk());
  insert.Reset();
  // serial is NOT NULL; after Reset its binding is NULL again.
  EXPECT_THAT(insert.Bind(1, std::string_view("b")).Run(),
              HasError(Code::kFailedPrecondition, HasSubstr("NOT NULL")));
}

TEST_F(SqliteTest, OtherConstraintViolationsAreFailedPrecondition) {
  ASSERT_THAT(db_->Exec("CREATE TABLE certs (serial INTEGER PRIMARY KEY CHECK (serial > 0), "
                        "device TEXT NOT NULL REFERENCES devices(id))"),
              IsOk());
  ASSERT_THAT(Insert(*db_, "dev-1", 1), IsOk());
  struct Case {
    std::string name;
    std::string sql;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"check", "INSERT INTO certs VALUES (0, 'dev-1')", "CHECK constraint failed"},
           {"not null", "INSERT INTO certs VALUES (1, NULL)", "NOT NULL constraint failed"},
           {"foreign key", "INSERT INTO certs VALUES (1, 'no-such-device')",
            "FOREIGN KEY constraint failed"}}) {
    SCOPED_TRACE(c.name);
    ASSERT_OK_AND_ASSIGN(Statement stmt, db_->Prepare(c.sql));
    EXPECT_THAT(stmt.Run(), HasError(Code::kFailedPrecondition, HasSubstr(c.message)));
  }
  ASSERT_OK_AND_ASSIGN(Statement ok, db_->Prepare("INSERT INTO certs VALUES (1, 'dev-1')"));
  EXPECT_THAT(ok.Run(), IsOk());
  ASSERT_OK_AND_ASSIGN(Statement dup, db_->Prepare("INSERT INTO certs VALUES (1, 'dev-1')"));
  EXPECT_THAT(dup.Run(), HasError(Code::kAlreadyExists, HasSubstr("UNIQUE constraint failed")));
}

TEST_F(SqliteTest, SyntaxErrorIsInternal) {
  EXPECT_THAT(db_->Prepare("SELEC 1"), HasError(Code::kInternal, HasSubstr("syntax error")));
  EXPECT_THAT(db_->Exec("CREATE TABL x (a)"), HasError(Code::kInternal, HasSubstr("syntax")));
}

TEST(SqliteOpenTest, RefusesFileThatIsNotADatabase) {
  TempDir dir;
  std::string path = dir / "not.db";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is definitely not an SQLite database file, it is plain text......", f);
    std::fclose(f);
  }
  EXPECT_THAT(Database::Open(path), HasError(Code::kDataLoss, HasSubstr("not a database")));
}

TEST(SqliteOpenTest, FailsInMissingDirectory) {
  TempDir dir;
  auto db = Database::Open(dir / "missing/x.db");
  EXPECT_THAT(db, HasError(Code::kUnavailable, HasSubstr("cannot open database")));
}

}  // namespace
TEST_F(SqliteTest, EmptyBlobAndEmptyTextAreNotNull) {
  auto insert = db_->Prepare("INSERT INTO devices (id, serial, cert) VALUES (?1, 1, ?2)");
  ASSERT_THAT(insert, IsOk());
  ASSERT_THAT(insert->Bind(1, std::string_view()).Bind(2, std::span<const uint8_t>()).Run(),
              IsOk());
  auto select = db_->Prepare("SELECT id IS NULL, cert IS NULL, length(cert) FROM devices");
  ASSERT_THAT(select, IsOk());
  ASSERT_TRUE(*select->Step());
  EXPECT_EQ(select->ColumnInt(0), 0);
  EXPECT_EQ(select->ColumnInt(1), 0);
  EXPECT_EQ(select->ColumnInt(2), 0);
}

}  // namespace hallmark::sqlite
