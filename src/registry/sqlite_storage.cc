#include "registry/sqlite_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/file.h"
#include "registry/record.h"

namespace hallmark::registry {
namespace {

constexpr std::string_view kSchemaVersion = "2";
constexpr std::string_view kFormat = "hallmark-registry";

// devices is WITHOUT ROWID: the device ID is the key, so one B-tree instead of two.
// log_by_device indexes the device ID inside each entry (bytes 36..99 of the canonical record)
// rather than a separate column: hiding a device's history from the registrar then means
// editing signed entries, which breaks the Merkle root that the server and `verify` replay.
constexpr std::string_view kSchema = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE devices (
  device_id TEXT PRIMARY KEY,
  public_key BLOB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
  owner TEXT NOT NULL,
  path TEXT NOT NULL,
  serial TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  signer TEXT NOT NULL,
  signature BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX devices_by_status ON devices(status, device_id);
CREATE TABLE log (
  seq INTEGER PRIMARY KEY,
  entry BLOB NOT NULL,
  signature BLOB NOT NULL
);
CREATE INDEX log_by_device ON log(substr(entry, 36, 64), seq);
CREATE TABLE tree_heads (
  id INTEGER PRIMARY KEY,
  tree_size INTEGER NOT NULL,
  root_hash BLOB NOT NULL,
  timestamp INTEGER NOT NULL,
  signer TEXT NOT NULL,
  signature BLOB NOT NULL,
  compact_range BLOB NOT NULL
);
)sql";

// Schema version 2 adds batch enrollment and operator approval (docs/enrollment.md); a version 1
// database is upgraded in place when it is opened (tables and an index only: no signed data
// changes). log_batches indexes only the batch definitions, a handful among millions of records.
constexpr std::string_view kSchemaV2 = R"sql(
CREATE INDEX IF NOT EXISTS log_batches ON log(seq)
  WHERE substr(entry, 1, 17) = X'68616c6c6d61726b2d62617463682f310a';
CREATE TABLE IF NOT EXISTS claims (
  batch_id TEXT NOT NULL,
  serial TEXT NOT NULL,
  device_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  claimed_at INTEGER NOT NULL,
  PRIMARY KEY (batch_id, serial)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clone_alerts (
  id INTEGER PRIMARY KEY,
  batch_id TEXT NOT NULL,
  serial TEXT NOT NULL,
  device_id TEXT NOT NULL,
  claimed_by TEXT NOT NULL,
  peer TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
  device_id TEXT PRIMARY KEY,
  public_key BLOB NOT NULL,
  serial TEXT NOT NULL,
  peer TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  requests INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_by_age ON pending(first_seen, device_id);
)sql";
// The batch magic "hallmark-batch/1\n" as the blob literal of log_batches' WHERE clause: a query
// uses the partial index only if it repeats that term exactly.
constexpr std::string_view kIsBatchEntry =
    "substr(entry, 1, 17) = X'68616c6c6d61726b2d62617463682f310a'";

constexpr std::string_view kDeviceColumns =
    "SELECT device_id, public_key, status, owner, path, serial, reason, created_at, updated_at, "
    "seq, signer, signature FROM devices ";
constexpr std::string_view kLogColumns = "SELECT seq, entry, signature FROM log ";
constexpr std::string_view kHeadColumns =
    "SELECT id, tree_size, root_hash, timestamp, signer, signature, compact_range "
    "FROM tree_heads ";
constexpr std::string_view kClaimColumns =
    "SELECT batch_id, serial, device_id, seq, claimed_at FROM claims ";
constexpr std::string_view kAlertColumns =
    "SELECT id, batch_id, serial, device_id, claimed_by, peer, at FROM clone_alerts ";
constexpr std::string_view kPendingColumns =
    "SELECT device_id, public_key, serial, peer, first_seen, last_seen, requests FROM pending ";

// Resetter resets a cached statement when the scope ends, so that no statement keeps a read
// open past its transaction.
class Resetter {
 public:
  explicit Resetter(sqlite::Statement* st) : st_(st) {}
  Resetter(const Resetter&) = delete;
  Resetter& operator=(const Resetter&) = delete;
  ~Resetter() { st_->Reset(); }

 private:
  sqlite::Statement* st_;
};

// FirstRow steps a bound statement once and reads the row with `read` (returning T or
// Result<T>), or returns nullopt when there is no row. The statement is reset afterwards.
template <typename T, typename Read>
Result<std::optional<T>> FirstRow(sqlite::Statement* st, Read read) {
  Resetter reset(st);
  auto row = st->Step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return std::optional<T>();
  }
  Result<T> value = read(*st);
  if (!value) {
    return value.error();
  }
  return std::optional<T>(std::move(*value));
}

Result<DeviceRecord> ReadDevice(const sqlite::Statement& st) {
  DeviceRecord r;
  r.device_id = st.ColumnText(0);
  r.public_key = st.ColumnBlob(1);
  std::string status = st.ColumnText(2);
  auto parsed_status = ParseDeviceStatus(status);
  if (!parsed_status) {
    return Error(Code::kDataLoss,
                 "device row " + r.device_id + " has unknown status '" + status + "'");
  }
  r.status = *parsed_status;
  r.owner = st.ColumnText(3);
  std::string path = st.ColumnText(4);
  auto parsed_path = ParseProvisioningPath(path);
  if (!parsed_path) {
    return Error(Code::kDataLoss,
                 "device row " + r.device_id + " has unknown provisioning path '" + path + "'");
  }
  r.path = *parsed_path;
  r.serial = st.ColumnText(5);
  r.reason = st.ColumnText(6);
  r.created_at = st.ColumnInt(7);
  r.updated_at = st.ColumnInt(8);
  int64_t seq = st.ColumnInt(9);
  if (seq < 0) {
    return Error(Code::kDataLoss,
                 "device row " + r.device_id + " has negative seq " + std::to_string(seq));
  }
  r.seq = static_cast<uint64_t>(seq);
  r.signer = st.ColumnText(10);
  r.signature = st.ColumnBlob(11);
  return r;
}

LogEntry ReadLogEntry(const sqlite::Statement& st) {
  LogEntry e;
  e.seq = static_cast<uint64_t>(st.ColumnInt(0));
  e.entry = st.ColumnBlob(1);
  e.signature = st.ColumnBlob(2);
  if (auto id = EntryDeviceId(e.entry); id) {
    e.device_id = std::string(*id);
  }
  return e;
}

Result<StoredHead> ReadHead(const sqlite::Statement& st) {
  StoredHead h;
  h.id = st.ColumnInt(0);
  int64_t size = st.ColumnInt(1);
  auto root = HashFromBytes(st.ColumnBlob(2));
  if (size < 0 || !root) {
    return Error(Code::kDataLoss, "tree head " + std::to_string(h.id) +
                                      " has a negative size or a root hash that is not 32 bytes");
  }
  h.head.tree_size = static_cast<uint64_t>(size);
  h.head.root_hash = *root;
  h.head.timestamp = st.ColumnInt(3);
  h.head.signer = st.ColumnText(4);
  h.head.signature = st.ColumnBlob(5);
  h.compact_range = st.ColumnBlob(6);
  return h;
}

ClaimRow ReadClaim(const sqlite::Statement& st) {
  return ClaimRow{st.ColumnText(0), st.ColumnText(1), st.ColumnText(2),
                  static_cast<uint64_t>(std::max<int64_t>(st.ColumnInt(3), 0)), st.ColumnInt(4)};
}

CloneAlert ReadAlert(const sqlite::Statement& st) {
  return CloneAlert{st.ColumnInt(0),  st.ColumnText(1), st.ColumnText(2), st.ColumnText(3),
                    st.ColumnText(4), st.ColumnText(5), st.ColumnInt(6)};
}

PendingDevice ReadPending(const sqlite::Statement& st) {
  return PendingDevice{st.ColumnText(0),
                       st.ColumnBlob(1),
                       st.ColumnText(2),
                       st.ColumnText(3),
                       st.ColumnInt(4),
                       st.ColumnInt(5),
                       static_cast<uint64_t>(std::max<int64_t>(st.ColumnInt(6), 0))};
}

// VisitRows steps a bound statement to the end, calling `visit` with `read(row)` for each row.
template <typename T, typename Read>
Status VisitRows(sqlite::Statement* st, Read read, const Reader::Visitor<T>& visit) {
  for (;;) {
    auto row = st->Step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return OkStatus();
    }
    if (auto s = visit(read(*st)); !s) {
      return s;
    }
  }
}

// Blob returns `bytes` with a non-null data pointer: sqlite3_bind_blob binds NULL, not an empty
// blob, for a null pointer, which the NOT NULL columns refuse (an empty compact range is valid).
std::span<const uint8_t> Blob(std::span<const uint8_t> bytes) {
  static const uint8_t kEmpty = 0;
  return bytes.empty() ? std::span<const uint8_t>(&kEmpty, 0) : bytes;
}

int64_t ToSqlInt(uint64_t v) {
  // Values above INT64_MAX cannot come from a real log; clamp so a query bound stays a bound.
  return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
}

void RemoveDatabaseFiles(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    ::unlink((path + suffix).c_str());
  }
}

