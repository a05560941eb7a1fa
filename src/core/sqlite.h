// A thin RAII layer over SQLite: connections, prepared statements and transactions, with errors
// as `Error`. Shared by the CA's issuance log and the device registry.
#ifndef HALLMARK_CORE_SQLITE_H_
#define HALLMARK_CORE_SQLITE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hallmark::sqlite {

// Statement is one prepared statement. Not thread-safe; belongs to one Database.
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  ~Statement();

  // Bind* set parameter `index` (1-based). They cannot fail on a correctly written statement.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, std::span<const uint8_t> blob);
  Statement& BindNull(int index);

  // Step runs the statement: true if a row is available, false when done.
  // kAlreadyExists on a primary-key or unique violation, kFailedPrecondition on another
  // constraint (CHECK, foreign key, trigger), kUnavailable if busy or on I/O errors.
  Result<bool> Step();
  // Run steps to completion, for statements that return no rows.
  Status Run();
  // Reset makes the statement reusable and clears its bindings.
  void Reset();

  int64_t ColumnInt(int col) const;
  std::string ColumnText(int col) const;
  Bytes ColumnBlob(int col) const;
  bool ColumnIsNull(int col) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// Database is one connection. Not thread-safe: use one per thread.
class Database {
 public:
  // Open opens (creating if needed) `path` in WAL mode with synchronous=FULL, foreign keys on,
  // and a busy timeout, so a committed transaction survives a crash or power loss.
  static Result<Database> Open(const std::string& path);

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  ~Database();

  // Exec runs one or more SQL statements that return no rows.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql);

  // LastError wraps the connection's current error as an Error with `what` as context.
  Error LastError(std::string_view what) const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Transaction is a BEGIN IMMEDIATE ... COMMIT scope: it rolls back unless `Commit()` succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace hallmark::sqlite

#endif  // HALLMARK_CORE_SQLITE_H_
