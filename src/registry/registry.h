// Registry: the owner's device registry. Every change (add, revoke, import) is one transaction
// that appends registrar-signed records to the Merkle log, updates the devices rows, and signs
// a new tree head (docs/adr/0004-registry-integrity.md, docs/registry.md).
#ifndef HALLMARK_REGISTRY_REGISTRY_H_
#define HALLMARK_REGISTRY_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/key.h"
#include "core/status.h"
#include "registry/directory.h"
#include "registry/registrar_key.h"
#include "registry/storage.h"
#include "registry/tree_head.h"
#include "registry/verifier.h"

namespace hallmark::registry {

// AddRequest describes one device to register.
struct AddRequest {
  PublicKey key;
  std::string serial;
  std::string owner;
  ProvisioningPath path = ProvisioningPath::kManual;
};

// ImportProgress is reported every `ImportOptions::progress_every` lines.
struct ImportProgress {
  uint64_t lines = 0;     // manifest lines read so far, blank lines included
  uint64_t imported = 0;  // new devices
  uint64_t skipped = 0;   // identical active devices already registered (or listed twice)
};

struct ImportOptions {
  std::string owner;  // the owner recorded for every imported device
  std::function<void(const ImportProgress&)> progress;
  uint64_t progress_every = 1000;
};

// ImportSummary is what a committed import did.
struct ImportSummary {
  ImportProgress counts;
  TreeHead head;  // the tree head signed at the end
};

// Registry is not thread-safe (it owns one storage connection); use one per thread. Any number
// of Registry objects, in any number of processes, may share one database.
class Registry {
 public:
  // Create makes a new SQLite registry at `db_path` for `registrar`: it stores the registrar's
  // public key and signs the first (empty) tree head. kAlreadyExists if `db_path` exists;
  // errors of `SqliteStorage::Create` otherwise. Nothing is left behind on failure.
  static Result<Registry> Create(const std::string& db_path, const RegistrarKey& registrar,
                                 const Clock* clock);
  // Open opens the SQLite registry at `db_path`. kNotFound if it does not exist;
  // kFailedPrecondition if it is not a registry.
  static Result<Registry> Open(const std::string& db_path, const Clock* clock);

  // Initialize sets up an empty `storage` for `registrar` (as Create does). kAlreadyExists if
  // the storage already belongs to a registrar.
  static Result<Registry> Initialize(std::unique_ptr<Storage> storage,
                                     const RegistrarKey& registrar, const Clock* clock);
  // Attach uses an initialised `storage`. kFailedPrecondition if it has no registrar key.
  static Result<Registry> Attach(std::unique_ptr<Storage> storage, const Clock* clock);

  Registry(Registry&&) = default;
  Registry& operator=(Registry&&) = default;

  // stored_registrar_key is the public key the database names. An attacker who can write the
  // database can replace it: check against a trusted copy (`registry init` writes KEY.pub).
  const PublicKey& stored_registrar_key() const { return stored_key_; }
  Storage& storage() { return *storage_; }

  // Add registers one device as active, signed by `registrar`. kAlreadyExists if the device is
  // registered (in any status); kInvalidArgument for a bad serial or owner; kPermissionDenied
  // if `registrar` is not this registry's registrar; kDataLoss if the stored log or head fails
  // the checks every write makes first (see docs/registry.md). Nothing changes on failure.
  Result<DeviceRecord> Add(const RegistrarKey& registrar, const AddRequest& request);

  // Revoke marks `device_id` revoked, with `reason`. kNotFound for an unknown device;
  // kFailedPrecondition if it is already revoked; kDataLoss if its row fails verification;
  // otherwise as Add. Revocation is final: a revoked device cannot be added again.
  Result<DeviceRecord> Revoke(const RegistrarKey& registrar, std::string_view device_id,
                              std::string_view reason);

  // Import reads a JSON Lines manifest (docs/registry.md) line by line in constant memory,
  // verifies every line's signature with `factory_key`, and registers every new device as
  // active (path "extract") in one transaction: all lines or none. A line whose device is
  // already registered, active, with the same serial and owner is skipped. kInvalidArgument
  // names the first bad line's number and what is wrong with it; kUnauthenticated if a line's
  // signature does not verify; kAlreadyExists if a device is registered with another serial,
  // owner or status; otherwise as Add.
  Result<ImportSummary> Import(const RegistrarKey& registrar, std::istream& manifest,
                               const PublicKey& factory_key, const ImportOptions& options);

  // Find returns the stored row of `device_id` without verifying it. kNotFound if there is none;
  // kInvalidArgument if `device_id` is not 64 hex digits.
  Result<DeviceRecord> Find(std::string_view device_id);

  // CheckDevice verifies one stored record against `registrar` and the log: its signature, that
  // its log entry holds exactly it, that no later entry exists for the device, and that the
  // newest tree head (whose signature it also checks) covers it. kDataLoss names the first
  // failed check. For the whole registry, use `Verify`.
  Status CheckDevice(const DeviceRecord& record, const PublicKey& registrar);

  // History returns the log entries of `device_id`, oldest first.
  Result<std::vector<LogEntry>> History(std::string_view device_id);

  // ForEachDevice calls `visit` for each stored row in device ID order (optionally only those
  // with `status`), without verifying them. kDataLoss if a row cannot be decoded.
  Status ForEachDevice(std::optional<DeviceStatus> status,
                       const std::function<Status(const DeviceRecord&)>& visit);

  // NewestHead returns the newest stored tree head (unverified). kDataLoss if there is none.
  Result<StoredHead> NewestHead();

  // Verify checks the whole registry against `registrar` (see verifier.h). The report lists
  // findings; the Result fails only if the storage cannot be read.
  Result<VerifyReport> Verify(const PublicKey& registrar, const VerifyOptions& options = {});

  // InclusionProof returns the audit path of log entry `seq` in the tree of `tree_size` entries.
  // kOutOfRange if seq >= tree_size or the log is shorter. Reads every leaf: O(tree_size).
  Result<std::vector<Hash>> InclusionProof(uint64_t seq, uint64_t tree_size);
  // ConsistencyProof proves the tree of `first` entries is a prefix of that of `second`.
  Result<std::vector<Hash>> ConsistencyProof(uint64_t first, uint64_t second);

 private:
  Registry(std::unique_ptr<Storage> storage, PublicKey stored_key, const Clock* clock)
      : storage_(std::move(storage)), stored_key_(std::move(stored_key)), clock_(clock) {}
  Result<std::vector<Hash>> LeafHashes(uint64_t size);

  std::unique_ptr<Storage> storage_;
  PublicKey stored_key_;
  const Clock* clock_;
};

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_REGISTRY_H_
