// Storage: where the registry keeps its tables (docs/adr/0004-registry-integrity.md,
// docs/enrollment.md):
//
//   meta          key/value settings: schema version, the registrar's public key
//   devices       the current state of each device (one row per device ID)
//   log           the append-only Merkle log: seq, canonical entry (device record or batch
//                 definition), signature
//   tree_heads    signed tree heads, each with the compact range (right edge) of its tree
//   claims        index of batch enrollments by (batch, serial), derived from the log
//   clone_alerts  refused claims of a serial that another key holds
//   pending       devices waiting for operator approval (unsigned: they grant nothing)
//
// Storage knows nothing about signatures or Merkle trees; `Registry` and `ServingDirectory`
// decide what is valid. `SqliteStorage` is the embedded back end; a PostgreSQL back end
// implements the same interface (a read is a REPEATABLE READ transaction, a write holds a lock
// that serialises writers).
#ifndef HALLMARK_REGISTRY_STORAGE_H_
#define HALLMARK_REGISTRY_STORAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/status.h"
#include "registry/batch.h"
#include "registry/directory.h"
#include "registry/pending.h"
#include "registry/tree_head.h"

namespace hallmark::registry {

// LogEntry is one row of the log.
struct LogEntry {
  uint64_t seq = 0;
  std::string device_id;  // read from `entry` (empty if it is not a record); not stored apart
  Bytes entry;            // canonical record bytes: the Merkle leaf's data
  Bytes signature;        // the registrar's signature over `entry`
};

// DeviceRow is one row of devices as stored: `record` holds kDataLoss if the row cannot be
// decoded at all (a status or path no hallmark writes, a negative seq): tampering.
struct DeviceRow {
  std::string device_id;
  Result<DeviceRecord> record;
};

// StoredHead is one row of tree_heads.
struct StoredHead {
  int64_t id = 0;  // ascending in the order the heads were stored
  TreeHead head;
  Bytes compact_range;  // `CompactRange::Serialize()` of the tree the head covers
};

// Reader is a consistent snapshot of the registry. Not thread-safe. Destroying it ends the
// snapshot. Every method returns kUnavailable on storage errors.
class Reader {
 public:
  template <typename T>
  using Visitor = std::function<Status(T&&)>;

  virtual ~Reader() = default;

  // GetMeta returns the value of `key`, or nullopt if it is not set.
  virtual Result<std::optional<std::string>> GetMeta(std::string_view key) = 0;

  // GetDevice returns the row of `device_id` (as stored, unverified), or nullopt. kDataLoss if
  // the row cannot be decoded.
  virtual Result<std::optional<DeviceRecord>> GetDevice(std::string_view device_id) = 0;
  // ScanDevices calls `visit` for every row in device ID order, optionally only those whose
  // status column is `status`. Stops at, and returns, the first error `visit` returns.
  virtual Status ScanDevices(std::optional<DeviceStatus> status,
                             const Visitor<DeviceRow>& visit) = 0;

  // LogSize returns one more than the largest seq in the log (0 when it is empty).
  virtual Result<uint64_t> LogSize() = 0;
  // GetLogEntry returns the entry `seq`, or nullopt.
  virtual Result<std::optional<LogEntry>> GetLogEntry(uint64_t seq) = 0;
  // ScanLog calls `visit` for the entries with begin <= seq < end, in seq order.
  virtual Status ScanLog(uint64_t begin, uint64_t end, const Visitor<LogEntry>& visit) = 0;
  // ScanDeviceLog calls `visit` for the entries whose record names `device_id`, in seq order.
  virtual Status ScanDeviceLog(std::string_view device_id, const Visitor<LogEntry>& visit) = 0;
  // ScanBatchLog calls `visit` for the batch definitions among the entries with seq < `end`, in
  // seq order, without reading the device records between them.
  virtual Status ScanBatchLog(uint64_t end, const Visitor<LogEntry>& visit) = 0;

  // NewestHead returns the tree head stored last, or nullopt if there is none.
  virtual Result<std::optional<StoredHead>> NewestHead() = 0;
  // ScanHeads calls `visit` for every tree head with id > `after_id`, in id order.
  virtual Status ScanHeads(int64_t after_id, const Visitor<StoredHead>& visit) = 0;

  // GetClaim returns the claim of `serial` in `batch_id`, or nullopt.
  virtual Result<std::optional<ClaimRow>> GetClaim(std::string_view batch_id,
                                                   std::string_view serial) = 0;
  // CountClaims returns how many claims rows `batch_id` has.
  virtual Result<uint64_t> CountClaims(std::string_view batch_id) = 0;
  // ScanClaims calls `visit` for the claims rows (of `batch_id` only, if given) in (batch,
  // serial) order.
  virtual Status ScanClaims(std::optional<std::string_view> batch_id,
                            const Visitor<ClaimRow>& visit) = 0;
  // ScanCloneAlerts calls `visit` for the alerts (of `batch_id` only, if given), oldest first.
  virtual Status ScanCloneAlerts(std::optional<std::string_view> batch_id,
                                 const Visitor<CloneAlert>& visit) = 0;

  // GetPending returns the pending request of `device_id`, or nullopt.
  virtual Result<std::optional<PendingDevice>> GetPending(std::string_view device_id) = 0;
  // ScanPending calls `visit` for each pending request, oldest first.
  virtual Status ScanPending(const Visitor<PendingDevice>& visit) = 0;
  // CountPending returns how many pending requests there are.
  virtual Result<uint64_t> CountPending() = 0;
};

// Writer is an exclusive read-write transaction: nothing it wrote is visible to others, or
// kept, unless `Commit()` succeeds. Not thread-safe.
class Writer : public Reader {
 public:
  // PutMeta sets `key` to `value`.
  virtual Status PutMeta(std::string_view key, std::string_view value) = 0;
  // AppendLog stores `entry`. kAlreadyExists if its seq is taken.
  virtual Status AppendLog(const LogEntry& entry) = 0;
  // PutDevice inserts `record`, or replaces the row with the same device ID.
  virtual Status PutDevice(const DeviceRecord& record) = 0;
  // AddHead stores a new tree head after all others.
  virtual Status AddHead(const TreeHead& head, std::span<const uint8_t> compact_range) = 0;
  // PutClaim inserts `claim`. kAlreadyExists if its (batch, serial) is taken.
  virtual Status PutClaim(const ClaimRow& claim) = 0;
  // AddCloneAlert stores `alert` (its id is assigned).
  virtual Status AddCloneAlert(const CloneAlert& alert) = 0;
  // PutPending inserts `pending`, or replaces the request with the same device ID.
  virtual Status PutPending(const PendingDevice& pending) = 0;
  // DeletePending removes the request of `device_id`; returns whether there was one.
  virtual Result<bool> DeletePending(std::string_view device_id) = 0;
  // Commit makes every write durable and visible. On failure nothing was written.
  virtual Status Commit() = 0;
};

// Storage opens transactions on one connection. Not thread-safe, and at most one transaction
// may be open at a time: use one Storage per thread.
class Storage {
 public:
  virtual ~Storage() = default;
  // Read begins a snapshot. kUnavailable if the store cannot be read.
  virtual Result<std::unique_ptr<Reader>> Read() = 0;
  // Write begins an exclusive transaction, waiting for other writers up to a timeout.
  // kUnavailable if the store is busy or cannot be written.
  virtual Result<std::unique_ptr<Writer>> Write() = 0;
  // Describe names the store for messages ("registry.db").
  virtual std::string Describe() const = 0;
};

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_STORAGE_H_
