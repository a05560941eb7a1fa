// VerifyStorage: the audit behind `hallmark registry verify`. It replays the whole registry from
// one snapshot and reports every way the stored tables disagree with what the registrar signed.
//
// Checks, in order:
//   1. tree heads: each signature; each stored compact range against its head; sizes never
//      shrink from one head to the next (a smaller newest head is a rolled-back head);
//   2. log: entries 0..n-1 are all present, each is a canonical record or batch definition with
//      its own seq, its signature verifies (the registrar's, or for an enrollment the enrollment
//      key its batch names), enrollments are within their batch's limits (registry/batch.h), and
//      the Merkle root at each head's size equals that head's root; validly signed entries
//      beyond the newest head mean a head was deleted or rolled back;
//   3. devices: each row equals the latest validly signed log entry of its device (inserted,
//      altered or rolled-back rows), and every device in the log has a row (deleted rows);
//   4. claims: the claims index lists exactly the valid enrollments.
#ifndef HALLMARK_REGISTRY_VERIFIER_H_
#define HALLMARK_REGISTRY_VERIFIER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/key.h"
#include "core/status.h"
#include "registry/storage.h"
#include "registry/tree_head.h"

namespace hallmark::registry {

// FindingKind classifies a discrepancy. Names (for reports) in comments.
enum class FindingKind {
  kInsertedRow,     // "inserted-row": a devices row with no validly signed log entry
  kAlteredRow,      // "altered-row": a devices row that differs from its latest log entry
  kDeletedRow,      // "deleted-row": a device in the log without a devices row
  kRolledBackRow,   // "rolled-back-row": a devices row replaced by an older signed record
  kBrokenLog,       // "broken-log": log rows missing, altered, inserted or not matching a head
  kBrokenHead,      // "broken-head": a tree head whose signature or compact range is wrong
  kRolledBackHead,  // "rolled-back-head": the newest head is older than one seen before
  // "unauthorised-entry": a validly signed enrollment its batch does not authorise (beyond the
  // batch's size or expiry, after its revocation, a second claim of a serial, or a change to an
  // existing device): what a stolen enrollment key could try
  kUnauthorisedEntry,
};

std::string_view FindingKindName(FindingKind kind);

struct Finding {
  FindingKind kind;
  std::string device_id;        // the device concerned, if any
  std::optional<uint64_t> seq;  // the log entry concerned, if any
  std::optional<int64_t> head_id;
  std::string message;  // one sentence naming the values that disagree
};

struct VerifyOptions {
  // trusted_head, if set, is a head known to be genuine (kept from an earlier verify or by the
  // server): the registry must extend it, which also catches a rollback of the whole database.
  std::optional<TreeHead> trusted_head;
  // max_findings bounds the findings listed; `VerifyReport::finding_count` counts them all.
  size_t max_findings = 1000;
};

struct VerifyReport {
  uint64_t devices = 0;                 // rows in devices
  uint64_t log_entries = 0;             // rows in log
  uint64_t heads = 0;                   // rows in tree_heads
  std::optional<TreeHead> newest_head;  // the largest validly signed head, if any
  std::vector<Finding> findings;
  uint64_t finding_count = 0;

  bool clean() const { return finding_count == 0; }
};

// VerifyStorage verifies `storage` against the registrar public key `registrar`. The Result
// fails only if the storage cannot be read (kUnavailable); tampering shows up as findings.
Result<VerifyReport> VerifyStorage(Storage& storage, const PublicKey& registrar,
                                   const VerifyOptions& options = {});

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_VERIFIER_H_
