#include "core/sqlite.h"

#include <sqlite3.h>

namespace hallmark::sqlite {
namespace {

Error SqliteError(sqlite3* db, int rc, std::string_view what) {
  Code code = Code::kUnavailable;
  int primary = rc & 0xff;
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
    code = Code::kAlreadyExists;
  } else if (primary == SQLITE_CONSTRAINT) {
    code = Code::kFailedPrecondition;  // CHECK, NOT NULL, foreign key or trigger refused it
  } else if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    code = Code::kDataLoss;
  } else if (primary == SQLITE_MISUSE || primary == SQLITE_ERROR || primary == SQLITE_RANGE) {
    code = Code::kInternal;
  }
  std::string msg =
      std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  return Error(code, msg);
}

}  // namespace

// --- Statement ---

Statement::Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  // A null data pointer would bind NULL; an empty string is not NULL.
  sqlite3_bind_text(stmt_, index, text.data() != nullptr ? text.data() : "",
                    static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::Bind(int index, std::span<const uint8_t> blob) {
  if (blob.empty()) {
    // sqlite3_bind_blob with a null pointer binds NULL; an empty blob is not NULL.
    sqlite3_bind_zeroblob(stmt_, index, 0);
  } else {
    sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  }
  return *this;
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return SqliteError(db_, rc, "database statement failed");
}

Status Statement::Run() {
  for (;;) {
    auto r = Step();
    if (!r) {
      return r.error();
    }
    if (!*r) {
      return OkStatus();
    }
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Statement::ColumnText(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

Bytes Statement::ColumnBlob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? Bytes() : Bytes(p, p + n);
}

bool Statement::ColumnIsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

// --- Database ---

Result<Database> Database::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Database db(raw);
  if (rc != SQLITE_OK) {
    return SqliteError(raw, rc, "cannot open database " + path);
  }
  sqlite3_busy_timeout(raw, 5000);
  sqlite3_extended_result_codes(raw, 1);
  Status s = db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  if (!s) {
    return s.error().WithContext("cannot open database " + path);
  }
  return db;
}

Database::Database(Database&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

Database::~Database() { sqlite3_close_v2(db_); }

Status Database::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Error e = SqliteError(db_, rc, "database error");
    return Error(e.code(), "database error: " + msg);
  }
  return OkStatus();
}

Result<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteError(db_, rc, "cannot prepare statement");
  }
  return Statement(db_, stmt);
}

Error Database::LastError(std::string_view what) const {
  return SqliteError(db_, sqlite3_errcode(db_), what);
}

// --- Transaction ---

Result<Transaction> Transaction::Begin(Database& db) {
  Status s = db.Exec("BEGIN IMMEDIATE");
  if (!s) {
    return s.error();
  }
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) {
    (void)db_->Exec("ROLLBACK");
  }
}

Status Transaction::Commit() {
  Status s = db_->Exec("COMMIT");
  if (s) {
    db_ = nullptr;
  }
  return s;
}

}  // namespace hallmark::sqlite
