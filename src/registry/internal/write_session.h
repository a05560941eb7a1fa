// WriteSession: one write to the registry. It opens the exclusive transaction, checks that the
// registry is in a state trusted keys signed (the newest head's signature and compact range, and
// a log exactly as long as that head), appends signed entries, and finally signs a new tree head
// and commits. Shared by the registrar's operations and the server's batch enrollments.
#ifndef HALLMARK_REGISTRY_INTERNAL_WRITE_SESSION_H_
#define HALLMARK_REGISTRY_INTERNAL_WRITE_SESSION_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/key.h"
#include "core/status.h"
#include "registry/batch.h"
#include "registry/internal/batch_book.h"
#include "registry/merkle.h"
#include "registry/storage.h"
#include "registry/tree_head.h"

namespace hallmark::registry::internal {

inline constexpr std::string_view kVerifyHint = "; run `hallmark registry verify`";

// KeyFingerprint names a key in messages: the first 16 hex digits of the SHA-256 of its SPKI.
std::string KeyFingerprint(const PublicKey& key);

// ReadStoredRegistrarKey returns the registrar public key the database names.
// kFailedPrecondition if it has none; kDataLoss if it does not parse.
Result<PublicKey> ReadStoredRegistrarKey(Reader& r, const std::string& where);

// VerifiedState is the newest tree head after its checks, with what was read to check it.
struct VerifiedState {
  TreeHead head;
  CompactRange range;  // the head's stored compact range
  BatchBook batches;   // the valid batch definitions among the entries the head covers
};

// ReadVerifiedState reads the newest tree head and checks its signature (by `registrar`, or by
// the enrollment key of the batch it names, in which case the head's last entry must be a record
// that key signed for that batch) and its compact range against its root. kDataLoss otherwise.
// `scope` names the batches to load besides the head's own (none by default).
Result<VerifiedState> ReadVerifiedState(Reader& r, const PublicKey& registrar,
                                        const std::string& where, BatchScope scope = {});

// SessionSigner is who signs what a session appends: `key` under the name `name` ("registrar",
// or "enrollment:B" for the server's enrollment key acting for batch B).
struct SessionSigner {
  const PrivateKey* key;
  std::string name;
};

// WriteSession is not thread-safe; it holds the storage's write transaction until it is
// destroyed (rolling back) or committed.
class WriteSession {
 public:
  // Begin opens the transaction and checks the newest head against `registrar` (the trusted
  // registrar public key) or, for a head the server signed, the enrollment key of the batch it
  // names. kDataLoss names a failed check; errors of the storage otherwise.
  static Result<WriteSession> Begin(Storage& storage, const PublicKey& registrar,
                                    const Clock* clock) {
    return Open(storage, registrar, clock, /*as_registrar=*/false);
  }
  // BeginAsRegistrar is Begin for an operation the registrar signs: kPermissionDenied unless
  // `registrar` is the key the database names.
  static Result<WriteSession> BeginAsRegistrar(Storage& storage, const PublicKey& registrar,
                                               const Clock* clock) {
    return Open(storage, registrar, clock, /*as_registrar=*/true);
  }

  Writer& writer() { return *w_; }
  int64_t now() const { return now_; }
  const std::string& where() const { return where_; }
  // base_head is the verified head the session builds on.
  const TreeHead& base_head() const { return base_head_; }
  uint64_t covered() const { return base_head_.tree_size; }
  bool changed() const { return range_.size() != base_head_.tree_size; }
  // StrictBatch returns batch `batch_id`'s verified state (loading it into the session's batches
  // on first use). kNotFound if the log defines no such batch; kDataLoss if one of its entries
  // fails verification (the session never builds on a batch entry the registrar did not sign).
  Result<const BatchState*> StrictBatch(std::string_view batch_id);

  // Append signs `record` as the next log entry (setting seq, signer and signature) and stores it
  // in the log and devices.
  Status Append(DeviceRecord* record, const SessionSigner& signer);
  // AppendBatch signs `batch` with the registrar key as the next log entry and applies it to
  // `batches()`. kFailedPrecondition if the change is not one a batch allows.
  Status AppendBatch(BatchDefinition* batch, const PrivateKey& registrar_key);

  // CheckHistoryEmpty fails (kDataLoss) if the log has entries for `device_id` although it has
  // no row.
  Status CheckHistoryEmpty(const std::string& device_id);

  // CheckRow verifies a stored row before anyone builds on it: its signature (by the registrar,
  // or by the enrollment key of a batch the registrar defined, loaded with StrictBatch), that it
  // is what its log entry holds, that the newest head covers it, and that it is the device's
  // latest entry. kDataLoss names the failed check.
  Status CheckRow(const DeviceRecord& row);

  // Commit signs a head over everything appended (as `signer`) and commits. Returns the new
  // head. Without appended entries, commits the other writes and returns the base head.
  Result<TreeHead> Commit(const SessionSigner& signer);

 private:
  static Result<WriteSession> Open(Storage& storage, const PublicKey& registrar, const Clock* clock,
                                   bool as_registrar);
  WriteSession(std::unique_ptr<Writer> w, std::string where, const PublicKey& registrar,
               const Clock* clock, VerifiedState state)
      : w_(std::move(w)),
        where_(std::move(where)),
        registrar_(registrar),
        now_(clock->Now()),
        base_head_(std::move(state.head)),
        range_(std::move(state.range)),
        book_(std::move(state.batches)) {}

  std::unique_ptr<Writer> w_;
  std::string where_;
  PublicKey registrar_;
  int64_t now_;
  TreeHead base_head_;
  CompactRange range_;
  BatchBook book_;                // batches loaded so far (the head's, then as needed)
  std::set<std::string> strict_;  // batches StrictBatch has verified entry by entry
};

// VerifiedSnapshot is a read snapshot with its newest head checked (ReadVerifiedState).
struct VerifiedSnapshot {
  std::unique_ptr<Reader> reader;
  VerifiedState state;
};
// ReadVerifiedSnapshot opens a read snapshot and runs ReadVerifiedState on it.
Result<VerifiedSnapshot> ReadVerifiedSnapshot(Storage& storage, const PublicKey& registrar,
                                              BatchScope scope = {});

// CheckStoredRow is `WriteSession::CheckRow` on a read snapshot whose newest verified head
// covers `covered` entries, with signer keys from `batches`.
Status CheckStoredRow(Reader& r, const BatchBook& batches, const DeviceRecord& row,
                      uint64_t covered);

// CheckEnrollmentLimits checks what can be checked of an enrollment-signed `record` without
// replaying the log (`registry verify` does that): its batch was defined before it and not
// revoked before it, it is active on the batch path with the batch's owner, it was created before
// the batch expired, and the claims index names it for its serial. kDataLoss names the failed
// check.
Status CheckEnrollmentLimits(Reader& r, const BatchBook& batches, const DeviceRecord& record);

}  // namespace hallmark::registry::internal

#endif  // HALLMARK_REGISTRY_INTERNAL_WRITE_SESSION_H_
