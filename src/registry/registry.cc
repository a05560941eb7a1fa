#include "registry/registry.h"

#include <unistd.h>

#include "registry/internal/line_reader.h"
#include "registry/internal/write_session.h"
#include "registry/manifest.h"
#include "registry/merkle.h"
#include "registry/record.h"
#include "registry/sqlite_storage.h"

namespace hallmark::registry {
namespace {

using internal::kVerifyHint;
using internal::SessionSigner;
using internal::WriteSession;

constexpr std::string_view kMetaRegistrarKey = "registrar_public_key";

SessionSigner AsSigner(const RegistrarKey& registrar) {
  return SessionSigner{&registrar.key(), std::string(kRegistrarSigner)};
}

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
    auto stored = internal::ReadStoredRegistrarKey(**r, storage->Describe());
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
  auto session = WriteSession::BeginAsRegistrar(*storage_, registrar.Public(), clock_);
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
  if (auto s = session->Append(&record, AsSigner(registrar)); !s) {
    return s.error();
  }
  if (auto head = session->Commit(AsSigner(registrar)); !head) {
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
  auto session = WriteSession::BeginAsRegistrar(*storage_, registrar.Public(), clock_);
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
  if (auto s = session->CheckRow(record); !s) {
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
  if (auto s = session->Append(&record, AsSigner(registrar)); !s) {
    return s.error();
  }
  if (auto head = session->Commit(AsSigner(registrar)); !head) {
    return head.error();
  }
  return record;
}

Result<ImportSummary> Registry::Import(const RegistrarKey& registrar, std::istream& manifest,
                                       const PublicKey& factory_key, const ImportOptions& options) {
  if (auto s = ValidateText("owner", options.owner, kMaxOwnerLength); !s) {
    return s.error();
  }
  auto session = WriteSession::BeginAsRegistrar(*storage_, registrar.Public(), clock_);
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
    if (auto s = session->Append(&record, AsSigner(registrar)); !s) {
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
  auto head = session->Commit(AsSigner(registrar));
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
  internal::BatchScope scope;
  if (auto batch = SignerBatch(record.signer); batch.has_value()) {
    scope.ids.emplace_back(*batch);
  }
  auto snap = internal::ReadVerifiedSnapshot(*storage_, registrar, std::move(scope));
  if (!snap) {
    return snap.error();
  }
  Reader& r = *snap->reader;
  const internal::VerifiedState& state = snap->state;
  if (auto s = internal::CheckStoredRow(r, state.batches, record, state.head.tree_size); !s) {
    return s;
  }
  if (SignerBatch(record.signer).has_value()) {
    return internal::CheckEnrollmentLimits(r, state.batches, record);
  }
  return OkStatus();
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
