#include "registry/verifier.h"

#include <algorithm>
#include <limits>
#include <map>

#include "registry/internal/batch_book.h"
#include "registry/internal/first_entry.h"
#include "registry/internal/latest_index.h"
#include "registry/merkle.h"
#include "registry/record.h"

namespace hallmark::registry {
namespace {

// RowDigest binds a log entry's leaf hash to its signature column: a device row whose digest
// equals that of the log entry the log pass verified is that very entry, text and signature, so
// the device pass needs no second signature verification.
Hash RowDigest(const Hash& leaf, std::span<const uint8_t> signature) {
  Bytes both(leaf.begin(), leaf.end());
  both.insert(both.end(), signature.begin(), signature.end());
  Bytes digest = Sha256(both);
  Hash out{};
  std::copy(digest.begin(), digest.end(), out.begin());
  return out;
}

using internal::BatchBook;
using internal::DeviceKey;
using internal::LatestIndex;

std::string Range(uint64_t first, uint64_t last) {
  return first == last ? "entry " + std::to_string(first)
                       : "entries " + std::to_string(first) + ".." + std::to_string(last);
}

// Findings collects findings up to a limit and counts all of them.
class Findings {
 public:
  Findings(VerifyReport* report, size_t limit) : report_(report), limit_(limit) {}

  void Add(FindingKind kind, std::string message, std::string device_id = {},
           std::optional<uint64_t> seq = std::nullopt,
           std::optional<int64_t> head_id = std::nullopt) {
    ++report_->finding_count;
    if (report_->findings.size() < limit_) {
      report_->findings.push_back(
          Finding{kind, std::move(device_id), seq, head_id, std::move(message)});
    }
  }

 private:
  VerifyReport* report_;
  size_t limit_;
};

// RangeTracker turns a stream of seqs into "entries a..b" runs, for missing or uncovered
// entries, so a deleted block of a million rows is one finding.
class RangeTracker {
 public:
  template <typename Emit>
  void Add(uint64_t seq, Emit emit) {
    if (open_ && seq == last_ + 1) {
      last_ = seq;
      return;
    }
    Flush(emit);
    open_ = true;
    first_ = last_ = seq;
  }
  template <typename Emit>
  void Flush(Emit emit) {
    if (open_) {
      emit(first_, last_);
    }
    open_ = false;
  }

 private:
  bool open_ = false;
  uint64_t first_ = 0;
  uint64_t last_ = 0;
};

struct ValidHead {
  int64_t id;
  TreeHead head;
};

// DifferingFields names the fields in which `row` differs from `logged`.
std::string DifferingFields(const DeviceRecord& row, const DeviceRecord& logged) {
  std::vector<std::string> names;
  auto check = [&names](bool differs, const char* name) {
    if (differs) {
      names.emplace_back(name);
    }
  };
  check(row.public_key != logged.public_key, "public_key");
  check(row.status != logged.status, "status");
  check(row.owner != logged.owner, "owner");
  check(row.path != logged.path, "path");
  check(row.serial != logged.serial, "serial");
  check(row.reason != logged.reason, "reason");
  check(row.created_at != logged.created_at, "created_at");
  check(row.updated_at != logged.updated_at, "updated_at");
  check(row.seq != logged.seq, "seq");
  check(row.signer != logged.signer, "signer");
  check(row.signature != logged.signature, "signature");
  std::string out;
  for (const std::string& n : names) {
    out += (out.empty() ? "" : ", ") + n;
  }
  return out.empty() ? "none" : out;
}

class Verifier {
 public:
  Verifier(Reader* reader, const PublicKey& registrar, const VerifyOptions& options,
           VerifyReport* report)
      : r_(reader),
        registrar_(registrar),
        options_(options),
        report_(report),
        findings_(report, options.max_findings),
        book_(registrar) {}

  Status Run() {
    // Heads are checked before the log; the keys that may sign them come from the batch
    // definitions, read ahead through the index of batch entries.
    auto keys = internal::ReadBatchKeys(*r_, registrar_, std::numeric_limits<uint64_t>::max(),
                                        internal::BatchScope{true, {}});
    if (!keys) {
      return keys.error();
    }
    head_keys_.emplace(std::move(*keys));
    if (auto s = CheckHeads(); !s) {
      return s;
    }
    if (auto s = CheckLog(); !s) {
      return s;
    }
    if (auto s = CheckDevices(); !s) {
      return s;
    }
    return CheckClaims();
  }

