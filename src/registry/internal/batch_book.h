// BatchBook: the rules of batch enrollment (registry/batch.h), applied while replaying the log in
// order. The server's `ServingDirectory` and `registry verify` replay through it, so both accept
// an enrollment-signed record only within the limits the registrar signed.
#ifndef HALLMARK_REGISTRY_INTERNAL_BATCH_BOOK_H_
#define HALLMARK_REGISTRY_INTERNAL_BATCH_BOOK_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/key.h"
#include "core/status.h"
#include "registry/batch.h"
#include "registry/directory.h"
#include "registry/storage.h"
#include "registry/tree_head.h"

namespace hallmark::registry::internal {

// BatchState is what the replay knows about one batch.
struct BatchState {
  BatchDefinition latest;    // its newest valid entry, with signature
  PublicKey enrollment_key;  // from its first entry (never changes)
  uint64_t first_seq = 0;
  std::optional<uint64_t> revoked_seq;
  uint64_t claims = 0;  // authorised enrollment records so far
};

// BatchBook is not thread-safe. A book made with a `base` is an overlay: it reads through to the
// base but changes only itself, so a refresh that turns out to be invalid leaves the base as it
// was; `MergeInto` applies the overlay to its base.
class BatchBook {
 public:
  explicit BatchBook(PublicKey registrar, const BatchBook* base = nullptr)
      : registrar_(std::move(registrar)), base_(base) {}
  BatchBook(BatchBook&&) = default;

  // ApplyBatchEntry checks one batch log entry: canonical, holding its own seq, signed by the
  // registrar, and a legal change: a batch's first entry is active, and a later entry may only
  // revoke it, changing nothing else. Returns the batch's new state. kInvalidArgument,
  // kUnauthenticated or kFailedPrecondition name the problem; the book is unchanged then.
  Result<const BatchState*> ApplyBatchEntry(const LogEntry& entry);

  // ApplyEnrollment checks an enrollment-signed `record` (at `record.seq`) against its batch and,
  // if the batch authorises it, counts the claim. `first_entry` says whether the device had no
  // earlier log entry. The signature is the caller's to check (`SignerKey`). kPermissionDenied
  // names the broken rule; the book is unchanged then.
  Status ApplyEnrollment(const DeviceRecord& record, bool first_entry);

  // Find returns the state of `batch_id`, or nullptr.
  const BatchState* Find(std::string_view batch_id) const;

  // SignerKey returns the key of `signer` for something at log position `seq`: the registrar's
  // for "registrar"; batch B's enrollment key for "enrollment:B" if B was defined before `seq`.
  // nullopt for any other signer.
  std::optional<PublicKey> SignerKey(std::string_view signer, uint64_t seq) const;

  const PublicKey& registrar() const { return registrar_; }

  // ForEach visits every batch in batch ID order.
  template <typename Visit>
  void ForEach(Visit visit) const {
    for (const auto& [id, state] : batches_) {
      visit(state);
    }
  }

  // MergeInto applies this overlay's changes to its base (which must be `base`).
  void MergeInto(BatchBook* base) &&;

 private:
  BatchState* Mutable(const std::string& batch_id);
  bool SerialTaken(const std::string& key) const;

  PublicKey registrar_;
  const BatchBook* base_;
  std::map<std::string, BatchState, std::less<>> batches_;
  std::unordered_set<std::string> serials_;  // batch ID + "\n" + serial
};

// ResolveHeadKey returns the key that must have signed `head`: the registrar's, or for a head
// the server signed, the enrollment key of the batch it names. Such a head must end with a record
// that key signed for that batch: an enrollment key extends the log with its own enrollments and
// vouches for nothing else. kDataLoss with the reason (a sentence fragment starting with the
// head's problem) otherwise.
Result<PublicKey> ResolveHeadKey(Reader& r, const BatchBook& batches, const TreeHead& head);

// BatchScope says which batches a partial read loads: all of them, or those named.
struct BatchScope {
  bool all = false;
  std::vector<std::string> ids;
  bool Includes(std::string_view id) const {
    return all || std::find(ids.begin(), ids.end(), id) != ids.end();
  }
};

// ReadBatchKeys replays only the batch entries of the log before `end` that `scope` includes
// (through the storage's index of batch entries, without reading device records; each verified
// entry costs a signature check), for checks that need signer keys before, or without, a replay
// of the whole log. Invalid batch entries are skipped: they authorise nothing.
Result<BatchBook> ReadBatchKeys(Reader& reader, const PublicKey& registrar, uint64_t end,
                                const BatchScope& scope);

}  // namespace hallmark::registry::internal

#endif  // HALLMARK_REGISTRY_INTERNAL_BATCH_BOOK_H_
