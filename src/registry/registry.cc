#include "registry/registry.h"

#include <unistd.h>

#include "registry/internal/line_reader.h"
#include "registry/manifest.h"
#include "registry/merkle.h"
#include "registry/record.h"
#include "registry/sqlite_storage.h"

namespace hallmark::registry {
namespace {

constexpr std::string_view kMetaRegistrarKey = "registrar_public_key";
constexpr std::string_view kVerifyHint = "; run `hallmark registry verify`";

// KeyFingerprint names a key in messages: the first 16 hex digits of the SHA-256 of its SPKI.
std::string KeyFingerprint(const PublicKey& key) { return key.DeviceId().substr(0, 16); }

Result<PublicKey> ReadStoredRegistrarKey(Reader& r, const std::string& where) {
  auto pem = r.GetMeta(kMetaRegistrarKey);
  if (!pem) {
    return pem.error();
  }
  if (!pem->has_value()) {
    return Error(Code::kFailedPrecondition,
                 "registry " + where + " has no registrar key; it was never initialised");
  }
  auto key = PublicKey::FromPem(**pem);
  if (!key) {
    return Error(Code::kDataLoss, "registry " + where +
                                      " stores a registrar key that does not "
                                      "parse" +
                                      std::string(kVerifyHint));
  }
  return key;
}

// CheckRow verifies a stored record against the registrar key and the log: the checks a
// registrar makes before it builds on a row, and `registry show` makes before it prints one.
// `covered` is the size of the newest verified tree head.
Status CheckRow(Reader& r, const PublicKey& registrar, const DeviceRecord& row, uint64_t covered) {
  std::string device = "device " + row.device_id;
  if (!VerifyRecord(registrar, row)) {
    return Error(Code::kDataLoss, device +
                                      ": its record's signature does not verify with the "
                                      "registrar key (altered or inserted row)" +
                                      std::string(kVerifyHint));
  }
  auto canonical = CanonicalRecord(row);
  if (!canonical) {
    return Error(Code::kDataLoss, device + ": " + canonical.error().message());
  }
  auto entry = r.GetLogEntry(row.seq);
  if (!entry) {
    return entry.error();
  }
  if (!entry->has_value() ||
      std::string_view(reinterpret_cast<const char*>((*entry)->entry.data()),
                       (*entry)->entry.size()) != *canonical ||
      (*entry)->signature != row.signature) {
    return Error(Code::kDataLoss, device + ": its row is not what log entry " +
                                      std::to_string(row.seq) + " holds" +
                                      std::string(kVerifyHint));
  }
  if (row.seq >= covered) {
    return Error(Code::kDataLoss, device + ": log entry " + std::to_string(row.seq) +
                                      " is not covered by the newest signed tree head (size " +
                                      std::to_string(covered) + ")" + std::string(kVerifyHint));
  }
  uint64_t newest = row.seq;
  Status scanned = r.ScanDeviceLog(row.device_id, [&newest](LogEntry&& e) -> Status {
    newest = std::max(newest, e.seq);
    return OkStatus();
  });
  if (!scanned) {
    return scanned;
  }
  if (newest != row.seq) {
    return Error(Code::kDataLoss, device + ": its row holds log entry " + std::to_string(row.seq) +
                                      " but the device's latest is " + std::to_string(newest) +
                                      " (rolled back)" + std::string(kVerifyHint));
  }
  return OkStatus();
}

// VerifiedNewestHead returns the newest tree head after checking its signature with
// `registrar` and its stored compact range against its root.
Result<std::pair<TreeHead, CompactRange>> VerifiedNewestHead(Reader& r, const PublicKey& registrar,
                                                             const std::string& where) {
  auto stored = r.NewestHead();
  if (!stored) {
    return stored.error();
  }
  if (!stored->has_value()) {
    return Error(Code::kDataLoss,
                 "registry " + where + " has no signed tree head" + std::string(kVerifyHint));
  }
  const StoredHead& h = **stored;
  if (!VerifyTreeHead(registrar, h.head)) {
    return Error(Code::kDataLoss, "the newest tree head #" + std::to_string(h.id) + " of " + where +
                                      " does not verify with the registrar key (forged?)" +
                                      std::string(kVerifyHint));
  }
  auto range = CompactRange::FromBytes(h.head.tree_size, h.compact_range);
  if (!range || range->Root() != h.head.root_hash) {
    return Error(Code::kDataLoss, "the compact range stored with tree head #" +
                                      std::to_string(h.id) + " does not match its root" +
                                      std::string(kVerifyHint));
  }
  return std::make_pair(h.head, std::move(*range));
}

// WriteSession is one registrar operation: it checks that the registry is in a state the
// registrar signed, appends signed records, and finally signs a new tree head and commits.
class WriteSession {
 public:
  static Result<WriteSession> Begin(Storage& storage, const RegistrarKey& registrar,
                                    const Clock* clock) {
    auto w = storage.Write();
    if (!w) {
      return w.error();
    }
    std::string where = storage.Describe();
    auto stored = ReadStoredRegistrarKey(**w, where);
    if (!stored) {
      return stored.error();
    }
    if (!(*stored == registrar.Public())) {
      return Error(Code::kPermissionDenied,
                   "this registrar key (" + KeyFingerprint(registrar.Public()) +
                       ") is not the registrar of " + where + " (" + KeyFingerprint(*stored) + ")");
    }
    auto head = VerifiedNewestHead(**w, registrar.Public(), where);
    if (!head) {
      return head.error();
    }
    auto size = (*w)->LogSize();
    if (!size) {
      return size.error();
    }
    // Each operation appends entries and their head in one transaction, so the log is exactly
    // as long as the newest head says; anything else is tampering, never a crash.
    if (*size != head->first.tree_size) {
      return Error(Code::kDataLoss, "the log of " + where + " has " + std::to_string(*size) +
                                        " entries but its newest signed head covers " +
                                        std::to_string(head->first.tree_size) +
                                        std::string(kVerifyHint));
    }
    return WriteSession(std::move(*w), registrar, clock, std::move(head->first),
                        std::move(head->second));
  }

