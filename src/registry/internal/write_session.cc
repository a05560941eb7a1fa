#include "registry/internal/write_session.h"

#include <algorithm>

#include "registry/internal/canonical_text.h"
#include "registry/record.h"

namespace hallmark::registry::internal {
namespace {

constexpr std::string_view kMetaRegistrarKey = "registrar_public_key";

std::string Hint() { return std::string(kVerifyHint); }

}  // namespace

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
    return Error(Code::kDataLoss,
                 "registry " + where + " stores a registrar key that does not parse" + Hint());
  }
  return key;
}

Result<VerifiedState> ReadVerifiedState(Reader& r, const PublicKey& registrar,
                                        const std::string& where, BatchScope scope) {
  auto stored = r.NewestHead();
  if (!stored) {
    return stored.error();
  }
  if (!stored->has_value()) {
    return Error(Code::kDataLoss, "registry " + where + " has no signed tree head" + Hint());
  }
  const StoredHead& h = **stored;
  if (auto head_batch = SignerBatch(h.head.signer); head_batch.has_value()) {
    scope.ids.emplace_back(*head_batch);
  }
  auto batches = ReadBatchKeys(r, registrar, h.head.tree_size, scope);
  if (!batches) {
    return batches.error();
  }
  std::string name = "the newest tree head #" + std::to_string(h.id) + " of " + where;
  auto key = ResolveHeadKey(r, *batches, h.head);
  if (!key) {
    if (key.error().code() != Code::kDataLoss) {
      return key.error();
    }
    return Error(Code::kDataLoss, name + " " + key.error().message() + Hint());
  }
  if (!VerifyTreeHead(*key, h.head)) {
    return Error(Code::kDataLoss,
                 name + " does not verify with the " + h.head.signer + " key (forged?)" + Hint());
  }
  auto range = CompactRange::FromBytes(h.head.tree_size, h.compact_range);
  if (!range || range->Root() != h.head.root_hash) {
    return Error(Code::kDataLoss, "the compact range stored with tree head #" +
                                      std::to_string(h.id) + " does not match its root" + Hint());
  }
  return VerifiedState{h.head, std::move(*range), std::move(*batches)};
}

Result<VerifiedSnapshot> ReadVerifiedSnapshot(Storage& storage, const PublicKey& registrar,
                                              BatchScope scope) {
  auto r = storage.Read();
  if (!r) {
    return r.error();
  }
  auto state = ReadVerifiedState(**r, registrar, storage.Describe(), std::move(scope));
  if (!state) {
    return state.error();
  }
  return VerifiedSnapshot{std::move(*r), std::move(*state)};
}

Status CheckStoredRow(Reader& r, const BatchBook& batches, const DeviceRecord& row,
                      uint64_t covered) {
  std::string device = "device " + row.device_id;
  auto key = batches.SignerKey(row.signer, row.seq);
  if (!key.has_value() || !VerifyRecord(*key, row)) {
    return Error(Code::kDataLoss, device + ": its record's signature does not verify with the " +
                                      (key.has_value() ? row.signer : "registrar") +
                                      " key (altered or inserted row)" + Hint());
  }
  auto canonical = CanonicalRecord(row);
  if (!canonical) {
    return Error(Code::kDataLoss, device + ": " + canonical.error().message());
  }
  auto entry = r.GetLogEntry(row.seq);
  if (!entry) {
    return entry.error();
  }
  if (!entry->has_value() || AsText((*entry)->entry) != *canonical ||
      (*entry)->signature != row.signature) {
    return Error(Code::kDataLoss, device + ": its row is not what log entry " +
                                      std::to_string(row.seq) + " holds" + Hint());
  }
  if (row.seq >= covered) {
    return Error(Code::kDataLoss, device + ": log entry " + std::to_string(row.seq) +
                                      " is not covered by the newest signed tree head (size " +
                                      std::to_string(covered) + ")" + Hint());
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
                                      " (rolled back)" + Hint());
  }
  return OkStatus();
}

Status CheckEnrollmentLimits(Reader& r, const BatchBook& batches, const DeviceRecord& record) {
  bool first_entry = true;
  Status scanned = r.ScanDeviceLog(record.device_id, [&](LogEntry&& e) -> Status {
    first_entry = first_entry && e.seq >= record.seq;
    return OkStatus();
  });
  if (!scanned) {
    return scanned;
  }
  // A scratch overlay applies the per-record rules without counting: this partial check does
  // not know how many claims came before (`registry verify` replays them all).
  BatchBook scratch(batches.registrar(), &batches);
  if (auto s = scratch.ApplyEnrollment(record, first_entry); !s) {
    return Error(Code::kDataLoss, s.error().message() + Hint());
  }
  std::string batch_id(SignerBatch(record.signer).value_or(""));
  auto claim = r.GetClaim(batch_id, record.serial);
  if (!claim) {
    return claim.error();
  }
  if (!claim->has_value() || (*claim)->device_id != record.device_id ||
      (*claim)->seq != record.seq) {
    return Error(Code::kDataLoss, "device " + record.device_id + ": the claims index of batch " +
                                      batch_id + " does not list it for serial '" + record.serial +
                                      "'" + Hint());
  }
  return OkStatus();
}