 private:
  Status CheckHeads() {
    std::optional<ValidHead> largest;
    Status s = r_->ScanHeads(0, [&](StoredHead&& h) -> Status {
      ++report_->heads;
      std::string name =
          "tree head #" + std::to_string(h.id) + " (size " + std::to_string(h.head.tree_size) + ")";
      std::optional<PublicKey> key = head_keys_->SignerKey(h.head.signer, h.head.tree_size);
      if (!key.has_value()) {
        findings_.Add(FindingKind::kBrokenHead,
                      name + " names signer '" + h.head.signer.substr(0, 80) +
                          "', neither the registrar nor a batch defined before it",
                      {}, std::nullopt, h.id);
        return OkStatus();
      }
      if (!VerifyTreeHead(*key, h.head)) {
        findings_.Add(FindingKind::kBrokenHead,
                      name + " has a signature that does not verify with the " + h.head.signer +
                          " key: forged or altered",
                      {}, std::nullopt, h.id);
        return OkStatus();
      }
      auto range = CompactRange::FromBytes(h.head.tree_size, h.compact_range);
      if (!range || range->Root() != h.head.root_hash) {
        findings_.Add(FindingKind::kBrokenHead,
                      name +
                          " has a stored compact range that does not match its root; the "
                          "registrar will refuse to extend it",
                      {}, std::nullopt, h.id);
      }
      if (largest.has_value() && h.head.tree_size < largest->head.tree_size) {
        findings_.Add(FindingKind::kRolledBackHead,
                      name + " is smaller than the earlier tree head #" +
                          std::to_string(largest->id) + " (size " +
                          std::to_string(largest->head.tree_size) +
                          "): the newest head was replaced by an older one",
                      {}, std::nullopt, h.id);
      } else {
        largest = ValidHead{h.id, h.head};
      }
      heads_by_size_.emplace(h.head.tree_size, ValidHead{h.id, h.head});
      return OkStatus();
    });
    if (!s) {
      return s;
    }
    if (!largest.has_value()) {
      findings_.Add(FindingKind::kBrokenHead,
                    "no validly signed tree head: nothing in the log can be trusted");
      return OkStatus();
    }
    covered_ = largest->head.tree_size;
    report_->newest_head = largest->head;
    if (options_.trusted_head.has_value()) {
      const TreeHead& trusted = *options_.trusted_head;
      if (trusted.tree_size > covered_) {
        findings_.Add(FindingKind::kRolledBackHead,
                      "the newest signed tree head has size " + std::to_string(covered_) +
                          ", smaller than the trusted head's " + std::to_string(trusted.tree_size) +
                          ": the registry was rolled back");
      } else {
        heads_by_size_.emplace(trusted.tree_size, ValidHead{-1, trusted});
      }
    }
    return OkStatus();
  }