Result<uint64_t> Count(sqlite::Statement* st) {
  Resetter reset(st);
  auto row = st->Step();
  if (!row) {
    return row.error();
  }
  return static_cast<uint64_t>(std::max<int64_t>(st->ColumnInt(0), 0));
}

void BindOptional(sqlite::Statement* st, std::optional<std::string_view> value) {
  if (value.has_value()) {
    st->Bind(1, *value);
  } else {
    st->BindNull(1);
  }
}

}  // namespace

// Txn is a read snapshot (BEGIN DEFERRED) or an exclusive writer (BEGIN IMMEDIATE) on the
// storage's connection.
class SqliteStorage::Txn : public Writer {
 public:
  Txn(SqliteStorage* storage, bool writable) : s_(storage), writable_(writable) {
    s_->in_transaction_ = true;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() override {
    if (open_) {
      (void)s_->db_.Exec("ROLLBACK");
    }
    s_->in_transaction_ = false;
  }

  Status Begin() {
    if (auto s = s_->db_.Exec(writable_ ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"); !s) {
      return s.error().WithContext("registry " + s_->path_);
    }
    open_ = true;
    return OkStatus();
  }

  Result<std::optional<std::string>> GetMeta(std::string_view key) override {
    auto st = s_->Stmt("SELECT value FROM meta WHERE key = ?");
    if (!st) {
      return st.error();
    }
    (*st)->Bind(1, key);
    return FirstRow<std::string>(*st, [](const sqlite::Statement& r) { return r.ColumnText(0); });
  }

  Result<std::optional<DeviceRecord>> GetDevice(std::string_view device_id) override {
    auto st = s_->Stmt(std::string(kDeviceColumns) + "WHERE device_id = ?");
    if (!st) {
      return st.error();
    }
    (*st)->Bind(1, device_id);
    return FirstRow<DeviceRecord>(*st, ReadDevice);
  }

  Status ScanDevices(std::optional<DeviceStatus> status, const Visitor<DeviceRow>& visit) override {
    auto st = s_->Stmt(std::string(kDeviceColumns) +
                       "WHERE ?1 IS NULL OR status = ?1 ORDER BY device_id");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    if (status.has_value()) {
      (*st)->Bind(1, DeviceStatusName(*status));
    } else {
      (*st)->BindNull(1);
    }
    for (;;) {
      auto row = (*st)->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        return OkStatus();
      }
      DeviceRow device{(*st)->ColumnText(0), ReadDevice(**st)};
      if (auto s = visit(std::move(device)); !s) {
        return s;
      }
    }
  }

  Result<uint64_t> LogSize() override {
    auto st = s_->Stmt("SELECT COALESCE(MAX(seq) + 1, 0) FROM log");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    auto row = (*st)->Step();
    if (!row) {
      return row.error();
    }
    int64_t size = (*st)->ColumnInt(0);
    return size < 0 ? uint64_t{0} : static_cast<uint64_t>(size);
  }

  Result<std::optional<LogEntry>> GetLogEntry(uint64_t seq) override {
    auto st = s_->Stmt(std::string(kLogColumns) + "WHERE seq = ?");
    if (!st) {
      return st.error();
    }
    (*st)->Bind(1, ToSqlInt(seq));
    return FirstRow<LogEntry>(*st, ReadLogEntry);
  }

  Status ScanLog(uint64_t begin, uint64_t end, const Visitor<LogEntry>& visit) override {
    auto st = s_->Stmt(std::string(kLogColumns) + "WHERE seq >= ? AND seq < ? ORDER BY seq");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)->Bind(1, ToSqlInt(begin)).Bind(2, ToSqlInt(end));
    return VisitRows<LogEntry>(*st, ReadLogEntry, visit);
  }

