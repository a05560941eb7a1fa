#include "registry/internal/batch_book.h"

#include "registry/record.h"

namespace hallmark::registry::internal {
namespace {

std::string SerialKey(std::string_view batch_id, std::string_view serial) {
  std::string key(batch_id);
  key.append("\n").append(serial);
  return key;
}

}  // namespace

const BatchState* BatchBook::Find(std::string_view batch_id) const {
  auto it = batches_.find(batch_id);
  if (it != batches_.end()) {
    return &it->second;
  }
  return base_ != nullptr ? base_->Find(batch_id) : nullptr;
}

BatchState* BatchBook::Mutable(const std::string& batch_id) {
  auto it = batches_.find(batch_id);
  if (it != batches_.end()) {
    return &it->second;
  }
  const BatchState* inherited = base_ != nullptr ? base_->Find(batch_id) : nullptr;
  if (inherited == nullptr) {
    return nullptr;
  }
  return &batches_.emplace(batch_id, *inherited).first->second;
}

bool BatchBook::SerialTaken(const std::string& key) const {
  return serials_.count(key) > 0 || (base_ != nullptr && base_->SerialTaken(key));
}

Result<const BatchState*> BatchBook::ApplyBatchEntry(const LogEntry& entry) {
  auto parsed = ParseCanonicalBatch(entry.entry);
  if (!parsed) {
    return parsed.error();
  }
  BatchDefinition& b = *parsed;
  b.signature = entry.signature;
  std::string at = "log entry " + std::to_string(entry.seq);
  if (b.seq != entry.seq) {
    return Error(Code::kInvalidArgument,
                 at + " holds batch " + b.batch_id + " signed for entry " + std::to_string(b.seq));
  }
  if (auto s = VerifyBatch(registrar_, b); !s) {
    return s.error();
  }
  const BatchState* old = Find(b.batch_id);
  if (old == nullptr) {
    if (b.status != BatchStatus::kActive) {
      return Error(Code::kFailedPrecondition,
                   at + " defines batch " + b.batch_id + " as revoked; a batch starts active");
    }
    auto key = PublicKey::FromDer(b.enrollment_key);
    if (!key) {
      return Error(Code::kInvalidArgument,
                   at + ": batch " + b.batch_id + "'s enrollment key does not parse");
    }
    BatchState state{b, *key, entry.seq, std::nullopt, 0};
    std::string id = b.batch_id;
    return &(batches_.insert_or_assign(std::move(id), std::move(state)).first->second);
  }
  const BatchDefinition& was = old->latest;
  if (was.status == BatchStatus::kRevoked || b.status != BatchStatus::kRevoked ||
      b.owner != was.owner || b.size != was.size || b.expires_at != was.expires_at ||
      b.verifier != was.verifier || b.enrollment_key != was.enrollment_key ||
      b.created_at != was.created_at) {
    return Error(Code::kFailedPrecondition,
                 at + " changes batch " + b.batch_id +
                     " other than by revoking it; a batch's limits never change");
  }
  BatchState* state = Mutable(b.batch_id);
  state->latest = std::move(b);
  state->revoked_seq = entry.seq;
  return state;
}

Status BatchBook::ApplyEnrollment(const DeviceRecord& r, bool first_entry) {
  std::string_view batch_id = SignerBatch(r.signer).value_or("");
  std::string what = "enrollment record of device " + r.device_id + " (log entry " +
                     std::to_string(r.seq) + ", batch " + std::string(batch_id) + ")";
  auto refuse = [&what](const std::string& why) {
    return Error(Code::kPermissionDenied, what + " " + why);
  };
  const BatchState* found = Find(batch_id);
  if (found == nullptr || found->first_seq >= r.seq) {
    return refuse("names a batch that no registrar-signed definition before it defines");
  }
  const BatchDefinition& b = found->latest;
  if (found->revoked_seq.has_value() && *found->revoked_seq < r.seq) {
    return refuse("comes after the batch was revoked (log entry " +
                  std::to_string(*found->revoked_seq) + ")");
  }
  if (!first_entry) {
    return refuse("is not the device's first entry; an enrollment key only adds new devices");
  }
  if (r.status != DeviceStatus::kActive || r.path != ProvisioningPath::kBatch) {
    return refuse("is not an active record on the batch path");
  }
  if (r.owner != b.owner) {
    return refuse("names owner '" + r.owner + "', not the batch's '" + b.owner + "'");
  }
  if (r.created_at > b.expires_at) {
    return refuse("was created at " + std::to_string(r.created_at) + ", after the batch expired (" +
                  std::to_string(b.expires_at) + ")");
  }
  std::string serial_key = SerialKey(batch_id, r.serial);
  if (r.serial.empty() || SerialTaken(serial_key)) {
    return refuse("claims serial '" + r.serial + "', which is empty or already claimed");
  }
  if (found->claims >= b.size) {
    return refuse("exceeds the batch size of " + std::to_string(b.size));
  }
  Mutable(std::string(batch_id))->claims += 1;
  serials_.insert(std::move(serial_key));
  return OkStatus();
}

std::optional<PublicKey> BatchBook::SignerKey(std::string_view signer, uint64_t seq) const {
  if (signer == kRegistrarSigner) {
    return registrar_;
  }
  auto batch_id = SignerBatch(signer);
  if (!batch_id.has_value()) {
    return std::nullopt;
  }
  const BatchState* state = Find(*batch_id);
  if (state == nullptr || state->first_seq >= seq) {
    return std::nullopt;
  }
  return state->enrollment_key;
}

void BatchBook::MergeInto(BatchBook* base) && {
  for (auto& [id, state] : batches_) {
    base->batches_.insert_or_assign(id, std::move(state));
  }
  base->serials_.merge(serials_);
}

Result<PublicKey> ResolveHeadKey(Reader& r, const BatchBook& batches, const TreeHead& head) {
  auto key = batches.SignerKey(head.signer, head.tree_size);
  if (!key.has_value()) {
    return Error(Code::kDataLoss, "names signer '" + head.signer.substr(0, 80) +
                                      "', which is neither the registrar nor a batch defined in "
                                      "the log it covers");
  }
  if (head.signer == kRegistrarSigner) {
    return *key;
  }
  if (head.tree_size == 0) {
    return Error(Code::kDataLoss, "is empty but signed by " + head.signer);
  }
  auto last = r.GetLogEntry(head.tree_size - 1);
  if (!last) {
    return last.error();
  }
  if (!last->has_value() || IsBatchEntry((*last)->entry) ||
      EntrySigner((*last)->entry) != std::string_view(head.signer)) {
    return Error(Code::kDataLoss, "is signed by " + head.signer +
                                      " but does not end with an enrollment that key signed");
  }
  return *key;
}

Result<BatchBook> ReadBatchKeys(Reader& reader, const PublicKey& registrar, uint64_t end,
                                const BatchScope& scope) {
  BatchBook book(registrar);
  if (!scope.all && scope.ids.empty()) {
    return book;
  }
  Status s = reader.ScanBatchLog(end, [&](LogEntry&& e) -> Status {
    auto parsed = ParseCanonicalBatch(e.entry);
    if (parsed && scope.Includes(parsed->batch_id)) {
      (void)book.ApplyBatchEntry(e);
    }
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  return book;
}

}  // namespace hallmark::registry::internal
