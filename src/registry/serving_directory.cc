#include "registry/serving_directory.h"

#include <algorithm>
#include <map>
#include <unordered_set>

#include "registry/internal/batch_book.h"
#include "registry/internal/first_entry.h"
#include "registry/internal/latest_index.h"
#include "registry/record.h"
#include "registry/registrar_key.h"
#include "registry/sqlite_storage.h"

namespace hallmark::registry {
namespace {

using internal::BatchBook;
using internal::DeviceKey;
using internal::FirstEntryTracker;
using internal::LatestIndex;

Error Tampered(const std::string& message) { return Error(Code::kDataLoss, message); }

std::string HeadName(const StoredHead& h) {
  return "tree head #" + std::to_string(h.id) + " (size " + std::to_string(h.head.tree_size) + ")";
}

// Replayed is what a replay of log entries [begin, end) found besides the hashes.
struct Replayed {
  std::vector<LatestIndex::Item> items;  // each device record's (device, seq, leaf), in order
  // refused: enrollment-signed records that their batch does not authorise, with the reason.
  std::map<uint64_t, std::string> refused;
};

// Replay hashes log entries [begin, end) onto `range`, lists each record's device, and applies
// the batch rules through `book` (batch entries that fail verification authorise nothing).
// `before` holds the devices of entries before `begin`.
Status Replay(Reader& r, uint64_t begin, uint64_t end, CompactRange* range, Replayed* out,
              BatchBook* book, const LatestIndex* before, const std::optional<TreeHead>& trusted) {
  FirstEntryTracker first(&r, end - begin, before);
  uint64_t expected = begin;
  Status s = r.ScanLog(begin, end, [&](LogEntry&& e) -> Status {
    if (e.seq != expected) {
      return Tampered("log entry " + std::to_string(expected) + " is missing");
    }
    ++expected;
    Hash leaf = LeafHash(e.entry);
    range->Append(leaf);
    if (trusted.has_value() && range->size() == trusted->tree_size &&
        range->Root() != trusted->root_hash) {
      return Tampered("the log does not extend the trusted tree head of size " +
                      std::to_string(trusted->tree_size));
    }
    if (IsBatchEntry(e.entry)) {
      (void)book->ApplyBatchEntry(e);
      return OkStatus();
    }
    auto id = EntryDeviceId(e.entry);
    if (!id) {
      return Tampered("log entry " + std::to_string(e.seq) + " is not a device record");
    }
    DeviceKey key = *internal::DeviceKeyFromId(*id);
    std::optional<std::string_view> signer = EntrySigner(e.entry);
    if (signer != kRegistrarSigner) {
      // Rare (batch enrollments): parse the whole record and apply the batch's rules.
      auto is_first = first.IsFirst(key, *id, e.seq);
      if (!is_first) {
        return is_first.error();
      }
      auto record = ParseCanonicalRecord(e.entry);
      Status allowed =
          !record ? Status(record.error())
          : !SignerBatch(record->signer).has_value() || record->seq != e.seq
              ? Status(Error(Code::kPermissionDenied, "names an unknown signer or another seq"))
              : book->ApplyEnrollment(*record, *is_first);
      if (!allowed) {
        out->refused.emplace(e.seq, allowed.error().message());
      }
    }
    first.Add(key);
    out->items.push_back(LatestIndex::Item{key, {e.seq, leaf}});
    return OkStatus();
  });
  if (!s) {
    return s;
  }
  if (expected != end) {
    return Tampered("the log ends after " + std::to_string(expected) +
                    " entries but the signed tree head covers " + std::to_string(end));
  }
  return OkStatus();
}

// CheckHeadSignature verifies `head` with the key its signer resolves to in `book`.
Status CheckHeadSignature(Reader& r, const BatchBook& book, const StoredHead& head) {
  auto key = ResolveHeadKey(r, book, head.head);
  if (!key) {
    if (key.error().code() != Code::kDataLoss) {
      return key.error();
    }
    return Tampered("the newest " + HeadName(head) + " " + key.error().message());
  }
  if (!VerifyTreeHead(*key, head.head)) {
    return Tampered("the newest " + HeadName(head) + " does not verify with the " +
                    head.head.signer + " key (forged or altered)");
  }
  return OkStatus();
}

}  // namespace

ServingDirectory::ServingDirectory(std::unique_ptr<Storage> storage, PublicKey registrar)
    : registrar_(std::move(registrar)),
      storage_(std::move(storage)),
      index_(std::make_unique<LatestIndex>()),
      book_(std::make_unique<BatchBook>(registrar_)) {}

ServingDirectory::~ServingDirectory() = default;

Result<std::unique_ptr<ServingDirectory>> ServingDirectory::Open(const std::string& db_path,
                                                                 const PublicKey& registrar,
                                                                 const Options& options) {
  auto storage = SqliteStorage::Open(db_path);
  if (!storage) {
    return storage.error();
  }
  return FromStorage(std::move(*storage), registrar, options);
}

Result<std::unique_ptr<ServingDirectory>> ServingDirectory::FromStorage(
    std::unique_ptr<Storage> storage, const PublicKey& registrar, const Options& options) {
  if (auto s = CheckRegistrarPublicKey(registrar); !s) {
    return s.error();
  }
  std::unique_ptr<ServingDirectory> dir(new ServingDirectory(std::move(storage), registrar));
  if (auto s = dir->Load(options); !s) {
    return s.error().WithContext("registry " + dir->storage_->Describe());
  }
  return dir;
}

Status ServingDirectory::Load(const Options& options) {
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  auto newest = (*r)->NewestHead();
  if (!newest) {
    return newest.error();
  }
  if (!newest->has_value()) {
    return Tampered("no signed tree head");
  }
  const StoredHead& head = **newest;
  const std::optional<TreeHead>& trusted = options.trusted_head;
  if (trusted.has_value() && trusted->tree_size > head.head.tree_size) {
    return Tampered("the newest " + HeadName(head) + " is smaller than the trusted head (size " +
                    std::to_string(trusted->tree_size) + "): the registry was rolled back");
  }
  CompactRange range;
  if (trusted.has_value() && trusted->tree_size == 0 && trusted->root_hash != range.Root()) {
    return Tampered("the trusted tree head of size 0 has a wrong root");
  }
  // Replay first: the keys that may sign heads come from the batch definitions in the log. The
  // replay only hashes and indexes; nothing is trusted until the head's signature and root
  // check out below.
  Replayed replayed;
  replayed.items.reserve(head.head.tree_size);
  auto book = std::make_unique<BatchBook>(registrar_);
  if (auto s = Replay(**r, 0, head.head.tree_size, &range, &replayed, book.get(), nullptr, trusted);
      !s) {
    return s;
  }
  if (auto s = CheckHeadSignature(**r, *book, head); !s) {
    return s;
  }
  if (trusted.has_value()) {
    // The trusted head may be one the server's enrollment key signed after a claim; its key
    // comes from the batch definitions it covers.
    std::optional<PublicKey> key = book->SignerKey(trusted->signer, trusted->tree_size);
    if (!key.has_value() || !VerifyTreeHead(*key, *trusted)) {
      return Tampered("the trusted tree head (size " + std::to_string(trusted->tree_size) +
                      ", signer " + trusted->signer.substr(0, 80) + ") does not verify");
    }
  }
  // A validly signed head larger than the newest one means the newest was rolled back.
  std::vector<StoredHead> larger;
  Status scanned = (*r)->ScanHeads(0, [&](StoredHead&& h) -> Status {
    if (h.head.tree_size > head.head.tree_size) {
      larger.push_back(std::move(h));
    }
    return OkStatus();
  });
  if (!scanned) {
    return scanned;
  }
  for (const StoredHead& h : larger) {
    std::optional<PublicKey> key = book->SignerKey(h.head.signer, h.head.tree_size);
    if (key.has_value() && VerifyTreeHead(*key, h.head)) {
      return Tampered("the newest " + HeadName(head) + " is smaller than the earlier " +
                      HeadName(h) + ": the tree head was rolled back");
    }
  }
  if (range.Root() != head.head.root_hash) {
    return Tampered("log entries 0.." + std::to_string(head.head.tree_size) +
                    " do not hash to the root of the newest " + HeadName(head) +
                    ": the log was altered");
  }
  index_->BulkLoad(std::move(replayed.items));
  refused_ = std::move(replayed.refused);
  book_ = std::move(book);
  head_ = head.head;
  head_id_ = head.id;
  range_ = std::move(range);
  return OkStatus();
}

Result<DeviceRecord> ServingDirectory::Lookup(std::string_view device_id) {
  auto key = internal::DeviceKeyFromId(device_id);
  if (!key) {
    return Error(Code::kInvalidArgument, "'" + std::string(device_id.substr(0, 80)) +
                                             "' is not a device ID (64 lowercase hex digits)");
  }
  std::string id(device_id);
  std::optional<DeviceRecord> record;
  internal::Latest latest;
  std::optional<PublicKey> signer_key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const internal::Latest* found = index_->Find(*key);
    auto r = storage_->Read();
    if (!r) {
      return r.error();
    }
    auto row = (*r)->GetDevice(id);
    if (!row) {
      return row.error();
    }
    if (found == nullptr) {
      if (row->has_value() && (*row)->seq < head_.tree_size) {
        return Tampered("device " + id + " has a row but no entry in the verified log: inserted");
      }
      return Error(Code::kNotFound, "no device " + id + " in the registry");
    }
    latest = *found;
    if (!row->has_value()) {
      return Tampered("device " + id + " has log entry " + std::to_string(latest.seq) +
                      " but no row: deleted");
    }
    if ((*row)->seq < head_.tree_size) {
      record = std::move(**row);
    } else {
      // The row is newer than the verified head: serve the last verified entry instead.
      auto entry = (*r)->GetLogEntry(latest.seq);
      if (!entry) {
        return entry.error();
      }
      if (!entry->has_value()) {
        return Tampered("log entry " + std::to_string(latest.seq) + " of device " + id +
                        " was deleted");
      }
      auto parsed = ParseCanonicalRecord((*entry)->entry);
      if (!parsed) {
        return Tampered("log entry " + std::to_string(latest.seq) + " of device " + id +
                        " was altered: " + parsed.error().message());
      }
      parsed->signature = (*entry)->signature;
      record = std::move(*parsed);
    }
    if (auto refused = refused_.find(latest.seq); refused != refused_.end()) {
      return Tampered("device " + id + "'s latest entry is refused: " + refused->second);
    }
    signer_key = book_->SignerKey(record->signer, record->seq);
  }
  // Hashing and the signature check need no lock.
  if (record->seq != latest.seq) {
    return Tampered("device " + id + "'s record is from log entry " + std::to_string(record->seq) +
                    " but its latest verified entry is " + std::to_string(latest.seq) +
                    (record->seq < latest.seq ? ": rolled back" : ": altered"));
  }
  auto canonical = CanonicalRecord(*record);
  if (!canonical || LeafHash(AsBytes(*canonical)) != latest.leaf) {
    return Tampered("device " + id + "'s record differs from its log entry " +
                    std::to_string(latest.seq) + ": altered");
  }
  if (!signer_key.has_value() || !VerifyRecord(*signer_key, *record)) {
    return Tampered("device " + id + "'s record signature does not verify with the " +
                    (signer_key.has_value() ? record->signer : std::string("registrar")) +
                    " key: altered");
  }
  return std::move(*record);
}

