// POST /v1/claim (batch secret) and POST /v1/claim/pending (operator approval).
#include <spdlog/spdlog.h>

#include "device/enroll_client.h"
#include "enroll/internal/shared.h"
#include "registry/batch.h"
#include "registry/manifest.h"

namespace hallmark::enroll::internal {
namespace {

using nlohmann::json;
using server::ClientContext;
using server::HttpRequest;
using server::HttpResponse;
using server::JsonError;

// kNoProof is the one answer for an unknown batch and a proof that does not verify, so that
// only holders of a batch's secret learn anything about it.
constexpr std::string_view kNoProof =
    "claim refused: no valid proof of a batch secret for this batch, serial and connection";

struct ClaimBody {
  std::string batch_id;
  std::string serial;
  Bytes proof;
};

Result<ClaimBody> ParseClaimBody(std::string_view body) {
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto text = [&j](const char* name) -> const std::string* {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  if (j.is_discarded() || !j.is_object() || text("batch_id") == nullptr ||
      text("serial") == nullptr || text("proof") == nullptr) {
    return Error(Code::kInvalidArgument,
                 "a claim is a JSON object with string fields batch_id, serial and proof "
                 "(Base64)");
  }
  ClaimBody out{*text("batch_id"), *text("serial"), {}};
  if (auto s = registry::ValidateBatchId(out.batch_id); !s) {
    return s.error();
  }
  if (auto s = registry::ValidateSerial(out.serial); !s) {
    return s.error();
  }
  auto proof = Base64Decode(*text("proof"));
  if (!proof || proof->empty() || proof->size() > 512) {
    return Error(Code::kInvalidArgument, "proof is not a Base64 signature");
  }
  out.proof = std::move(*proof);
  return out;
}

class ClaimHandler : public SharedHandler {
 public:
  explicit ClaimHandler(std::shared_ptr<Shared> shared)
      : SharedHandler(shared, "POST", shared->config.max_claim_bytes, false) {}

 protected:
  HttpResponse Serve(const HttpRequest& request, const ClientContext& client) override {
    if (client.leaf == nullptr || !client.export_keying_material) {
      return JsonError(400, "a claim needs the device's certificate on a TLS 1.3 connection");
    }
    auto body = ParseClaimBody(request.body);
    if (!body) {
      return ErrorResponse(body.error(), "claim");
    }
    const PublicKey key = client.leaf->Key();
    const std::string device_id = key.DeviceId();
    auto batch = shared().registry->Batch(body->batch_id);
    if (!batch) {
      if (batch.error().code() != Code::kNotFound) {
        return ErrorResponse(batch.error(), "claim");
      }
      Log(client, *body, device_id, "unknown batch");
      return JsonError(403, kNoProof);
    }
    if (auto limited = Limit(shared().per_batch, body->batch_id, "for this batch")) {
      return *limited;
    }
    auto exporter = client.export_keying_material(device::kClaimExporterLabel,
                                                  AsBytes(device::kClaimExporterContext),
                                                  device::kClaimExporterLength);
    if (!exporter) {
      return ErrorResponse(exporter.error(), "claim");
    }
    auto verifier = PublicKey::FromDer(batch->verifier);
    Bytes message = device::ClaimProofMessage(body->batch_id, body->serial, device_id,
                                              exporter->bytes(SecretAccess::Grant()));
    if (!verifier || !verifier->Verify(message, body->proof)) {
      Log(client, *body, device_id, "proof does not verify");
      return JsonError(403, kNoProof);
    }
    // The proof is good: from here on the device may learn why it is refused.
    if (batch->status == registry::BatchStatus::kRevoked) {
      return JsonError(403, "batch " + body->batch_id + " is revoked");
    }
    auto claimed = shared().registry->Claim(
        registry::ClaimRequest{body->batch_id, body->serial, key, client.peer_address});
    if (!claimed) {
      return Refused(claimed.error(), client, *body, device_id);
    }
    const registry::DeviceRecord& r = claimed->record;
    if (!claimed->already_enrolled) {
      spdlog::info("event=batch_claim batch={} serial=\"{}\" device={} seq={} peer={}",
                   body->batch_id, body->serial, device_id, r.seq, client.peer_address);
      shared().Enrolled(device_id);
    }
    return JsonResponse(claimed->already_enrolled ? 200 : 201,
                        json{{"device_id", r.device_id},
                             {"batch_id", body->batch_id},
                             {"serial", r.serial},
                             {"owner", r.owner},
                             {"status", "active"},
                             {"seq", r.seq},
                             {"already_enrolled", claimed->already_enrolled}});
  }

 private:
  static void Log(const ClientContext& client, const ClaimBody& body, const std::string& device,
                  std::string_view why) {
    spdlog::info("event=claim_refused batch={} serial=\"{}\" device={} peer={} reason=\"{}\"",
                 body.batch_id, body.serial, device, client.peer_address, why);
  }

  HttpResponse Refused(const Error& e, const ClientContext& client, const ClaimBody& body,
                       const std::string& device_id) {
    if (e.code() == Code::kAlreadyExists && e.message().find("clone") != std::string::npos) {
      spdlog::warn(
          "event=possible_clone batch={} serial=\"{}\" device={} peer={}: a second key claimed "
          "a serial that is already enrolled; see `hallmark batch show {}`",
          body.batch_id, body.serial, device_id, client.peer_address, body.batch_id);
    } else {
      Log(client, body, device_id, e.message());
    }
    if (e.code() == Code::kResourceExhausted) {
      return JsonError(403, e.message());  // the batch is used up: not a rate limit
    }
    if (e.code() == Code::kPermissionDenied) {
      spdlog::error("event=enrollment_key_mismatch batch={} error=\"{}\"", body.batch_id,
                    e.message());
      return JsonError(403, "this server cannot enroll devices of batch " + body.batch_id);
    }
    return ErrorResponse(e, "claim");
  }
};

class PendingHandler : public SharedHandler {
 public:
  explicit PendingHandler(std::shared_ptr<Shared> shared)
      : SharedHandler(shared, "POST", shared->config.max_claim_bytes, false) {}

 protected:
  HttpResponse Serve(const HttpRequest& request, const ClientContext& client) override {
    if (client.leaf == nullptr) {
      return JsonError(400, "an approval request needs the device's certificate");
    }
    std::string serial;
    if (!request.body.empty()) {
      auto j = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object() ||
          (j.contains("serial") && !j["serial"].is_string())) {
        return JsonError(400,
                         "an approval request is a JSON object with an optional string "
                         "field serial");
      }
      serial = j.value("serial", std::string());
    }
    const PublicKey key = client.leaf->Key();
    const std::string device_id = key.DeviceId();
    auto status = shared().registry->DeviceStatus(device_id);
    if (!status) {
      return ErrorResponse(status.error(), "approval request");
    }
    if (status->has_value()) {
      return Registered(device_id, **status);
    }
    auto pending = shared().registry->RequestApproval(key, serial, client.peer_address,
                                                      shared().config.max_pending);
    if (!pending) {
      return ErrorResponse(pending.error(), "approval request");
    }
    const std::string code = device::ComparisonCode(key);
    if (pending->requests == 1) {
      spdlog::info("event=approval_requested device={} code={} serial=\"{}\" peer={}", device_id,
                   code, pending->serial, client.peer_address);
    }
    return JsonResponse(202, json{{"device_id", device_id},
                                  {"code", code},
                                  {"status", "pending"},
                                  {"serial", pending->serial},
                                  {"requests", pending->requests}});
  }

 private:
  static HttpResponse Registered(const std::string& device_id, registry::DeviceStatus status) {
    if (status == registry::DeviceStatus::kActive) {
      return JsonResponse(200, json{{"device_id", device_id}, {"status", "active"}});
    }
    return JsonError(
        403, "device " + device_id + " is " + std::string(registry::DeviceStatusName(status)));
  }
};

}  // namespace

std::unique_ptr<server::Handler> MakeClaimHandler(std::shared_ptr<Shared> shared) {
  return std::make_unique<ClaimHandler>(std::move(shared));
}

std::unique_ptr<server::Handler> MakePendingHandler(std::shared_ptr<Shared> shared) {
  return std::make_unique<PendingHandler>(std::move(shared));
}

}  // namespace hallmark::enroll::internal