  Writer& writer() { return *w_; }
  int64_t now() const { return now_; }
  // base_head is the verified head the session builds on.
  const TreeHead& base_head() const { return base_head_; }
  uint64_t covered() const { return base_head_.tree_size; }
  bool changed() const { return range_.size() != base_head_.tree_size; }

  // Append signs `record` as the next log entry and stores it in the log and devices.
  Status Append(DeviceRecord* record) {
    record->seq = range_.size();
    record->signer = std::string(kRegistrarSigner);
    auto canonical = CanonicalRecord(*record);
    if (!canonical) {
      return canonical.error();
    }
    auto sig = registrar_->key().Sign(AsBytes(*canonical));
    if (!sig) {
      return sig.error();
    }
    record->signature = std::move(*sig);
    LogEntry e;
    e.seq = record->seq;
    e.entry.assign(canonical->begin(), canonical->end());
    e.signature = record->signature;
    if (auto s = w_->AppendLog(e); !s) {
      return s;
    }
    if (auto s = w_->PutDevice(*record); !s) {
      return s;
    }
    range_.Append(LeafHash(e.entry));
    return OkStatus();
  }

  // CheckHistoryEmpty fails if the log has entries for `device_id` although it has no row.
  Status CheckHistoryEmpty(const std::string& device_id) {
    std::optional<uint64_t> found;
    Status s = w_->ScanDeviceLog(device_id, [&found](LogEntry&& e) -> Status {
      found = e.seq;
      return OkStatus();
    });
    if (!s) {
      return s;
    }
    if (found.has_value()) {
      return Error(Code::kDataLoss, "device " + device_id + " has log entry " +
                                        std::to_string(*found) + " but no row (deleted?)" +
                                        std::string(kVerifyHint));
    }
    return OkStatus();
  }

  // Commit signs the head over everything appended and commits. Returns the new head.
  Result<TreeHead> Commit() {
    TreeHead head;
    head.tree_size = range_.size();
    head.root_hash = range_.Root();
    head.timestamp = now_;
    head.signer = std::string(kRegistrarSigner);
    if (auto s = SignTreeHead(registrar_->key(), &head); !s) {
      return s.error();
    }
    if (auto s = w_->AddHead(head, range_.Serialize()); !s) {
      return s.error();
    }
    if (auto s = w_->Commit(); !s) {
      return s.error();
    }
    return head;
  }