  Status ScanDeviceLog(std::string_view device_id, const Visitor<LogEntry>& visit) override {
    auto st = s_->Stmt(std::string(kLogColumns) + "WHERE substr(entry, 36, 64) = ? ORDER BY seq");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    // substr of a BLOB is a BLOB, which never equals TEXT: bind the ID's bytes.
    (*st)->Bind(1, AsBytes(device_id));
    return VisitRows<LogEntry>(*st, ReadLogEntry, visit);
  }

  Status ScanBatchLog(uint64_t end, const Visitor<LogEntry>& visit) override {
    auto st = s_->Stmt(std::string(kLogColumns) + "WHERE " + std::string(kIsBatchEntry) +
                       " AND seq < ? ORDER BY seq");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)->Bind(1, ToSqlInt(end));
    return VisitRows<LogEntry>(*st, ReadLogEntry, visit);
  }

  Result<std::optional<ClaimRow>> GetClaim(std::string_view batch_id,
                                           std::string_view serial) override {
    auto st = s_->Stmt(std::string(kClaimColumns) + "WHERE batch_id = ? AND serial = ?");
    if (!st) {
      return st.error();
    }
    (*st)->Bind(1, batch_id).Bind(2, serial);
    return FirstRow<ClaimRow>(*st, ReadClaim);
  }

  Result<uint64_t> CountClaims(std::string_view batch_id) override {
    auto st = s_->Stmt("SELECT COUNT(*) FROM claims WHERE batch_id = ?");
    if (!st) {
      return st.error();
    }
    (*st)->Bind(1, batch_id);
    return Count(*st);
  }

  Status ScanClaims(std::optional<std::string_view> batch_id,
                    const Visitor<ClaimRow>& visit) override {
    auto st = s_->Stmt(std::string(kClaimColumns) +
                       "WHERE ?1 IS NULL OR batch_id = ?1 ORDER BY batch_id, serial");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    BindOptional(*st, batch_id);
    return VisitRows<ClaimRow>(*st, ReadClaim, visit);
  }

  Status ScanCloneAlerts(std::optional<std::string_view> batch_id,
                         const Visitor<CloneAlert>& visit) override {
    auto st =
        s_->Stmt(std::string(kAlertColumns) + "WHERE ?1 IS NULL OR batch_id = ?1 ORDER BY id");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    BindOptional(*st, batch_id);
    return VisitRows<CloneAlert>(*st, ReadAlert, visit);
  }

  Result<std::optional<PendingDevice>> GetPending(std::string_view device_id) override {
    auto st = s_->Stmt(std::string(kPendingColumns) + "WHERE device_id = ?");
    if (!st) {
      return st.error();
    }
    (*st)->Bind(1, device_id);
    return FirstRow<PendingDevice>(*st, ReadPending);
  }

  Status ScanPending(const Visitor<PendingDevice>& visit) override {
    auto st = s_->Stmt(std::string(kPendingColumns) + "ORDER BY first_seen, device_id");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    return VisitRows<PendingDevice>(*st, ReadPending, visit);
  }

  Result<uint64_t> CountPending() override {
    auto st = s_->Stmt("SELECT COUNT(*) FROM pending");
    if (!st) {
      return st.error();
    }
    return Count(*st);
  }

  Result<std::optional<StoredHead>> NewestHead() override {
    auto st = s_->Stmt(std::string(kHeadColumns) + "ORDER BY id DESC LIMIT 1");
    if (!st) {
      return st.error();
    }
    return FirstRow<StoredHead>(*st, ReadHead);
  }

  Status ScanHeads(int64_t after_id, const Visitor<StoredHead>& visit) override {
    auto st = s_->Stmt(std::string(kHeadColumns) + "WHERE id > ? ORDER BY id");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)->Bind(1, after_id);
    for (;;) {
      auto row = (*st)->Step();
      if (!row) {
        return row.error();
      }
      if (!*row) {
        return OkStatus();
      }
      auto head = ReadHead(**st);
      if (!head) {
        return head.error();
      }
      if (auto s = visit(std::move(*head)); !s) {
        return s;
      }
    }
  }

  Status PutMeta(std::string_view key, std::string_view value) override {
    auto st = s_->Stmt(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)->Bind(1, key).Bind(2, value);
    return (*st)->Run();
  }

  Status AppendLog(const LogEntry& e) override {
    auto st = s_->Stmt("INSERT INTO log(seq, entry, signature) VALUES (?, ?, ?)");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)->Bind(1, ToSqlInt(e.seq)).Bind(2, Blob(e.entry)).Bind(3, Blob(e.signature));
    Status s = (*st)->Run();
    if (!s && s.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists,
                   "log entry " + std::to_string(e.seq) + " already exists in " + s_->path_);
    }
    return s;
  }

  Status PutDevice(const DeviceRecord& r) override {
    auto st = s_->Stmt(
        "INSERT OR REPLACE INTO devices(device_id, public_key, status, owner, path, serial, "
        "reason, created_at, updated_at, seq, signer, signature) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)
        ->Bind(1, r.device_id)
        .Bind(2, Blob(r.public_key))
        .Bind(3, DeviceStatusName(r.status))
        .Bind(4, r.owner)
        .Bind(5, ProvisioningPathName(r.path))
        .Bind(6, r.serial)
        .Bind(7, r.reason)
        .Bind(8, r.created_at)
        .Bind(9, r.updated_at)
        .Bind(10, ToSqlInt(r.seq))
        .Bind(11, r.signer)
        .Bind(12, Blob(r.signature));
    return (*st)->Run();
  }

  Status AddHead(const TreeHead& h, std::span<const uint8_t> compact_range) override {
    auto st = s_->Stmt(
        "INSERT INTO tree_heads(tree_size, root_hash, timestamp, signer, signature, "
        "compact_range) VALUES (?, ?, ?, ?, ?, ?)");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)
        ->Bind(1, ToSqlInt(h.tree_size))
        .Bind(2, Blob(h.root_hash))
        .Bind(3, h.timestamp)
        .Bind(4, h.signer)
        .Bind(5, Blob(h.signature))
        .Bind(6, Blob(compact_range));
    return (*st)->Run();
  }

  Status PutClaim(const ClaimRow& c) override {
    auto st = s_->Stmt(
        "INSERT INTO claims(batch_id, serial, device_id, seq, claimed_at) VALUES (?, ?, ?, ?, ?)");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)
        ->Bind(1, c.batch_id)
        .Bind(2, c.serial)
        .Bind(3, c.device_id)
        .Bind(4, ToSqlInt(c.seq))
        .Bind(5, c.claimed_at);
    return (*st)->Run();
  }

  Status AddCloneAlert(const CloneAlert& a) override {
    auto st = s_->Stmt(
        "INSERT INTO clone_alerts(batch_id, serial, device_id, claimed_by, peer, at) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)
        ->Bind(1, a.batch_id)
        .Bind(2, a.serial)
        .Bind(3, a.device_id)
        .Bind(4, a.claimed_by)
        .Bind(5, a.peer)
        .Bind(6, a.at);
    return (*st)->Run();
  }

  Status PutPending(const PendingDevice& p) override {
    auto st = s_->Stmt(
        "INSERT OR REPLACE INTO pending(device_id, public_key, serial, peer, first_seen, "
        "last_seen, requests) VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)
        ->Bind(1, p.device_id)
        .Bind(2, Blob(p.public_key))
        .Bind(3, p.serial)
        .Bind(4, p.peer)
        .Bind(5, p.first_seen)
        .Bind(6, p.last_seen)
        .Bind(7, ToSqlInt(p.requests));
    return (*st)->Run();
  }

  Result<bool> DeletePending(std::string_view device_id) override {
    auto st = s_->Stmt("DELETE FROM pending WHERE device_id = ? RETURNING device_id");
    if (!st) {
      return st.error();
    }
    Resetter reset(*st);
    (*st)->Bind(1, device_id);
    auto row = (*st)->Step();
    if (!row) {
      return row.error();
    }
    return *row;
  }

  Status Commit() override {
    if (!writable_) {
      return Error(Code::kInternal, "Commit called on a read snapshot");
    }
    if (auto s = s_->db_.Exec("COMMIT"); !s) {
      return s.error().WithContext("registry " + s_->path_);
    }
    open_ = false;
    return OkStatus();
  }

 private:
  SqliteStorage* s_;
  bool writable_;
  bool open_ = false;
};

Result<sqlite::Statement*> SqliteStorage::Stmt(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) {
    return &it->second;
  }
  auto st = db_.Prepare(sql);
  if (!st) {
    return st.error().WithContext("registry " + path_);
  }
  auto [inserted, ok] = statements_.emplace(std::string(sql), std::move(*st));
  return &inserted->second;
}

