// Registry: the owner's device registry. Every change (add, revoke, import, batch, approval,
// claim) is one transaction that appends signed entries to the Merkle log, updates the devices
// rows, and signs a new tree head (docs/adr/0004-registry-integrity.md, docs/registry.md,
// docs/enrollment.md).
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
#include "registry/batch.h"
#include "registry/directory.h"
#include "registry/pending.h"
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

// BatchRequest describes a new batch (`CreateBatch`).
struct BatchRequest {
  std::string batch_id;
  std::string owner;
  uint64_t size = 0;
  int64_t expires_at = 0;  // seconds since the epoch
  PublicKey verifier;      // derived from the batch secret; the secret itself is never stored
  PublicKey enrollment_key;  // the server's Ed25519 enrollment key
};

// BatchInfo is a batch as the registry reports it.
struct BatchInfo {
  BatchDefinition definition;  // its newest valid entry
  uint64_t first_seq = 0;      // the entry that defined it
  uint64_t claims = 0;         // devices enrolled through it
  uint64_t clone_alerts = 0;   // refused claims of a serial another key holds
};

// BatchRevocation is what `RevokeBatch` did.
struct BatchRevocation {
  BatchDefinition definition;
  std::vector<std::string> revoked_devices;  // device IDs revoked with it
  TreeHead head;
};

// ClaimRequest is one device claiming through a batch, after its proof was checked.
struct ClaimRequest {
  std::string batch_id;
  std::string serial;
  PublicKey key;     // the device's own key: the one it authenticated with on this connection
  std::string peer;  // network address, recorded with clone alerts
};

// ClaimResult is an enrolled device.
struct ClaimResult {
  DeviceRecord record;
  // already_enrolled: this key had already claimed this serial (a retry); nothing was written.
  bool already_enrolled = false;
};

// ApproveOptions completes what a pending device sent.
struct ApproveOptions {
  std::string owner;
  std::string serial;  // overrides the serial the device sent (required if it sent none)
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

  // CreateBatch appends a registrar-signed batch definition (registry/batch.h). kInvalidArgument
  // for a bad ID, owner or size, a verifier or enrollment key that is not Ed25519, or an expiry
  // that is not in the future; kAlreadyExists if the batch ID was ever used; otherwise as Add.
  Result<BatchDefinition> CreateBatch(const RegistrarKey& registrar, const BatchRequest& request);

  // RevokeBatch appends the registrar-signed revocation of `batch_id`: no claim succeeds after
  // it. With `revoke_devices`, every active device enrolled through the batch is revoked in the
  // same transaction. kNotFound for an unknown batch; kFailedPrecondition if already revoked;
  // kDataLoss if the batch's entries or an enrolled device's row fail verification.
  Result<BatchRevocation> RevokeBatch(const RegistrarKey& registrar, std::string_view batch_id,
                                      std::string_view reason, bool revoke_devices);

  // ListBatches returns every batch whose definition verifies with `registrar` (the trusted
  // registrar public key), in batch ID order, with its claim and alert counts. kDataLoss if the
  // newest head does not verify.
  Result<std::vector<BatchInfo>> ListBatches(const PublicKey& registrar);
  // FindBatch is ListBatches for one batch. kNotFound if there is no valid one.
  Result<BatchInfo> FindBatch(const PublicKey& registrar, std::string_view batch_id);
  // CloneAlerts lists the clone alerts (of `batch_id` only, if given), oldest first.
  Result<std::vector<CloneAlert>> CloneAlerts(std::optional<std::string_view> batch_id);

  // Claim enrolls `request.key` through batch `request.batch_id` as an active device (path
  // batch), signed by `enrollment_key` as "enrollment:<batch>", with its claims row and a tree
  // head the enrollment key signs, in one transaction. The caller has checked the device's proof
  // of the batch secret. `registrar` is the trusted registrar public key: the batch must verify
  // with it. Errors, each leaving the registry unchanged:
  //   kNotFound            no such batch
  //   kPermissionDenied    `enrollment_key` is not the key the batch names
  //   kFailedPrecondition  the batch is revoked or expired
  //   kAlreadyExists       the serial was claimed by another key (a clone alert is recorded,
  //                        the only write), or the key is registered otherwise
  //   kResourceExhausted   the batch's size is used up
  //   kInvalidArgument     bad serial or device key
  //   kDataLoss            the registry fails the checks every write makes
  // A retry by the key that already claimed this serial returns its record, writing nothing.
  Result<ClaimResult> Claim(const PublicKey& registrar, const PrivateKey& enrollment_key,
                            const ClaimRequest& request);

  // RequestApproval records (or refreshes) the pending request of a device without credentials.
  // Nothing is signed and nothing is granted. kAlreadyExists if the device is registered;
  // kResourceExhausted if `max_pending` other requests are waiting; kInvalidArgument for a bad
  // serial or key.
  Result<PendingDevice> RequestApproval(const PublicKey& key, std::string_view serial,
                                        std::string_view peer, uint64_t max_pending);
  // ListPending returns the pending requests, oldest first.
  Result<std::vector<PendingDevice>> ListPending();
  // Approve registers pending device `id` (its device ID, or an unambiguous prefix of at least 8
  // hex digits) as active on the engineer path, signed by `registrar`, and removes the request.
  // kNotFound if there is no such request; kInvalidArgument if the prefix is ambiguous or no
  // serial is known; kDataLoss if the request's device ID is not its key's; otherwise as Add.
  Result<DeviceRecord> Approve(const RegistrarKey& registrar, std::string_view id,
                               const ApproveOptions& options);
  // Reject removes pending request `id` (as for Approve) and returns it. kNotFound if none.
  Result<PendingDevice> Reject(std::string_view id);

  // Find returns the stored row of `device_id` without verifying it. kNotFound if there is none;
  // kInvalidArgument if `device_id` is not 64 hex digits.
  Result<DeviceRecord> Find(std::string_view device_id);

  // CheckDevice verifies one stored record against `registrar` and the log: its signature (by
  // the registrar, or by the enrollment key of a batch the registrar signed, within the batch's
  // limits as far as they can be checked without a replay), that its log entry holds exactly it,
  // that no later entry exists for the device, and that the newest tree head (whose signature it
  // also checks) covers it. kDataLoss names the first failed check. For the whole registry, use
  // `Verify`.
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