 private:
  WriteSession(std::unique_ptr<Writer> w, const RegistrarKey& registrar, const Clock* clock,
               TreeHead base_head, CompactRange range)
      : w_(std::move(w)),
        registrar_(&registrar),
        now_(clock->Now()),
        base_head_(std::move(base_head)),
        range_(std::move(range)) {}

  std::unique_ptr<Writer> w_;
  const RegistrarKey* registrar_;
  int64_t now_;
  TreeHead base_head_;
  CompactRange range_;
};

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

Result<Registry> Registry::Create(const std::string& db_path, const RegistrarKey& registrar,
                                  const Clock* clock) {
  auto storage = SqliteStorage::Create(db_path);
  if (!storage) {
    return storage.error();
  }
  auto registry = Initialize(std::move(*storage), registrar, clock);
  if (!registry) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      ::unlink((db_path + suffix).c_str());
    }
  }
  return registry;
}

Result<Registry> Registry::Open(const std::string& db_path, const Clock* clock) {
  auto storage = SqliteStorage::Open(db_path);
  if (!storage) {
    return storage.error();
  }
  return Attach(std::move(*storage), clock);
}

Result<Registry> Registry::Initialize(std::unique_ptr<Storage> storage,
                                      const RegistrarKey& registrar, const Clock* clock) {
  {
    auto w = storage->Write();
    if (!w) {
      return w.error();
    }
    auto existing = (*w)->GetMeta(kMetaRegistrarKey);
    if (!existing) {
      return existing.error();
    }
    if (existing->has_value()) {
      return Error(Code::kAlreadyExists,
                   "registry " + storage->Describe() + " already has a registrar");
    }
    if (auto s = (*w)->PutMeta(kMetaRegistrarKey, registrar.Public().ToPem()); !s) {
      return s.error();
    }
    if (auto s = (*w)->PutMeta("created_at", std::to_string(clock->Now())); !s) {
      return s.error();
    }
    TreeHead head;
    head.root_hash = EmptyTreeHash();
    head.timestamp = clock->Now();
    head.signer = std::string(kRegistrarSigner);
    if (auto s = SignTreeHead(registrar.key(), &head); !s) {
      return s.error();
    }
    if (auto s = (*w)->AddHead(head, {}); !s) {
      return s.error();
    }
    if (auto s = (*w)->Commit(); !s) {
      return s.error();
    }
  }
  return Registry(std::move(storage), registrar.Public(), clock);
}

Result<Registry> Registry::Attach(std::unique_ptr<Storage> storage, const Clock* clock) {
  std::optional<PublicKey> key;
  {
    auto r = storage->Read();
    if (!r) {
      return r.error();
    }
    auto stored = ReadStoredRegistrarKey(**r, storage->Describe());
    if (!stored) {
      return stored.error();
    }
    key = std::move(*stored);
  }
  return Registry(std::move(storage), std::move(*key), clock);
}

Result<DeviceRecord> Registry::Add(const RegistrarKey& registrar, const AddRequest& request) {
  if (auto s = CheckDeviceKey(request.key); !s) {
    return s.error();
  }
  if (auto s = ValidateSerial(request.serial); !s) {
    return s.error();
  }
  if (auto s = ValidateText("owner", request.owner, kMaxOwnerLength); !s) {
    return s.error();
  }
  auto session = WriteSession::Begin(*storage_, registrar, clock_);
  if (!session) {
    return session.error();
  }
  std::string id = request.key.DeviceId();
  auto existing = session->writer().GetDevice(id);
  if (!existing) {
    return existing.error();
  }
  if (existing->has_value()) {
    const DeviceRecord& e = **existing;
    return Error(Code::kAlreadyExists, "device " + id + " is already registered (status " +
                                           std::string(DeviceStatusName(e.status)) + ", serial '" +
                                           e.serial + "')");
  }
  if (auto s = session->CheckHistoryEmpty(id); !s) {
    return s.error();
  }
  DeviceRecord record;
  record.device_id = id;
  record.public_key = request.key.SpkiDer();
  record.status = DeviceStatus::kActive;
  record.owner = request.owner;
  record.path = request.path;
  record.serial = request.serial;
  record.created_at = session->now();
  record.updated_at = session->now();
  if (auto s = session->Append(&record); !s) {
    return s.error();
  }
  if (auto head = session->Commit(); !head) {
    return head.error();
  }
  return record;
}