  Status CheckLog() {
    RangeTracker missing;
    RangeTracker uncovered;
    auto report_missing = [this](uint64_t first, uint64_t last) {
      findings_.Add(FindingKind::kBrokenLog,
                    "log " + Range(first, last) + (first == last ? " is" : " are") +
                        " missing (deleted rows)",
                    {}, first);
    };
    auto report_uncovered = [this](uint64_t first, uint64_t last) {
      findings_.Add(FindingKind::kRolledBackHead,
                    "log " + Range(first, last) +
                        " validly signed but no signed tree head covers them (size " +
                        std::to_string(covered_) +
                        "): the newest head was deleted or replaced by an older one",
                    {}, first);
    };
    uint64_t expected = 0;
    bool tree_intact = true;
    CompactRange range;
    internal::FirstEntryTracker first(r_, covered_);
    CheckRootsAt(range, std::nullopt);  // a head of size 0
    Status s = r_->ScanLog(0, std::numeric_limits<uint64_t>::max(), [&](LogEntry&& e) -> Status {
      ++report_->log_entries;
      for (; expected < e.seq; ++expected) {
        missing.Add(expected, report_missing);
        tree_intact = false;
      }
      expected = e.seq + 1;
      Hash leaf = LeafHash(e.entry);
      auto valid = CheckEntry(e, leaf, &first);
      if (!valid) {
        return valid.error();
      }
      if (tree_intact) {
        range.Append(leaf);
        CheckRootsAt(range, *valid ? EntrySigner(e.entry) : std::nullopt);
      }
      if (*valid && e.seq >= covered_) {
        uncovered.Add(e.seq, report_uncovered);
      }
      return OkStatus();
    });
    if (!s) {
      return s;
    }
    missing.Flush(report_missing);
    uncovered.Flush(report_uncovered);
    if (expected < covered_) {
      findings_.Add(FindingKind::kBrokenLog,
                    "the log ends after " + std::to_string(expected) +
                        " entries but the newest signed head covers " + std::to_string(covered_) +
                        ": log " + Range(expected, covered_ - 1) +
                        (expected + 1 == covered_ ? " was deleted" : " were deleted"),
                    {}, expected);
    }
    return OkStatus();
  }

  // CheckRootsAt compares the root of `range` with every head of its size. `last_signer` is the
  // signer of the valid device record at the end of `range` (nullopt if the last entry is not
  // one): a head an enrollment key signed must end with a record that key signed.
  void CheckRootsAt(const CompactRange& range, std::optional<std::string_view> last_signer) {
    auto [begin, end] = heads_by_size_.equal_range(range.size());
    if (begin == end) {
      return;
    }
    Hash root = range.Root();
    for (auto it = begin; it != end; ++it) {
      const TreeHead& head = it->second.head;
      if (it->second.id >= 0 && head.signer != kRegistrarSigner && last_signer != head.signer) {
        findings_.Add(FindingKind::kBrokenHead,
                      "tree head #" + std::to_string(it->second.id) + " is signed by " +
                          head.signer + " but does not end with an enrollment that key signed",
                      {}, std::nullopt, it->second.id);
      }
      if (it->second.head.root_hash != root) {
        std::string name = it->second.id < 0 ? std::string("the trusted tree head")
                                             : "tree head #" + std::to_string(it->second.id);
        findings_.Add(FindingKind::kBrokenLog,
                      "log entries 0.." + std::to_string(range.size() - 1) +
                          " do not hash to the root signed in " + name + " (size " +
                          std::to_string(range.size()) +
                          "): log rows were altered, inserted or deleted",
                      {}, std::nullopt,
                      it->second.id < 0 ? std::nullopt : std::optional<int64_t>(it->second.id));
      }
    }
  }

  // CheckEntry verifies one log entry and, if it is a valid device record, indexes it. Returns
  // whether it is valid (a record or a batch definition).
  Result<bool> CheckEntry(const LogEntry& e, const Hash& leaf, internal::FirstEntryTracker* first) {
    std::string at = "log entry " + std::to_string(e.seq);
    if (IsBatchEntry(e.entry)) {
      auto applied = book_.ApplyBatchEntry(e);
      if (!applied) {
        findings_.Add(FindingKind::kBrokenLog,
                      at + " is a batch definition that is not valid: " + applied.error().message(),
                      {}, e.seq);
        return false;
      }
      return true;
    }
    auto record = ParseCanonicalRecord(e.entry);
    if (!record) {
      findings_.Add(FindingKind::kBrokenLog, at + " is altered: " + record.error().message(),
                    e.device_id, e.seq);
      return false;
    }
    if (record->seq != e.seq) {
      findings_.Add(FindingKind::kBrokenLog,
                    at + " holds the record signed for entry " + std::to_string(record->seq) +
                        " of device " + record->device_id + ": copied or moved",
                    record->device_id, e.seq);
      return false;
    }
    record->signature = e.signature;
    auto key = internal::DeviceKeyFromId(record->device_id);
    std::optional<PublicKey> signer = book_.SignerKey(record->signer, e.seq);
    if (!signer.has_value() || !VerifyRecord(*signer, *record)) {
      findings_.Add(FindingKind::kBrokenLog,
                    at + " (device " + record->device_id +
                        ") has a signature that does not verify: altered or inserted",
                    record->device_id, e.seq);
      first->Add(*key);
      return false;
    }
    if (record->signer != kRegistrarSigner) {
      auto is_first = first->IsFirst(*key, record->device_id, e.seq);
      if (!is_first) {
        return is_first.error();
      }
      if (auto s = book_.ApplyEnrollment(*record, *is_first); !s) {
        findings_.Add(FindingKind::kUnauthorisedEntry, s.error().message(), record->device_id,
                      e.seq);
        first->Add(*key);
        return false;
      }
      claims_.emplace(std::string(*SignerBatch(record->signer)) + "\n" + record->serial,
                      std::make_pair(record->device_id, e.seq));
    }
    first->Add(*key);
    items_.push_back(
        LatestIndex::Item{*key, internal::Latest{e.seq, RowDigest(leaf, e.signature)}});
    return true;
  }

