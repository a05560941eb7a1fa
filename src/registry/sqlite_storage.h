// SqliteStorage: the registry's embedded back end, one SQLite database file in WAL mode with
// synchronous=FULL (a committed operation survives a crash or power loss).
#ifndef HALLMARK_REGISTRY_SQLITE_STORAGE_H_
#define HALLMARK_REGISTRY_SQLITE_STORAGE_H_

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/sqlite.h"
#include "core/status.h"
#include "registry/storage.h"

namespace hallmark::registry {

// SqliteStorage is one connection; see `Storage` for the thread-safety contract. Several
// SqliteStorage objects (in one or many processes) may use the same file: SQLite serialises
// writers and gives each reader a snapshot.
class SqliteStorage : public Storage {
 public:
  // Create makes a new, empty registry database at `path`. kAlreadyExists if `path` exists (an
  // existing database is never overwritten); kNotFound if its directory does not exist;
  // kUnavailable on other errors, after removing whatever it created.
  static Result<std::unique_ptr<SqliteStorage>> Create(const std::string& path);

  // Open opens the registry database at `path`. kNotFound if there is no such file;
  // kFailedPrecondition if the file is not a hallmark registry or has another schema version.
  static Result<std::unique_ptr<SqliteStorage>> Open(const std::string& path);

  Result<std::unique_ptr<Reader>> Read() override;
  Result<std::unique_ptr<Writer>> Write() override;
  std::string Describe() const override { return path_; }

 private:
  class Txn;
  SqliteStorage(std::string path, sqlite::Database db)
      : path_(std::move(path)), db_(std::move(db)) {}
  // Stmt returns the cached prepared statement for `sql`, preparing it on first use.
  Result<sqlite::Statement*> Stmt(std::string_view sql);

  std::string path_;
  sqlite::Database db_;
  std::unordered_map<std::string, sqlite::Statement> statements_;
  bool in_transaction_ = false;
};

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_SQLITE_STORAGE_H_
