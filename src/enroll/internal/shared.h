// What the enrollment handlers of one `MakeHandlers` call share: the registry writer, the CA,
// the rate limiters, and the mapping of errors to HTTP responses.
#ifndef HALLMARK_ENROLL_INTERNAL_SHARED_H_
#define HALLMARK_ENROLL_INTERNAL_SHARED_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "ca/authority.h"
#include "ca/issuer.h"
#include "core/clock.h"
#include "core/key.h"
#include "core/status.h"
#include "enroll/enroll.h"
#include "enroll/rate_limiter.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"
#include "server/handler.h"

namespace hallmark::enroll::internal {

// RegistryService is the registry as the claim and approval handlers use it. Thread-safe: one
// mutex serialises the registry connection (writers are serialised by the database anyway).
class RegistryService {
 public:
  RegistryService(registry::Registry registry, PublicKey registrar,
                  std::optional<registry::RegistrarKey> enrollment_key,
                  registry::Directory* directory, const Clock* clock)
      : registry_(std::move(registry)),
        registrar_(std::move(registrar)),
        enrollment_key_(std::move(enrollment_key)),
        directory_(directory),
        clock_(clock) {}

  // Batch returns the newest valid definition of `batch_id`, from the server's verified view if
  // it tracks batches, else verified from the registry. kNotFound if there is none.
  Result<registry::BatchDefinition> Batch(std::string_view batch_id);

  // DeviceStatus returns the verified status of `device_id`, or nullopt if it is not registered.
  Result<std::optional<registry::DeviceStatus>> DeviceStatus(const std::string& device_id);

  // Claim and RequestApproval are the registry's (see registry.h).
  Result<registry::ClaimResult> Claim(const registry::ClaimRequest& request);
  Result<registry::PendingDevice> RequestApproval(const PublicKey& key, std::string_view serial,
                                                  std::string_view peer, uint64_t max_pending);

  bool can_claim() const { return enrollment_key_.has_value(); }
  const Clock& clock() const { return *clock_; }

 private:
  std::mutex mu_;
  registry::Registry registry_;
  const PublicKey registrar_;
  const std::optional<registry::RegistrarKey> enrollment_key_;
  registry::Directory* const directory_;
  const Clock* const clock_;
};

// EstService issues operational certificates. Thread-safe (the issuer is serialised).
class EstService {
 public:
  EstService(std::unique_ptr<ca::Authority> authority, ca::Issuer issuer, std::string cacerts_body,
             int64_t validity)
      : authority_(std::move(authority)),
        issuer_(std::move(issuer)),
        cacerts_body_(std::move(cacerts_body)),
        validity_(validity) {}

  // Issue issues an operational certificate for `csr` with subject serial `serial`, recorded in
  // the issuance log. Errors of `ca::Issuer::Issue`.
  Result<Certificate> Issue(const Csr& csr, const std::string& serial);

  // cacerts_body is the base64 PKCS#7 certs-only message of the issuing CA's chain.
  const std::string& cacerts_body() const { return cacerts_body_; }

 private:
  std::mutex mu_;
  std::unique_ptr<ca::Authority> authority_;  // owns the issuance log the issuer writes
  ca::Issuer issuer_;
  const std::string cacerts_body_;
  const int64_t validity_;
};

// Shared is everything the handlers of one MakeHandlers call share.
struct Shared {
  Shared(const EnrollConfig& c, const EnrollDeps& d)
      : config(c),
        on_enrolled(d.on_enrolled),
        per_source(c.rate_per_source, c.max_rate_keys, d.monotonic),
        per_batch(c.rate_per_batch, c.max_rate_keys, d.monotonic),
        per_device(c.rate_per_device, c.max_rate_keys, d.monotonic) {}

  const EnrollConfig config;
  std::function<void(const std::string&)> on_enrolled;
  RateLimiter per_source;
  RateLimiter per_batch;
  RateLimiter per_device;
  std::unique_ptr<RegistryService> registry;  // null without registry_db
  std::unique_ptr<EstService> est;            // null without ca_dir
  registry::Directory* directory = nullptr;

  void Enrolled(const std::string& device_id) const {
    if (on_enrolled) {
      on_enrolled(device_id);
    }
  }
};

// SourceAddress returns the host part of a peer address ("192.0.2.1:5555" -> "192.0.2.1",
// "[::1]:5555" -> "::1"): the key of per-source rate limits.
std::string SourceAddress(std::string_view peer);

// Limit takes a token from `limiter` for `key`; if there is none, returns the 429 response.
std::optional<server::HttpResponse> Limit(RateLimiter& limiter, std::string_view key,
                                          std::string_view what);

// JsonResponse returns `body` as JSON with `status`.
server::HttpResponse JsonResponse(int status, const nlohmann::json& body);

// ErrorResponse maps an error to its HTTP status and a {"error": message} body. The message of
// server-side failures (kDataLoss, kInternal, kUnavailable) is replaced by a generic one and
// logged with `what`; `detail` is never sent.
server::HttpResponse ErrorResponse(const Error& error, std::string_view what);

// SharedHandler is the base of the enrollment handlers: it refuses a wrong method (405), a body
// over the limit (413, should the transport not have) and a source over its rate limit (429)
// before `Serve` runs.
class SharedHandler : public server::Handler {
 public:
  SharedHandler(std::shared_ptr<Shared> shared, std::string method, size_t max_body,
                bool authenticated_only)
      : s_(std::move(shared)),
        method_(std::move(method)),
        max_body_(max_body),
        authenticated_only_(authenticated_only) {}

  size_t max_body_bytes() const override { return max_body_; }
  bool authenticated_only() const override { return authenticated_only_; }
  // The POST endpoints commit to the registry or the issuance log (an fsync each).
  bool blocking() const override { return method_ == "POST"; }
  server::HttpResponse Handle(const server::HttpRequest& request,
                              const server::ClientContext& client) final;

 protected:
  virtual server::HttpResponse Serve(const server::HttpRequest& request,
                                     const server::ClientContext& client) = 0;
  Shared& shared() const { return *s_; }

 private:
  const std::shared_ptr<Shared> s_;
  const std::string method_;
  const size_t max_body_;
  const bool authenticated_only_;
};

// Handler factories (claim_handlers.cc, est_handlers.cc).
std::unique_ptr<server::Handler> MakeClaimHandler(std::shared_ptr<Shared> shared);
std::unique_ptr<server::Handler> MakePendingHandler(std::shared_ptr<Shared> shared);
std::unique_ptr<server::Handler> MakeCaCertsHandler(std::shared_ptr<Shared> shared);
std::unique_ptr<server::Handler> MakeEstEnrollHandler(std::shared_ptr<Shared> shared,
                                                      bool reenroll);

}  // namespace hallmark::enroll::internal

#endif  // HALLMARK_ENROLL_INTERNAL_SHARED_H_