  // CheckClaims compares the claims index with the valid enrollments of the log.
  Status CheckClaims() {
    Status s = r_->ScanClaims(std::nullopt, [&](ClaimRow&& c) -> Status {
      std::string name = "claims row (batch " + c.batch_id + ", serial '" + c.serial + "')";
      auto it = claims_.find(c.batch_id + "\n" + c.serial);
      if (it == claims_.end()) {
        findings_.Add(FindingKind::kInsertedRow, name + " has no valid enrollment in the log",
                      c.device_id, c.seq);
        return OkStatus();
      }
      if (it->second.first != c.device_id || it->second.second != c.seq) {
        findings_.Add(FindingKind::kAlteredRow,
                      name + " names device " + c.device_id + " at log entry " +
                          std::to_string(c.seq) + ", but the log enrolled " + it->second.first +
                          " at entry " + std::to_string(it->second.second),
                      c.device_id, c.seq);
      }
      claims_.erase(it);
      return OkStatus();
    });
    if (!s) {
      return s;
    }
    for (const auto& [key, claim] : claims_) {
      findings_.Add(FindingKind::kDeletedRow,
                    "the enrollment of device " + claim.first + " at log entry " +
                        std::to_string(claim.second) +
                        " has no claims row: deleted (a second claim of its serial would "
                        "not be refused by the server)",
                    claim.first, claim.second);
    }
    return OkStatus();
  }

  Status CheckDevices() {
    index_.BulkLoad(std::move(items_));
    std::vector<bool> seen(index_.size(), false);
    Status s = r_->ScanDevices(std::nullopt, [&](DeviceRow&& row) -> Status {
      ++report_->devices;
      auto key = internal::DeviceKeyFromId(row.device_id);
      const internal::Latest* latest = key ? index_.Find(*key) : nullptr;
      if (latest != nullptr) {
        seen[*index_.Rank(*key)] = true;
      }
      std::string device = "device " + row.device_id.substr(0, 64);
      if (!row.record) {
        findings_.Add(latest != nullptr ? FindingKind::kAlteredRow : FindingKind::kInsertedRow,
                      device + ": " + row.record.error().message(), row.device_id);
        return OkStatus();
      }
      if (latest == nullptr) {
        findings_.Add(FindingKind::kInsertedRow,
                      device + " has a row but no validly signed log entry: inserted",
                      row.device_id, row.record->seq);
        return OkStatus();
      }
      return CheckRow(*row.record, *latest);
    });
    if (!s) {
      return s;
    }
    size_t rank = 0;
    index_.ForEach([&](const DeviceKey& key, const internal::Latest& latest) {
      if (!seen[rank++]) {
        std::string id = internal::DeviceKeyToId(key);
        findings_.Add(FindingKind::kDeletedRow,
                      "device " + id + " has log entry " + std::to_string(latest.seq) +
                          " but no row: deleted",
                      id, latest.seq);
      }
    });
    return OkStatus();
  }

