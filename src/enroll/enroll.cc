#include "enroll/enroll.h"

#include <spdlog/spdlog.h>

#include "core/file.h"
#include "device/enroll_client.h"
#include "core/pkcs7.h"
#include "enroll/internal/shared.h"
#include "registry/record.h"

namespace hallmark::enroll {
namespace internal {

Result<registry::BatchDefinition> RegistryService::Batch(std::string_view batch_id) {
  if (directory_ != nullptr) {
    auto verified = directory_->LookupBatch(batch_id);
    if (verified) {
      return verified->definition;
    }
    // kNotFound may only mean the view has not refreshed since the batch was created: ask the
    // registry (rate limits bound what this costs an attacker). kFailedPrecondition: the view
    // does not track batches.
    if (verified.error().code() != Code::kNotFound &&
        verified.error().code() != Code::kFailedPrecondition) {
      return verified.error();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto info = registry_.FindBatch(registrar_, batch_id);
  if (!info) {
    return info.error();
  }
  return info->definition;
}

Result<std::optional<registry::DeviceStatus>> RegistryService::DeviceStatus(
    const std::string& device_id) {
  using Out = std::optional<registry::DeviceStatus>;
  if (directory_ != nullptr) {
    auto record = directory_->Lookup(device_id);
    if (!record) {
      if (record.error().code() == Code::kNotFound) {
        return Out();
      }
      return record.error();
    }
    return Out(record->status);
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto record = registry_.Find(device_id);
  if (!record) {
    if (record.error().code() == Code::kNotFound) {
      return Out();
    }
    return record.error();
  }
  if (auto s = registry_.CheckDevice(*record, registrar_); !s) {
    return s.error();
  }
  return Out(record->status);
}

Result<registry::ClaimResult> RegistryService::Claim(const registry::ClaimRequest& request) {
  if (!enrollment_key_.has_value()) {
    return Error(Code::kFailedPrecondition, "this server has no enrollment key");
  }
  std::lock_guard<std::mutex> lock(mu_);
  return registry_.Claim(registrar_, enrollment_key_->key(), request);
}

Result<registry::PendingDevice> RegistryService::RequestApproval(const PublicKey& key,
                                                                 std::string_view serial,
                                                                 std::string_view peer,
                                                                 uint64_t max_pending) {
  std::lock_guard<std::mutex> lock(mu_);
  return registry_.RequestApproval(key, serial, peer, max_pending);
}

Result<Certificate> EstService::Issue(const Csr& csr, const std::string& serial) {
  ca::IssueRequest request{csr, ca::Profile::kOperational, serial, {}, validity_, false};
  std::lock_guard<std::mutex> lock(mu_);
  auto issued = issuer_.Issue(request);
  if (!issued) {
    return issued.error();
  }
  return issued->certificate;
}

std::string SourceAddress(std::string_view peer) {
  if (!peer.empty() && peer.front() == '[') {
    size_t close = peer.find(']');
    return std::string(peer.substr(1, close == std::string_view::npos ? close : close - 1));
  }
  size_t colon = peer.rfind(':');
  if (colon != std::string_view::npos && peer.find(':') == colon) {
    return std::string(peer.substr(0, colon));
  }
  return std::string(peer);
}

server::HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  server::HttpResponse res;
  res.status = status;
  res.body = body.dump() + "\n";
  return res;
}

std::optional<server::HttpResponse> Limit(RateLimiter& limiter, std::string_view key,
                                          std::string_view what) {
  RateLimiter::Decision d = limiter.Take(key);
  if (d.allowed) {
    return std::nullopt;
  }
  auto retry = static_cast<int64_t>(d.retry_after) + 1;
  server::HttpResponse res = server::JsonError(
      429, "too many requests " + std::string(what) + "; retry in " + std::to_string(retry) + " s");
  res.headers.emplace_back("Retry-After", std::to_string(retry));
  return res;
}

server::HttpResponse ErrorResponse(const Error& error, std::string_view what) {
  int status = 500;
  switch (error.code()) {
    case Code::kInvalidArgument:
    case Code::kOutOfRange:
      status = 400;
      break;
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
    case Code::kFailedPrecondition:
      status = 403;
      break;
    case Code::kNotFound:
      status = 404;
      break;
    case Code::kAlreadyExists:
      status = 409;
      break;
    case Code::kResourceExhausted:
      status = 429;
      break;
    case Code::kUnavailable:
      status = 503;
      break;
    case Code::kOk:
    case Code::kDataLoss:
    case Code::kInternal:
      status = 500;
      break;
  }
  if (status >= 500) {
    spdlog::error("event=enroll_failed what=\"{}\" code={} error=\"{}\"", what,
                  CodeName(error.code()), error.ToString());
    return server::JsonError(status, std::string(what) + " failed on the server; try again later");
  }
  return server::JsonError(status, error.message());
}

server::HttpResponse SharedHandler::Handle(const server::HttpRequest& request,
                                           const server::ClientContext& client) {
  if (request.method != method_) {
    server::HttpResponse res =
        server::JsonError(405, request.target + " accepts " + method_ + " only");
    res.headers.emplace_back("Allow", method_);
    return res;
  }
  if (max_body_ > 0 && request.body.size() > max_body_) {
    return server::JsonError(
        413, "the request body is larger than " + std::to_string(max_body_) + " bytes");
  }
  if (auto limited =
          Limit(s_->per_source, SourceAddress(client.peer_address), "from this address")) {
    return *limited;
  }
  return Serve(request, client);
}

namespace {

Result<std::unique_ptr<RegistryService>> OpenRegistryService(const EnrollConfig& c,
                                                             const EnrollDeps& deps,
                                                             const Clock* clock) {
  if (c.registrar_public_key.empty()) {
    return Error(Code::kInvalidArgument,
                 "[enroll] needs registrar_public_key: batches and records are checked against "
                 "it");
  }
  auto registrar = registry::LoadRegistrarPublicKey(c.registrar_public_key);
  if (!registrar) {
    return registrar.error();
  }
  std::optional<registry::RegistrarKey> enrollment;
  if (!c.enrollment_key.empty()) {
    auto passphrase = ReadOptionalSecretFile(c.enrollment_key_passphrase_file);
    if (!passphrase) {
      return passphrase.error();
    }
    auto key = registry::RegistrarKey::Load(c.enrollment_key, *passphrase);
    if (!key) {
      return key.error().WithContext("enrollment key");
    }
    if (key->Public() == *registrar) {
      return Error(Code::kInvalidArgument,
                   "the enrollment key is the registrar key; give the server its own key "
                   "(`hallmark batch enrollment-key`) so the registrar key can stay offline");
    }
    enrollment.emplace(std::move(*key));
  }
  auto reg = registry::Registry::Open(c.registry_db, clock);
  if (!reg) {
    return reg.error();
  }
  return std::make_unique<RegistryService>(std::move(*reg), std::move(*registrar),
                                           std::move(enrollment), deps.directory, clock);
}

Result<std::unique_ptr<EstService>> OpenEstService(const EnrollConfig& c, const Clock* clock) {
  const int64_t max_validity = ca::LimitsFor(ca::Profile::kOperational).max_validity;
  if (c.operational_validity <= 0 || c.operational_validity > max_validity) {
    return Error(Code::kInvalidArgument, "[enroll] operational_validity_s must be 1.." +
                                             std::to_string(max_validity) +
                                             " (the operational profile's maximum), not " +
                                             std::to_string(c.operational_validity));
  }
  if (c.ca_name.empty()) {
    return Error(Code::kInvalidArgument,
                 "[enroll] ca_dir is set but ca_name is not: name the customer CA that issues "
                 "operational certificates");
  }
  auto passphrase = ReadOptionalSecretFile(c.ca_passphrase_file);
  if (!passphrase) {
    return passphrase.error();
  }
  auto authority = ca::Authority::Open(c.ca_dir, std::move(*passphrase), clock);
  if (!authority) {
    return authority.error();
  }
  auto owned = std::make_unique<ca::Authority>(std::move(*authority));
  auto issuer = owned->IssuerFor(c.ca_name);
  if (!issuer) {
    return issuer.error();
  }
  std::vector<Certificate> chain{issuer->certificate()};
  if (c.ca_name != ca::kRootName) {
    chain.push_back(owned->root());
  }
  auto body = EncodeCertsOnly(chain);
  if (!body) {
    return body.error();
  }
  return std::make_unique<EstService>(std::move(owned), std::move(*issuer), std::move(*body),
                                      c.operational_validity);
}

}  // namespace
}  // namespace internal

Result<HandlerList> MakeHandlers(const EnrollConfig& config, const EnrollDeps& deps) {
  const Clock* clock = deps.clock != nullptr ? deps.clock : &SystemClock();
  auto shared = std::make_shared<internal::Shared>(config, deps);
  shared->directory = deps.directory;
  bool wants_registry = !config.enrollment_key.empty() || config.approval;
  if (wants_registry && config.registry_db.empty()) {
    return Error(Code::kInvalidArgument,
                 "[enroll] needs registry_db for batch claims and approval requests (or set "
                 "approval = false and no enrollment_key)");
  }
  if (wants_registry) {
    auto service = internal::OpenRegistryService(config, deps, clock);
    if (!service) {
      return service.error();
    }
    shared->registry = std::move(*service);
  }
  if (!config.ca_dir.empty()) {
    auto est = internal::OpenEstService(config, clock);
    if (!est) {
      return est.error();
    }
    shared->est = std::move(*est);
  }
  HandlerList out;
  if (shared->registry != nullptr && shared->registry->can_claim()) {
    out.emplace_back(std::string(device::kClaimPath), internal::MakeClaimHandler(shared));
  }
  if (shared->registry != nullptr && config.approval) {
    out.emplace_back(std::string(device::kPendingPath), internal::MakePendingHandler(shared));
  }
  if (shared->est != nullptr) {
    out.emplace_back(std::string(device::kEstCaCertsPath), internal::MakeCaCertsHandler(shared));
    out.emplace_back(std::string(device::kEstSimpleEnrollPath),
                     internal::MakeEstEnrollHandler(shared, /*reenroll=*/false));
    out.emplace_back(std::string(device::kEstSimpleReenrollPath),
                     internal::MakeEstEnrollHandler(shared, /*reenroll=*/true));
  }
  return out;
}

}  // namespace hallmark::enroll