Result<std::unique_ptr<Reader>> SqliteStorage::Read() {
  if (in_transaction_) {
    return Error(Code::kInternal, "registry " + path_ + " already has an open transaction");
  }
  auto txn = std::make_unique<Txn>(this, /*writable=*/false);
  if (auto s = txn->Begin(); !s) {
    return s.error();
  }
  return std::unique_ptr<Reader>(std::move(txn));
}

Result<std::unique_ptr<Writer>> SqliteStorage::Write() {
  if (in_transaction_) {
    return Error(Code::kInternal, "registry " + path_ + " already has an open transaction");
  }
  auto txn = std::make_unique<Txn>(this, /*writable=*/true);
  if (auto s = txn->Begin(); !s) {
    return s.error();
  }
  return std::unique_ptr<Writer>(std::move(txn));
}

Result<std::unique_ptr<SqliteStorage>> SqliteStorage::Create(const std::string& path) {
  // O_EXCL makes "refuse to overwrite" race-free; SQLite treats the empty file as a new database.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return Error(Code::kAlreadyExists,
                   "registry database " + path + " already exists; refusing to overwrite it");
    }
    return Error(err == ENOENT ? Code::kNotFound : Code::kUnavailable,
                 "cannot create registry database " + path + ": " + std::strerror(err));
  }
  ::close(fd);
  auto created = [&]() -> Result<std::unique_ptr<SqliteStorage>> {
    auto db = sqlite::Database::Open(path);
    if (!db) {
      return db.error();
    }
    auto tx = sqlite::Transaction::Begin(*db);
    if (!tx) {
      return tx.error();
    }
    if (auto s = db->Exec(kSchema); !s) {
      return s.error().WithContext("creating registry " + path);
    }
    if (auto s = db->Exec(kSchemaV2); !s) {
      return s.error().WithContext("creating registry " + path);
    }
    auto st = db->Prepare(
        "INSERT INTO meta(key, value) VALUES ('format', ?), "
        "('schema_version', ?)");
    if (!st) {
      return st.error();
    }
    st->Bind(1, kFormat).Bind(2, kSchemaVersion);
    if (auto s = st->Run(); !s) {
      return s.error();
    }
    if (auto s = tx->Commit(); !s) {
      return s.error();
    }
    return std::unique_ptr<SqliteStorage>(new SqliteStorage(path, std::move(*db)));
  }();
  if (!created) {
    RemoveDatabaseFiles(path);
  }
  return created;
}

