// Registry operations of the enrollment paths (docs/enrollment.md): batches and their claims,
// and operator approval of pending devices.
#include <algorithm>

#include "registry/internal/write_session.h"
#include "registry/manifest.h"
#include "registry/record.h"
#include "registry/registry.h"

namespace hallmark::registry {
namespace {

using internal::BatchState;
using internal::SessionSigner;
using internal::WriteSession;

SessionSigner AsSigner(const RegistrarKey& registrar) {
  return SessionSigner{&registrar.key(), std::string(kRegistrarSigner)};
}

Status CheckEd25519(std::string_view what, const PublicKey& key) {
  if (key.Algorithm().family != KeyAlgorithm::Family::kEd25519) {
    return Error(Code::kInvalidArgument,
                 std::string(what) + " must be an Ed25519 key, not " + key.Algorithm().Describe());
  }
  return OkStatus();
}

// ResolvePending finds the pending request named by a device ID or a prefix of one.
Result<PendingDevice> ResolvePending(Reader& r, std::string_view id) {
  std::string wanted(id);
  std::transform(wanted.begin(), wanted.end(), wanted.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (IsDeviceId(wanted)) {
    auto found = r.GetPending(wanted);
    if (!found) {
      return found.error();
    }
    if (!found->has_value()) {
      return Error(Code::kNotFound, "no pending request from device " + wanted);
    }
    return std::move(**found);
  }
  if (wanted.size() < 8 || wanted.size() > 64 ||
      wanted.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Error(Code::kInvalidArgument, "'" + std::string(id.substr(0, 80)) +
                                             "' is not a device ID or a prefix of at least 8 "
                                             "hex digits of one");
  }
  std::vector<PendingDevice> matches;
  Status s = r.ScanPending([&](PendingDevice&& p) -> Status {
    if (p.device_id.compare(0, wanted.size(), wanted) == 0) {
      matches.push_back(std::move(p));
    }
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  if (matches.empty()) {
    return Error(Code::kNotFound,
                 "no pending request from a device whose ID starts with " + wanted);
  }
  if (matches.size() > 1) {
    return Error(Code::kInvalidArgument, std::to_string(matches.size()) +
                                             " pending devices have IDs starting with " + wanted +
                                             "; give more digits");
  }
  return std::move(matches.front());
}

// BatchInfoFor fills the counts of one verified batch.
Result<BatchInfo> BatchInfoFor(Reader& r, const BatchState& state) {
  BatchInfo info;
  info.definition = state.latest;
  info.first_seq = state.first_seq;
  auto claims = r.CountClaims(state.latest.batch_id);
  if (!claims) {
    return claims.error();
  }
  info.claims = *claims;
  Status s = r.ScanCloneAlerts(state.latest.batch_id, [&info](CloneAlert&&) -> Status {
    ++info.clone_alerts;
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  return info;
}

// CollectBatches returns the batches (only `only`, if given) whose definitions verify with
// `registrar`, with their counts.
Result<std::vector<BatchInfo>> CollectBatches(Storage& storage, const PublicKey& registrar,
                                              std::optional<std::string_view> only) {
  internal::BatchScope scope{!only.has_value(), {}};
  if (only.has_value()) {
    scope.ids.emplace_back(*only);
  }
  auto snap = internal::ReadVerifiedSnapshot(storage, registrar, std::move(scope));
  if (!snap) {
    return snap.error();
  }
  std::vector<BatchInfo> out;
  std::optional<Error> failure;
  snap->state.batches.ForEach([&](const BatchState& batch) {
    if (failure.has_value() || (only.has_value() && batch.latest.batch_id != *only)) {
      return;
    }
    auto info = BatchInfoFor(*snap->reader, batch);
    if (!info) {
      failure = info.error();
      return;
    }
    out.push_back(std::move(*info));
  });
  if (failure.has_value()) {
    return *failure;
  }
  return out;
}

}  // namespace

Result<BatchDefinition> Registry::CreateBatch(const RegistrarKey& registrar,
                                              const BatchRequest& request) {
  if (auto s = ValidateBatchId(request.batch_id); !s) {
    return s.error();
  }
  if (auto s = CheckEd25519("the batch verifier", request.verifier); !s) {
    return s.error();
  }
  if (auto s = CheckEd25519("the enrollment key", request.enrollment_key); !s) {
    return s.error();
  }
  auto session = WriteSession::BeginAsRegistrar(*storage_, registrar.Public(), clock_);
  if (!session) {
    return session.error();
  }
  if (request.expires_at <= session->now()) {
    return Error(Code::kInvalidArgument,
                 "batch expiry " + std::to_string(request.expires_at) + " is not in the future");
  }
  bool used = false;
  Status scanned = session->writer().ScanBatchLog(session->covered(), [&](LogEntry&& e) {
    auto parsed = ParseCanonicalBatch(e.entry);
    used = used || !parsed || parsed->batch_id == request.batch_id;
    return OkStatus();
  });
  if (!scanned) {
    return scanned.error();
  }
  if (used) {
    return Error(Code::kAlreadyExists, "batch " + request.batch_id +
                                           " already exists (or the log holds an unreadable "
                                           "batch entry); batch IDs are never reused");
  }
  BatchDefinition batch;
  batch.batch_id = request.batch_id;
  batch.status = BatchStatus::kActive;
  batch.owner = request.owner;
  batch.size = request.size;
  batch.expires_at = request.expires_at;
  batch.verifier = request.verifier.SpkiDer();
  batch.enrollment_key = request.enrollment_key.SpkiDer();
  batch.created_at = session->now();
  batch.updated_at = session->now();
  if (auto s = session->AppendBatch(&batch, registrar.key()); !s) {
    return s.error();
  }
  if (auto head = session->Commit(AsSigner(registrar)); !head) {
    return head.error();
  }
  return batch;
}

Result<BatchRevocation> Registry::RevokeBatch(const RegistrarKey& registrar,
                                              std::string_view batch_id, std::string_view reason,
                                              bool revoke_devices) {
  if (auto s = ValidateText("reason", reason, kMaxReasonLength); !s) {
    return s.error();
  }
  auto session = WriteSession::BeginAsRegistrar(*storage_, registrar.Public(), clock_);
  if (!session) {
    return session.error();
  }
  auto state = session->StrictBatch(batch_id);
  if (!state) {
    return state.error();
  }
  if ((*state)->latest.status == BatchStatus::kRevoked) {
    return Error(Code::kFailedPrecondition, "batch " + std::string(batch_id) +
                                                " was already revoked at log entry " +
                                                std::to_string((*state)->latest.seq));
  }
  BatchRevocation out;
  out.definition = (*state)->latest;
  out.definition.status = BatchStatus::kRevoked;
  out.definition.reason = std::string(reason);
  out.definition.updated_at = session->now();
  if (auto s = session->AppendBatch(&out.definition, registrar.key()); !s) {
    return s.error();
  }
  if (revoke_devices) {
    std::vector<ClaimRow> claims;
    Status scanned = session->writer().ScanClaims(batch_id, [&claims](ClaimRow&& c) -> Status {
      claims.push_back(std::move(c));
      return OkStatus();
    });
    if (!scanned) {
      return scanned.error();
    }
    for (const ClaimRow& claim : claims) {
      auto row = session->writer().GetDevice(claim.device_id);
      if (!row) {
        return row.error();
      }
      if (!row->has_value()) {
        return Error(Code::kDataLoss, "device " + claim.device_id + " claimed serial '" +
                                          claim.serial + "' of batch " + std::string(batch_id) +
                                          " but has no row" + std::string(internal::kVerifyHint));
      }
      DeviceRecord record = std::move(**row);
      if (auto s = session->CheckRow(record); !s) {
        return s.error();
      }
      if (record.status == DeviceStatus::kRevoked) {
        continue;
      }
      record.status = DeviceStatus::kRevoked;
      record.reason = ("batch " + std::string(batch_id) + " revoked" +
                       (reason.empty() ? std::string() : ": " + std::string(reason)))
                          .substr(0, kMaxReasonLength);
      record.updated_at = session->now();
      if (auto s = session->Append(&record, AsSigner(registrar)); !s) {
        return s.error();
      }
      out.revoked_devices.push_back(record.device_id);
    }
  }
  auto head = session->Commit(AsSigner(registrar));
  if (!head) {
    return head.error();
  }
  out.head = std::move(*head);
  return out;
}

Result<std::vector<BatchInfo>> Registry::ListBatches(const PublicKey& registrar) {
  return CollectBatches(*storage_, registrar, std::nullopt);
}

Result<BatchInfo> Registry::FindBatch(const PublicKey& registrar, std::string_view batch_id) {
  auto found = CollectBatches(*storage_, registrar, batch_id);
  if (!found) {
    return found.error();
  }
  if (found->empty()) {
    return Error(Code::kNotFound, "no batch '" + std::string(batch_id.substr(0, 80)) +
                                      "' signed by the registrar in the registry");
  }
  return std::move(found->front());
}

Result<std::vector<CloneAlert>> Registry::CloneAlerts(std::optional<std::string_view> batch_id) {
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  std::vector<CloneAlert> out;
  Status s = (*r)->ScanCloneAlerts(batch_id, [&out](CloneAlert&& a) -> Status {
    out.push_back(std::move(a));
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  return out;
}

Result<ClaimResult> Registry::Claim(const PublicKey& registrar, const PrivateKey& enrollment_key,
                                    const ClaimRequest& request) {
  if (auto s = ValidateBatchId(request.batch_id); !s) {
    return s.error();
  }
  if (auto s = ValidateSerial(request.serial); !s) {
    return s.error();
  }
  if (auto s = CheckDeviceKey(request.key); !s) {
    return s.error();
  }
  auto session = WriteSession::Begin(*storage_, registrar, clock_);
  if (!session) {
    return session.error();
  }
  auto found = session->StrictBatch(request.batch_id);
  if (!found) {
    return found.error();
  }
  const BatchDefinition& batch = (*found)->latest;
  const std::string& id = request.batch_id;
  if (!((*found)->enrollment_key == enrollment_key.Public())) {
    return Error(Code::kPermissionDenied, "batch " + id + " names enrollment key " +
                                              internal::KeyFingerprint((*found)->enrollment_key) +
                                              ", not this server's " +
                                              internal::KeyFingerprint(enrollment_key.Public()));
  }
  if (batch.status == BatchStatus::kRevoked) {
    return Error(Code::kFailedPrecondition, "batch " + id + " is revoked");
  }
  if (session->now() > batch.expires_at) {
    return Error(Code::kFailedPrecondition,
                 "batch " + id + " expired at " + std::to_string(batch.expires_at));
  }
  const std::string device_id = request.key.DeviceId();
  Writer& w = session->writer();
  auto claim = w.GetClaim(id, request.serial);
  if (!claim) {
    return claim.error();
  }
  if (claim->has_value()) {
    const ClaimRow& held = **claim;
    if (held.device_id == device_id) {
      auto row = w.GetDevice(device_id);
      if (!row) {
        return row.error();
      }
      if (row->has_value() && (*row)->seq == held.seq) {
        if (auto s = session->CheckRow(**row); !s) {
          return s.error();
        }
        return ClaimResult{std::move(**row), /*already_enrolled=*/true};
      }
    }
    // Two keys with the same batch secret and serial: one of them is probably a clone. Record
    // it (the only write) and refuse.
    CloneAlert alert{
        0, id, request.serial, device_id, held.device_id, request.peer, session->now()};
    if (auto s = w.AddCloneAlert(alert); !s) {
      return s.error();
    }
    if (auto head = session->Commit(SessionSigner{&enrollment_key, EnrollmentSigner(id)}); !head) {
      return head.error();
    }
    return Error(
        Code::kAlreadyExists,
        "serial '" + request.serial + "' of batch " + id +
            " was already claimed by another key; refused and flagged as a possible clone");
  }
  auto existing = w.GetDevice(device_id);
  if (!existing) {
    return existing.error();
  }
  if (existing->has_value()) {
    return Error(Code::kAlreadyExists, "device " + device_id + " is already registered (status " +
                                           std::string(DeviceStatusName((*existing)->status)) +
                                           ", serial '" + (*existing)->serial + "')");
  }
  if (auto s = session->CheckHistoryEmpty(device_id); !s) {
    return s.error();
  }
  auto used = w.CountClaims(id);
  if (!used) {
    return used.error();
  }
  if (*used >= batch.size) {
    return Error(Code::kResourceExhausted, "batch " + id + " is exhausted: all " +
                                               std::to_string(batch.size) + " claims are used");
  }
  SessionSigner signer{&enrollment_key, EnrollmentSigner(id)};
  DeviceRecord record;
  record.device_id = device_id;
  record.public_key = request.key.SpkiDer();
  record.status = DeviceStatus::kActive;
  record.owner = batch.owner;
  record.path = ProvisioningPath::kBatch;
  record.serial = request.serial;
  record.created_at = session->now();
  record.updated_at = session->now();
  if (auto s = session->Append(&record, signer); !s) {
    return s.error();
  }
  if (auto s = w.PutClaim(ClaimRow{id, request.serial, device_id, record.seq, session->now()});
      !s) {
    return s.error();
  }
  if (auto head = session->Commit(signer); !head) {
    return head.error();
  }
  return ClaimResult{std::move(record), /*already_enrolled=*/false};
}

Result<PendingDevice> Registry::RequestApproval(const PublicKey& key, std::string_view serial,
                                                std::string_view peer, uint64_t max_pending) {
  if (!serial.empty()) {
    if (auto s = ValidateSerial(serial); !s) {
      return s.error();
    }
  }
  if (auto s = ValidateText("peer", peer, kMaxReasonLength); !s) {
    return s.error();
  }
  if (auto s = CheckDeviceKey(key); !s) {
    return s.error();
  }
  auto w = storage_->Write();
  if (!w) {
    return w.error();
  }
  const std::string device_id = key.DeviceId();
  auto existing = (*w)->GetDevice(device_id);
  if (!existing) {
    return existing.error();
  }
  if (existing->has_value()) {
    return Error(Code::kAlreadyExists, "device " + device_id + " is already registered (status " +
                                           std::string(DeviceStatusName((*existing)->status)) +
                                           ")");
  }
  auto pending = (*w)->GetPending(device_id);
  if (!pending) {
    return pending.error();
  }
  const int64_t now = clock_->Now();
  PendingDevice p;
  if (pending->has_value()) {
    p = std::move(**pending);
  } else {
    auto count = (*w)->CountPending();
    if (!count) {
      return count.error();
    }
    if (*count >= max_pending) {
      return Error(Code::kResourceExhausted, "the approval queue is full (" +
                                                 std::to_string(*count) +
                                                 " pending devices); ask an operator to clear it");
    }
    p.device_id = device_id;
    p.public_key = key.SpkiDer();
    p.first_seen = now;
  }
  if (!serial.empty()) {
    p.serial = std::string(serial);
  }
  p.peer = std::string(peer);
  p.last_seen = now;
  p.requests += 1;
  if (auto s = (*w)->PutPending(p); !s) {
    return s.error();
  }
  if (auto s = (*w)->Commit(); !s) {
    return s.error();
  }
  return p;
}

Result<std::vector<PendingDevice>> Registry::ListPending() {
  auto r = storage_->Read();
  if (!r) {
    return r.error();
  }
  std::vector<PendingDevice> out;
  Status s = (*r)->ScanPending([&out](PendingDevice&& p) -> Status {
    out.push_back(std::move(p));
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  return out;
}

Result<DeviceRecord> Registry::Approve(const RegistrarKey& registrar, std::string_view id,
                                       const ApproveOptions& options) {
  if (auto s = ValidateText("owner", options.owner, kMaxOwnerLength); !s) {
    return s.error();
  }
  auto session = WriteSession::BeginAsRegistrar(*storage_, registrar.Public(), clock_);
  if (!session) {
    return session.error();
  }
  Writer& w = session->writer();
  auto pending = ResolvePending(w, id);
  if (!pending) {
    return pending.error();
  }
  // The row is unsigned: trust only what the public key itself proves.
  if (DeviceIdFromSpki(pending->public_key) != pending->device_id) {
    return Error(Code::kDataLoss, "pending request " + pending->device_id +
                                      " holds a public key with another device ID (altered)");
  }
  auto key = PublicKey::FromDer(pending->public_key);
  if (!key) {
    return Error(Code::kDataLoss,
                 "pending request " + pending->device_id + " holds a key that does not parse");
  }
  if (auto s = CheckDeviceKey(*key); !s) {
    return s.error();
  }
  std::string serial = options.serial.empty() ? pending->serial : options.serial;
  if (serial.empty()) {
    return Error(Code::kInvalidArgument,
                 "device " + pending->device_id + " sent no serial; give one with --serial");
  }
  if (auto s = ValidateSerial(serial); !s) {
    return s.error();
  }
  auto existing = w.GetDevice(pending->device_id);
  if (!existing) {
    return existing.error();
  }
  if (existing->has_value()) {
    return Error(Code::kAlreadyExists,
                 "device " + pending->device_id + " is already registered (status " +
                     std::string(DeviceStatusName((*existing)->status)) + ")");
  }
  if (auto s = session->CheckHistoryEmpty(pending->device_id); !s) {
    return s.error();
  }
  DeviceRecord record;
  record.device_id = pending->device_id;
  record.public_key = key->SpkiDer();
  record.status = DeviceStatus::kActive;
  record.owner = options.owner;
  record.path = ProvisioningPath::kEngineer;
  record.serial = serial;
  record.created_at = session->now();
  record.updated_at = session->now();
  if (auto s = session->Append(&record, AsSigner(registrar)); !s) {
    return s.error();
  }
  auto removed = w.DeletePending(pending->device_id);
  if (!removed) {
    return removed.error();
  }
  if (auto head = session->Commit(AsSigner(registrar)); !head) {
    return head.error();
  }
  return record;
}

Result<PendingDevice> Registry::Reject(std::string_view id) {
  auto w = storage_->Write();
  if (!w) {
    return w.error();
  }
  auto pending = ResolvePending(**w, id);
  if (!pending) {
    return pending.error();
  }
  auto removed = (*w)->DeletePending(pending->device_id);
  if (!removed) {
    return removed.error();
  }
  if (auto s = (*w)->Commit(); !s) {
    return s.error();
  }
  return pending;
}

}  // namespace hallmark::registry