Result<std::vector<std::string>> ServingDirectory::Refresh() {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  auto newest = (*r)->NewestHead();
  if (!newest) {
    return newest.error();
  }
  if (!newest->has_value()) {
    return Tampered("registry " + storage_->Describe() + " has no signed tree head any more");
  }
  const StoredHead& head = **newest;
  if (head.id == head_id_ && head.head == head_) {
    return std::vector<std::string>();
  }
  if (head.head.tree_size < head_.tree_size) {
    return Tampered("the newest " + HeadName(head) + " is smaller than the verified size " +
                    std::to_string(head_.tree_size) + ": the tree head was rolled back");
  }
  CompactRange range = range_;
  Replayed replayed;
  BatchBook book(registrar_, book_.get());
  if (auto s = Replay(**r, head_.tree_size, head.head.tree_size, &range, &replayed, &book,
                      index_.get(), std::nullopt);
      !s) {
    return s.error();
  }
  if (auto s = CheckHeadSignature(**r, book, head); !s) {
    return s.error();
  }
  if (range.Root() != head.head.root_hash) {
    return Tampered("the newest " + HeadName(head) + " does not extend the verified log of " +
                    std::to_string(head_.tree_size) + " entries: the log was rewritten");
  }
  std::move(book).MergeInto(book_.get());
  refused_.merge(replayed.refused);
  const std::vector<LatestIndex::Item>& items = replayed.items;
  std::vector<std::string> changed;
  std::unordered_set<std::string> seen;
  for (const LatestIndex::Item& item : items) {
    index_->Set(item.key, item.latest);
    std::string id = internal::DeviceKeyToId(item.key);
    if (seen.insert(id).second) {
      changed.push_back(std::move(id));
    }
  }
  range_ = std::move(range);
  head_ = head.head;
  head_id_ = head.id;
  return changed;
}

TreeHead ServingDirectory::head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return head_;
}

Result<VerifiedBatch> ServingDirectory::LookupBatch(std::string_view batch_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const internal::BatchState* state = book_->Find(batch_id);
  if (state == nullptr) {
    return Error(Code::kNotFound,
                 "no batch '" + std::string(batch_id.substr(0, 80)) + "' in the verified registry");
  }
  return VerifiedBatch{state->latest, state->claims};
}

size_t ServingDirectory::device_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_->size();
}

}  // namespace hallmark::registry