Result<DeviceRecord> Registry::Revoke(const RegistrarKey& registrar, std::string_view device_id,
                                      std::string_view reason) {
  auto id = NormalizeDeviceId(device_id);
  if (!id) {
    return id.error();
  }
  if (auto s = ValidateText("reason", reason, kMaxReasonLength); !s) {
    return s.error();
  }
  auto session = WriteSession::Begin(*storage_, registrar, clock_);
  if (!session) {
    return session.error();
  }
  auto existing = session->writer().GetDevice(*id);
  if (!existing) {
    return existing.error();
  }
  if (!existing->has_value()) {
    if (auto s = session->CheckHistoryEmpty(*id); !s) {
      return s.error();
    }
    return Error(Code::kNotFound, "no device " + *id + " in the registry");
  }
  DeviceRecord record = std::move(**existing);
  // Never sign on top of a row the registrar did not write: that would launder tampering.
  if (auto s = CheckRow(session->writer(), registrar.Public(), record, session->covered()); !s) {
    return s.error();
  }
  if (record.status == DeviceStatus::kRevoked) {
    return Error(Code::kFailedPrecondition,
                 "device " + *id + " was already revoked at " + std::to_string(record.updated_at) +
                     (record.reason.empty() ? std::string() : " (" + record.reason + ")"));
  }
  record.status = DeviceStatus::kRevoked;
  record.reason = std::string(reason);
  record.updated_at = session->now();
  if (auto s = session->Append(&record); !s) {
    return s.error();
  }
  if (auto head = session->Commit(); !head) {
    return head.error();
  }
  return record;
}

Result<ImportSummary> Registry::Import(const RegistrarKey& registrar, std::istream& manifest,
                                       const PublicKey& factory_key, const ImportOptions& options) {
  if (auto s = ValidateText("owner", options.owner, kMaxOwnerLength); !s) {
    return s.error();
  }
  auto session = WriteSession::Begin(*storage_, registrar, clock_);
  if (!session) {
    return session.error();
  }
  ImportSummary summary;
  ImportProgress& counts = summary.counts;
  internal::LineReader reader(manifest, kMaxManifestLineLength);
  std::string line;
  for (;;) {
    auto more = reader.Next(&line);
    if (!more) {
      return Error(
          more.error().code() == Code::kOutOfRange ? Code::kInvalidArgument : more.error().code(),
          "manifest " + more.error().message() + "; nothing imported");
    }
    if (!*more) {
      break;
    }
    ++counts.lines;
    if (options.progress && counts.lines % options.progress_every == 0) {
      options.progress(counts);
    }
    if (IsBlank(line)) {
      continue;
    }
    auto at = [&reader](const Error& e) {
      return Error(e.code(),
                   "manifest line " + std::to_string(reader.line_number()) + ": " + e.message() +
                       "; nothing imported",
                   e.detail());
    };
    auto identity = ParseManifestLine(line, factory_key);
    if (!identity) {
      return at(identity.error());
    }
    std::string id = identity->key.DeviceId();
    auto existing = session->writer().GetDevice(id);
    if (!existing) {
      return at(existing.error());
    }
    if (existing->has_value()) {
      const DeviceRecord& e = **existing;
      if (e.status == DeviceStatus::kActive && e.serial == identity->serial &&
          e.owner == options.owner && e.public_key == identity->key.SpkiDer()) {
        ++counts.skipped;
        continue;
      }
      return at(Error(Code::kAlreadyExists, "device " + id +
                                                " is already registered with serial '" + e.serial +
                                                "', owner '" + e.owner + "', status " +
                                                std::string(DeviceStatusName(e.status)) +
                                                "; import never changes a registered device"));
    }
    if (auto s = session->CheckHistoryEmpty(id); !s) {
      return at(s.error());
    }
    DeviceRecord record;
    record.device_id = id;
    record.public_key = identity->key.SpkiDer();
    record.status = DeviceStatus::kActive;
    record.owner = options.owner;
    record.path = ProvisioningPath::kExtract;
    record.serial = std::move(identity->serial);
    record.created_at = session->now();
    record.updated_at = session->now();
    if (auto s = session->Append(&record); !s) {
      return at(s.error());
    }
    ++counts.imported;
  }
  if (options.progress) {
    options.progress(counts);
  }
  if (!session->changed()) {
    // Nothing new (an empty manifest or a re-run): leave the registry exactly as it was.
    summary.head = session->base_head();
    return summary;
  }
  auto head = session->Commit();
  if (!head) {
    return head.error();
  }
  summary.head = std::move(*head);
  return summary;
}

