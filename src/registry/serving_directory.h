// ServingDirectory: the `Directory` the server uses. It trusts only the registrar's public key,
// never the database: at open it replays the log up to the newest signed tree head (hashes only)
// and keeps each device's latest entry, so that a row inserted, altered, deleted or rolled back
// by plain SQL is refused at lookup, and a rewritten log is refused at refresh. The replay also
// applies the batch rules (registry/batch.h): an enrollment-signed record outside the limits of
// its registrar-signed batch is refused at lookup, and heads the server signed with its
// enrollment key are accepted only as the batch definitions allow.
#ifndef HALLMARK_REGISTRY_SERVING_DIRECTORY_H_
#define HALLMARK_REGISTRY_SERVING_DIRECTORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/key.h"
#include "core/status.h"
#include "registry/directory.h"
#include "registry/merkle.h"
#include "registry/storage.h"
#include "registry/tree_head.h"

namespace hallmark::registry {

namespace internal {
class BatchBook;
class LatestIndex;
}  // namespace internal

// ServingDirectory is thread-safe: one mutex guards its storage connection and state;
// signatures are verified outside it, so lookups of several threads overlap in the costly part.
// Entries the newest signed head does not cover are invisible: a device changed by a write that
// has not signed its head yet is served from its last covered entry.
class ServingDirectory : public Directory {
 public:
  struct Options {
    // trusted_head, if set, is a head seen before (the server may persist the newest one): the
    // registry must extend it, so a restore of an older database is refused at open. Its
    // signature is checked here (registrar, or the enrollment key of a batch it covers).
    std::optional<TreeHead> trusted_head;
  };

  // Open opens the SQLite registry at `db_path` and replays its log. kNotFound if it does not
  // exist; kFailedPrecondition if it is not a registry; kInvalidArgument if `registrar` is not
  // Ed25519; kDataLoss if the newest head does not verify with `registrar`, the log does not
  // hash to it, a validly signed older head is larger (rollback), or it does not extend
  // `options.trusted_head`.
  static Result<std::unique_ptr<ServingDirectory>> Open(const std::string& db_path,
                                                        const PublicKey& registrar,
                                                        const Options& options);
  static Result<std::unique_ptr<ServingDirectory>> Open(const std::string& db_path,
                                                        const PublicKey& registrar) {
    return Open(db_path, registrar, Options{});
  }
  // FromStorage is Open over any storage back end.
  static Result<std::unique_ptr<ServingDirectory>> FromStorage(std::unique_ptr<Storage> storage,
                                                               const PublicKey& registrar,
                                                               const Options& options);

  ~ServingDirectory() override;
  ServingDirectory(const ServingDirectory&) = delete;
  ServingDirectory& operator=(const ServingDirectory&) = delete;

  // Lookup returns the record of `device_id` (64 lowercase hex digits) after checking that its
  // seq is the device's latest entry in the verified log, that its canonical bytes hash to that
  // entry's leaf, and that its signature verifies. kInvalidArgument for a malformed ID;
  // kNotFound if the verified log has no such device; kDataLoss (naming the device and the
  // check) if the stored row was inserted, altered, deleted or rolled back.
  Result<DeviceRecord> Lookup(std::string_view device_id) override;

  // Refresh reads the newest signed tree head and, if it is new, checks that it extends the
  // verified log (its root equals the root of the verified compact range extended by the new
  // entries). Returns the IDs of devices with new entries, in log order, each once; empty if
  // nothing changed. kDataLoss, leaving the verified state as it was, if the head does not
  // verify, is smaller than the verified one (rollback), or the log does not extend the old one.
  Result<std::vector<std::string>> Refresh() override;

  // LookupBatch returns the batch's newest valid definition and the enrollments the verified log
  // holds within its limits. kNotFound if the verified log defines no such batch.
  Result<VerifiedBatch> LookupBatch(std::string_view batch_id) override;

  // head returns the newest verified tree head.
  TreeHead head() const;
  // device_count returns how many devices the verified log knows.
  size_t device_count() const;

 private:
  ServingDirectory(std::unique_ptr<Storage> storage, PublicKey registrar);
  Status Load(const Options& options);

  const PublicKey registrar_;
  mutable std::mutex mu_;
  std::unique_ptr<Storage> storage_;
  TreeHead head_;
  int64_t head_id_ = 0;
  CompactRange range_;
  std::unique_ptr<internal::LatestIndex> index_;
  std::unique_ptr<internal::BatchBook> book_;
  // refused_: log entries (enrollment records) their batch does not authorise, with the reason.
  std::map<uint64_t, std::string> refused_;
};

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_SERVING_DIRECTORY_H_