Result<WriteSession> WriteSession::Open(Storage& storage, const PublicKey& registrar,
                                        const Clock* clock, bool as_registrar) {
  auto w = storage.Write();
  if (!w) {
    return w.error();
  }
  std::string where = storage.Describe();
  if (as_registrar) {
    auto stored = ReadStoredRegistrarKey(**w, where);
    if (!stored) {
      return stored.error();
    }
    if (!(*stored == registrar)) {
      return Error(Code::kPermissionDenied, "this registrar key (" + KeyFingerprint(registrar) +
                                                ") is not the registrar of " + where + " (" +
                                                KeyFingerprint(*stored) + ")");
    }
  }
  auto state = ReadVerifiedState(**w, registrar, where);
  if (!state) {
    return state.error();
  }
  auto size = (*w)->LogSize();
  if (!size) {
    return size.error();
  }
  // Each operation appends entries and their head in one transaction, so the log is exactly
  // as long as the newest head says; anything else is tampering, never a crash.
  if (*size != state->head.tree_size) {
    return Error(Code::kDataLoss, "the log of " + where + " has " + std::to_string(*size) +
                                      " entries but its newest signed head covers " +
                                      std::to_string(state->head.tree_size) + Hint());
  }
  return WriteSession(std::move(*w), std::move(where), registrar, clock, std::move(*state));
}

Result<const BatchState*> WriteSession::StrictBatch(std::string_view batch_id) {
  if (strict_.count(std::string(batch_id)) > 0) {
    return book_.Find(batch_id);
  }
  // ReadBatchKeys skips invalid entries; here every entry of this batch must verify.
  BatchBook strict(registrar_);
  std::optional<Error> failure;
  Status s = w_->ScanBatchLog(range_.size(), [&](LogEntry&& e) -> Status {
    auto parsed = ParseCanonicalBatch(e.entry);
    if (parsed && parsed->batch_id != batch_id) {
      return OkStatus();
    }
    if (auto applied = strict.ApplyBatchEntry(e); !applied) {
      failure = applied.error();
    }
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  if (failure.has_value()) {
    return Error(Code::kDataLoss,
                 "batch " + std::string(batch_id) + ": " + failure->message() + Hint());
  }
  if (strict.Find(batch_id) == nullptr) {
    return Error(Code::kNotFound, "no batch '" + std::string(batch_id) + "' in the registry");
  }
  std::move(strict).MergeInto(&book_);
  strict_.insert(std::string(batch_id));
  return book_.Find(batch_id);
}

Status WriteSession::Append(DeviceRecord* record, const SessionSigner& signer) {
  record->seq = range_.size();
  record->signer = signer.name;
  auto canonical = CanonicalRecord(*record);
  if (!canonical) {
    return canonical.error();
  }
  auto sig = signer.key->Sign(AsBytes(*canonical));
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

Status WriteSession::AppendBatch(BatchDefinition* batch, const PrivateKey& registrar_key) {
  batch->seq = range_.size();
  batch->signer = std::string(kRegistrarSigner);
  auto canonical = CanonicalBatch(*batch);
  if (!canonical) {
    return canonical.error();
  }
  auto sig = registrar_key.Sign(AsBytes(*canonical));
  if (!sig) {
    return sig.error();
  }
  batch->signature = std::move(*sig);
  LogEntry e;
  e.seq = batch->seq;
  e.entry.assign(canonical->begin(), canonical->end());
  e.signature = batch->signature;
  if (auto applied = book_.ApplyBatchEntry(e); !applied) {
    return applied.error();
  }
  if (auto s = w_->AppendLog(e); !s) {
    return s;
  }
  range_.Append(LeafHash(e.entry));
  return OkStatus();
}

Status WriteSession::CheckHistoryEmpty(const std::string& device_id) {
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
                                      std::to_string(*found) + " but no row (deleted?)" + Hint());
  }
  return OkStatus();
}

Status WriteSession::CheckRow(const DeviceRecord& row) {
  if (auto batch = SignerBatch(row.signer); batch.has_value()) {
    auto loaded = StrictBatch(*batch);
    if (!loaded && loaded.error().code() != Code::kNotFound) {
      return loaded.error();
    }
  }
  return CheckStoredRow(*w_, book_, row, covered());
}

Result<TreeHead> WriteSession::Commit(const SessionSigner& signer) {
  if (!changed()) {
    if (auto s = w_->Commit(); !s) {
      return s.error();
    }
    return base_head_;
  }
  TreeHead head;
  head.tree_size = range_.size();
  head.root_hash = range_.Root();
  head.timestamp = now_;
  head.signer = signer.name;
  if (auto s = SignTreeHead(*signer.key, &head); !s) {
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

}  // namespace hallmark::registry::internal