namespace {

// Upgrade brings a version 1 registry to version 2 in one transaction (concurrent openers wait
// for the lock; the DDL is idempotent).
Status Upgrade(sqlite::Database& db, const std::string& path) {
  auto tx = sqlite::Transaction::Begin(db);
  if (!tx) {
    return tx.error();
  }
  if (auto s = db.Exec(kSchemaV2); !s) {
    return s.error().WithContext("upgrading registry " + path + " to schema version 2");
  }
  auto st = db.Prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'");
  if (!st) {
    return st.error();
  }
  st->Bind(1, kSchemaVersion);
  if (auto s = st->Run(); !s) {
    return s.error();
  }
  return tx->Commit();
}

}  // namespace

Result<std::unique_ptr<SqliteStorage>> SqliteStorage::Open(const std::string& path) {
  // sqlite3_open would create a missing file; a typo in --db must not leave an empty database.
  if (!FileExists(path)) {
    return Error(Code::kNotFound, "registry database " + path +
                                      " does not exist; create it with `hallmark "
                                      "registry init`");
  }
  auto not_registry = [&path](const std::string& why) {
    return Error(Code::kFailedPrecondition, path + " is not a hallmark registry database: " + why);
  };
  auto db = sqlite::Database::Open(path);
  if (!db) {
    if (db.error().code() == Code::kDataLoss) {
      return not_registry(db.error().message());
    }
    return db.error();
  }
  auto st = db->Prepare("SELECT key, value FROM meta WHERE key IN ('format', 'schema_version')");
  if (!st) {
    return not_registry(st.error().message());
  }
  std::string format;
  std::string version;
  for (;;) {
    auto row = st->Step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      break;
    }
    (st->ColumnText(0) == "format" ? format : version) = st->ColumnText(1);
  }
  if (format != kFormat) {
    return not_registry("its meta table has no format '" + std::string(kFormat) + "'");
  }
  if (version == "1") {
    if (auto s = Upgrade(*db, path); !s) {
      return s.error();
    }
    version = std::string(kSchemaVersion);
  }
  if (version != kSchemaVersion) {
    return Error(Code::kFailedPrecondition, "registry " + path + " has schema version " + version +
                                                "; this hallmark understands version " +
                                                std::string(kSchemaVersion));
  }
  return std::unique_ptr<SqliteStorage>(new SqliteStorage(path, std::move(*db)));
}

}  // namespace hallmark::registry