  Status CheckRow(const DeviceRecord& row, const internal::Latest& latest) {
    std::string device = "device " + row.device_id;
    auto canonical = CanonicalRecord(row);
    // `latest.leaf` holds the RowDigest of the latest valid log entry (see CheckEntry).
    if (canonical && row.seq == latest.seq &&
        RowDigest(LeafHash(AsBytes(*canonical)), row.signature) == latest.leaf) {
      return OkStatus();
    }
    auto logged = LoggedRecord(latest.seq);
    if (!logged) {
      return logged.error();
    }
    auto logged_text = logged->has_value() ? CanonicalRecord(**logged) : Result<std::string>("");
    if (canonical && row.seq == latest.seq && logged->has_value() && logged_text &&
        *logged_text == *canonical) {
      findings_.Add(FindingKind::kAlteredRow,
                    device + " matches log entry " + std::to_string(latest.seq) +
                        " but its signature column was altered",
                    row.device_id, row.seq);
      return OkStatus();
    }
    if (canonical && row.seq < latest.seq) {
      auto older = LoggedRecord(row.seq);
      if (!older) {
        return older.error();
      }
      if (older->has_value() && **older == row) {
        findings_.Add(
            FindingKind::kRolledBackRow,
            device + " was rolled back to its older signed record from log entry " +
                std::to_string(row.seq) + " (status " + std::string(DeviceStatusName(row.status)) +
                "); its latest is entry " + std::to_string(latest.seq) +
                (logged->has_value()
                     ? " (status " + std::string(DeviceStatusName((*logged)->status)) + ")"
                     : std::string()),
            row.device_id, row.seq);
        return OkStatus();
      }
    }
    std::string fields = logged->has_value() ? DifferingFields(row, **logged) : "unknown";
    findings_.Add(FindingKind::kAlteredRow,
                  device + " differs from its latest valid log entry " +
                      std::to_string(latest.seq) + " in: " + fields,
                  row.device_id, row.seq);
    return OkStatus();
  }

  // LoggedRecord returns the record (with signature) of log entry `seq` if that entry is a
  // canonical record; nullopt if it is missing or malformed (reported by CheckLog).
  Result<std::optional<DeviceRecord>> LoggedRecord(uint64_t seq) {
    auto entry = r_->GetLogEntry(seq);
    if (!entry) {
      return entry.error();
    }
    if (!entry->has_value()) {
      return std::optional<DeviceRecord>();
    }
    auto record = ParseCanonicalRecord((*entry)->entry);
    if (!record) {
      return std::optional<DeviceRecord>();
    }
    record->signature = (*entry)->signature;
    return std::optional<DeviceRecord>(std::move(*record));
  }

  Reader* r_;
  const PublicKey& registrar_;
  const VerifyOptions& options_;
  VerifyReport* report_;
  Findings findings_;
  std::multimap<uint64_t, ValidHead> heads_by_size_;
  uint64_t covered_ = 0;
  std::vector<LatestIndex::Item> items_;
  LatestIndex index_;
  std::optional<BatchBook> head_keys_;  // batch keys read ahead, for the heads
  BatchBook book_;                      // batch state during the in-order replay
  // claims_: batch ID + "\n" + serial -> (device ID, seq) of each valid enrollment.
  std::map<std::string, std::pair<std::string, uint64_t>> claims_;
};

}  // namespace

std::string_view FindingKindName(FindingKind kind) {
  switch (kind) {
    case FindingKind::kInsertedRow:
      return "inserted-row";
    case FindingKind::kAlteredRow:
      return "altered-row";
    case FindingKind::kDeletedRow:
      return "deleted-row";
    case FindingKind::kRolledBackRow:
      return "rolled-back-row";
    case FindingKind::kBrokenLog:
      return "broken-log";
    case FindingKind::kBrokenHead:
      return "broken-head";
    case FindingKind::kRolledBackHead:
      return "rolled-back-head";
    case FindingKind::kUnauthorisedEntry:
      return "unauthorised-entry";
  }
  return "unknown";
}

Result<VerifyReport> VerifyStorage(Storage& storage, const PublicKey& registrar,
                                   const VerifyOptions& options) {
  auto reader = storage.Read();
  if (!reader) {
    return reader.error();
  }
  VerifyReport report;
  Verifier verifier(reader->get(), registrar, options, &report);
  if (auto s = verifier.Run(); !s) {
    return s.error().WithContext("verifying " + storage.Describe());
  }
  return report;
}

}  // namespace hallmark::registry
