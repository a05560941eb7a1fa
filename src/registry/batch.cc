#include "registry/batch.h"

#include "core/signature_memo.h"
#include "registry/internal/canonical_text.h"
#include "registry/record.h"

namespace hallmark::registry {
namespace {

using internal::AsText;
using internal::ParseDecimal;

constexpr std::string_view kBatchFields[] = {
    "batch_id",       "status", "owner",      "size",       "expires_at", "verifier",
    "enrollment_key", "reason", "created_at", "updated_at", "seq",        "signer",
};

Result<BatchStatus> ParseBatchStatus(std::string_view name) {
  for (BatchStatus s : {BatchStatus::kActive, BatchStatus::kRevoked}) {
    if (name == BatchStatusName(s)) {
      return s;
    }
  }
  return Error(Code::kInvalidArgument,
               "unknown batch status '" + std::string(name) + "'; expected active or revoked");
}

}  // namespace

std::string_view BatchStatusName(BatchStatus status) {
  return status == BatchStatus::kActive ? "active" : "revoked";
}

Status ValidateBatchId(std::string_view id) {
  auto bad = [id](const std::string& why) {
    return Error(Code::kInvalidArgument,
                 "batch ID '" + std::string(id.substr(0, 80)) + "' " + why + "; use 1-" +
                     std::to_string(kMaxBatchIdLength) +
                     " characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit");
  };
  if (id.empty() || id.size() > kMaxBatchIdLength) {
    return bad("has the wrong length");
  }
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
      return bad("has a character that is not allowed at position " + std::to_string(i + 1));
    }
  }
  return OkStatus();
}

std::string EnrollmentSigner(std::string_view batch_id) {
  return std::string(kEnrollmentSignerPrefix) + std::string(batch_id);
}

std::optional<std::string_view> SignerBatch(std::string_view signer) {
  if (signer.substr(0, kEnrollmentSignerPrefix.size()) != kEnrollmentSignerPrefix ||
      signer.size() == kEnrollmentSignerPrefix.size()) {
    return std::nullopt;
  }
  return signer.substr(kEnrollmentSignerPrefix.size());
}

bool IsBatchEntry(std::span<const uint8_t> entry) {
  std::string_view text = AsText(entry);
  return text.size() > kBatchMagic.size() && text.substr(0, kBatchMagic.size()) == kBatchMagic &&
         text[kBatchMagic.size()] == '\n';
}

Result<std::string> CanonicalBatch(const BatchDefinition& b) {
  if (auto s = ValidateBatchId(b.batch_id); !s) {
    return s.error();
  }
  if (b.size == 0 || b.size > kMaxBatchSize) {
    return Error(Code::kInvalidArgument, "batch size " + std::to_string(b.size) +
                                             " is out of range 1.." +
                                             std::to_string(kMaxBatchSize));
  }
  if (b.verifier.empty() || b.enrollment_key.empty()) {
    return Error(Code::kInvalidArgument,
                 "batch " + b.batch_id + " has no verifier or no enrollment key");
  }
  Status text = ValidateText("owner", b.owner, kMaxOwnerLength);
  if (text) {
    text = ValidateText("reason", b.reason, kMaxReasonLength);
  }
  if (text) {
    text = ValidateText("signer", b.signer, kMaxSignerLength);
  }
  if (!text) {
    return text.error();
  }
  if (b.signer.empty()) {
    return Error(Code::kInvalidArgument, "batch has no signer");
  }
  internal::CanonicalWriter w(kBatchMagic);
  w.Line("batch_id", b.batch_id)
      .Line("status", BatchStatusName(b.status))
      .Line("owner", b.owner)
      .Line("size", std::to_string(b.size))
      .Line("expires_at", std::to_string(b.expires_at))
      .Line("verifier", Base64Encode(b.verifier))
      .Line("enrollment_key", Base64Encode(b.enrollment_key))
      .Line("reason", b.reason)
      .Line("created_at", std::to_string(b.created_at))
      .Line("updated_at", std::to_string(b.updated_at))
      .Line("seq", std::to_string(b.seq))
      .Line("signer", b.signer);
  return w.Take();
}

Result<BatchDefinition> ParseCanonicalBatch(std::span<const uint8_t> bytes) {
  constexpr std::string_view kWhat = "not a canonical batch definition";
  auto bad = [kWhat](const std::string& why) {
    return Error(Code::kInvalidArgument, std::string(kWhat) + ": " + why);
  };
  auto split = internal::SplitCanonical(AsText(bytes), kBatchMagic, kBatchFields, kWhat);
  if (!split) {
    return split.error();
  }
  const std::vector<std::string_view>& v = *split;
  BatchDefinition b;
  b.batch_id = std::string(v[0]);
  auto status = ParseBatchStatus(v[1]);
  if (!status) {
    return bad(status.error().message());
  }
  b.status = *status;
  b.owner = std::string(v[2]);
  auto verifier = Base64Decode(v[5]);
  auto enrollment = Base64Decode(v[6]);
  if (!verifier || !enrollment) {
    return bad("verifier or enrollment_key is not Base64");
  }
  b.verifier = std::move(*verifier);
  b.enrollment_key = std::move(*enrollment);
  b.reason = std::string(v[7]);
  if (!ParseDecimal(v[3], &b.size) || !ParseDecimal(v[4], &b.expires_at) ||
      !ParseDecimal(v[8], &b.created_at) || !ParseDecimal(v[9], &b.updated_at) ||
      !ParseDecimal(v[10], &b.seq)) {
    return bad("size, expires_at, created_at, updated_at or seq is not a canonical decimal");
  }
  b.signer = std::string(v[11]);
  auto again = CanonicalBatch(b);
  if (!again) {
    return bad(again.error().message());
  }
  if (*again != AsText(bytes)) {
    return bad("it is not in canonical form");
  }
  return b;
}

Status VerifyBatch(const PublicKey& registrar, const BatchDefinition& batch) {
  auto text = CanonicalBatch(batch);
  if (!text) {
    return text.error();
  }
  if (batch.signer != kRegistrarSigner ||
      !SignatureMemo::Shared().Verify(registrar, AsBytes(*text), batch.signature)) {
    return Error(Code::kUnauthenticated, "batch " + batch.batch_id + " (log entry " +
                                             std::to_string(batch.seq) +
                                             ") is not signed by the registrar key");
  }
  return OkStatus();
}

}  // namespace hallmark::registry
