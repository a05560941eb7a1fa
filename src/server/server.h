// Server: `hallmark serve`. Device listeners speak HTTP over mutual TLS 1.3 and answer
// `GET /v1/hello` with who the server believes it is talking to; an admin listener on loopback
// serves `/metrics` and `/healthz`.
#ifndef HALLMARK_SERVER_SERVER_H_
#define HALLMARK_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "registry/directory.h"
#include "server/config.h"
#include "server/handler.h"
#include "server/metrics.h"

namespace hallmark::server {

// BoundListener is a listener after binding: its policy and the actual port.
struct BoundListener {
  std::string policy;
  Endpoint endpoint;
};

// Server owns the listeners and worker threads. Create, Start (binds), then Run (blocks) and
// Stop from another thread or a signal handler. Thread-safe: Stop may be called from any thread.
class Server {
 public:
  // Create loads certificates, keys, anchors and CRLs named in `config` and builds the policies.
  // `directory` (may be null if no listener uses the registry) must outlive the server.
  static Result<std::unique_ptr<Server>> Create(const ServerConfig& config,
                                                registry::Directory* directory, const Clock* clock);
  virtual ~Server() = default;

  // Start binds every listener. kUnavailable if an address cannot be bound.
  virtual Status Start() = 0;
  // Listeners returns the bound device listeners, in config order (valid after Start).
  virtual std::vector<BoundListener> Listeners() const = 0;
  // Admin returns the bound admin endpoint, if configured (valid after Start).
  virtual std::optional<Endpoint> Admin() const = 0;
  // Run serves on the configured number of threads until Stop.
  virtual void Run() = 0;
  virtual void Stop() = 0;
  // AddRoute serves `handler` at the exact `path` on every device listener (before Start).
  // `/v1/hello` is built in. kAlreadyExists if the path is taken.
  virtual Status AddRoute(std::string path, std::unique_ptr<Handler> handler) = 0;
  // ForgetDevice brings the server's registry view up to date and drops what it caches about
  // `device_id` (after an endpoint changed the registry for it), so the device's next
  // connection sees the change at once. Thread-safe.
  virtual void ForgetDevice(std::string_view device_id) = 0;
  virtual const Metrics& metrics() const = 0;
};

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_SERVER_H_