Result<DeviceRecord> Registry::Find(std::string_view device_id) {
  auto id = NormalizeDeviceId(device_id);
  if (!id) {
    return id.error();
  }
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  auto row = (*r)->GetDevice(*id);
  if (!row) {
    return row.error();
  }
  if (!row->has_value()) {
    return Error(Code::kNotFound, "no device " + *id + " in the registry");
  }
  return std::move(**row);
}

Status Registry::CheckDevice(const DeviceRecord& record, const PublicKey& registrar) {
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  auto head = VerifiedNewestHead(**r, registrar, storage_->Describe());
  if (!head) {
    return head.error();
  }
  return CheckRow(**r, registrar, record, head->first.tree_size);
}

Result<std::vector<LogEntry>> Registry::History(std::string_view device_id) {
  auto id = NormalizeDeviceId(device_id);
  if (!id) {
    return id.error();
  }
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  std::vector<LogEntry> out;
  Status s = (*r)->ScanDeviceLog(*id, [&out](LogEntry&& e) -> Status {
    out.push_back(std::move(e));
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  return out;
}

Status Registry::ForEachDevice(std::optional<DeviceStatus> status,
                               const std::function<Status(const DeviceRecord&)>& visit) {
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  return (*r)->ScanDevices(status, [&visit](DeviceRow&& row) -> Status {
    if (!row.record) {
      return Error(Code::kDataLoss, row.record.error().message() + std::string(kVerifyHint));
    }
    return visit(*row.record);
  });
}

Result<StoredHead> Registry::NewestHead() {
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  auto head = (*r)->NewestHead();
  if (!head) {
    return head.error();
  }
  if (!head->has_value()) {
    return Error(Code::kDataLoss, "registry " + storage_->Describe() + " has no tree head" +
                                      std::string(kVerifyHint));
  }
  return std::move(**head);
}

Result<VerifyReport> Registry::Verify(const PublicKey& registrar, const VerifyOptions& options) {
  return VerifyStorage(*storage_, registrar, options);
}

Result<std::vector<Hash>> Registry::LeafHashes(uint64_t size) {
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  std::vector<Hash> leaves;
  Status s = (*r)->ScanLog(0, size, [&leaves](LogEntry&& e) -> Status {
    if (e.seq != leaves.size()) {
      return Error(Code::kDataLoss, "log entry " + std::to_string(leaves.size()) + " is missing" +
                                        std::string(kVerifyHint));
    }
    leaves.push_back(LeafHash(e.entry));
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  if (leaves.size() < size) {
    return Error(Code::kOutOfRange, "the log has " + std::to_string(leaves.size()) +
                                        " entries, fewer than " + std::to_string(size));
  }
  return leaves;
}

Result<std::vector<Hash>> Registry::InclusionProof(uint64_t seq, uint64_t tree_size) {
  auto leaves = LeafHashes(tree_size);
  if (!leaves) {
    return leaves.error();
  }
  return registry::InclusionProof(*leaves, seq, tree_size);
}

Result<std::vector<Hash>> Registry::ConsistencyProof(uint64_t first, uint64_t second) {
  auto leaves = LeafHashes(second);
  if (!leaves) {
    return leaves.error();
  }
  return registry::ConsistencyProof(*leaves, first, second);
}

}  // namespace hallmark::registry
