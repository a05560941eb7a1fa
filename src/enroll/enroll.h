// enroll: the server endpoints of enrollment in the field (docs/enrollment.md).
//
//   POST /v1/claim                        batch claim: self-signed certificate + proof of the
//                                         batch secret bound to the TLS connection
//   POST /v1/claim/pending                operator approval: leaves a pending request
//   GET  /.well-known/est/cacerts         EST (RFC 7030): the owner's CA certificates
//   POST /.well-known/est/simpleenroll    EST: an operational certificate for the
//   POST /.well-known/est/simplereenroll       authenticated device's own key
//
// `MakeHandlers` builds them from an `EnrollConfig`; the server mounts each handler on its path
// on the device listeners (see server/handler.h for the contract).
#ifndef HALLMARK_ENROLL_ENROLL_H_
#define HALLMARK_ENROLL_ENROLL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "enroll/rate_limiter.h"
#include "registry/directory.h"
#include "server/handler.h"

namespace hallmark::enroll {

// EnrollConfig is the `[enroll]` table of hallmark.toml; each field is one key of the same name
// (durations in seconds, paths relative to the config file):
//
//   [enroll]
//   registry_db = "registry.db"                 # default: [registry] db
//   registrar_public_key = "registrar.key.pub"  # default: [registry] registrar_public_key
//   enrollment_key = "enrollment.key"           # enables POST /v1/claim
//   approval = true                             # enables POST /v1/claim/pending
//   max_pending = 10000
//   ca_dir = "ca"                               # enables EST
//   ca_name = "acme"                            # the customer CA that issues operational certs
//   operational_validity_s = 604800             # 7 days (at most 90)
//   rate_per_source = { per_second = 2.0, burst = 20.0 }
//   rate_per_batch = { per_second = 50.0, burst = 200.0 }
//   rate_per_device = { per_second = 0.1, burst = 5.0 }
struct EnrollConfig {
  // The registry the server serves (SQLite path) and the trusted registrar public key (PEM).
  // Needed by the claim and approval endpoints.
  std::string registry_db;
  std::string registrar_public_key;

  // enrollment_key: the server's Ed25519 enrollment key (PEM, mode 0600; `hallmark batch
  // enrollment-key` makes one). Batches name its public key; it signs the records of devices
  // that claim through them. Empty: no claim endpoint.
  std::string enrollment_key;
  std::string enrollment_key_passphrase_file;

  // approval: serve POST /v1/claim/pending; at most `max_pending` requests wait at a time.
  bool approval = true;
  uint64_t max_pending = 10'000;

  // ca_dir, ca_name: the owner's CA (`hallmark ca`) and the authority that issues operational
  // certificates (a customer name, or "root"). Empty ca_dir: no EST endpoints.
  std::string ca_dir;
  std::string ca_name;
  std::string ca_passphrase_file;
  int64_t operational_validity = 7 * 86400;

  RateLimit rate_per_source{2.0, 20.0};   // every endpoint, by client IP address
  RateLimit rate_per_batch{50.0, 200.0};  // claims, by batch
  RateLimit rate_per_device{0.1, 5.0};    // EST enrollments, by device ID
  size_t max_rate_keys = 100'000;

  size_t max_claim_bytes = 4096;  // request body limits (the transport answers 413 above)
  size_t max_csr_bytes = 16384;
};

// EnrollDeps is what the server already has and shares with the handlers.
struct EnrollDeps {
  // directory: the server's verified registry view (a `ServingDirectory`), used to look up
  // batches and device status. May be null: the handlers then read the registry themselves.
  registry::Directory* directory = nullptr;
  const Clock* clock = nullptr;  // default: SystemClock()
  // monotonic: the clock of the rate limiters (default: steady_clock); tests pass a fake.
  RateLimiter::MonotonicClock monotonic;
  // on_enrolled is called (from a worker thread) with the device ID after a claim or approval
  // request changed the registry, e.g. to drop a cached "not registered" answer for it.
  std::function<void(const std::string& device_id)> on_enrolled;
};

using HandlerList = std::vector<std::pair<std::string, std::unique_ptr<server::Handler>>>;

// MakeHandlers loads the keys, registry and CA named in `config` and returns the handlers with
// their paths, in the order listed at the top of this file (only those configured).
// kInvalidArgument names a missing or inconsistent setting; errors of loading a key, the
// registry or the CA otherwise. The handlers are thread-safe and share state; they own what
// they loaded.
Result<HandlerList> MakeHandlers(const EnrollConfig& config, const EnrollDeps& deps);

}  // namespace hallmark::enroll

#endif  // HALLMARK_ENROLL_ENROLL_H_
