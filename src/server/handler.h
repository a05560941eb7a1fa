// Handler: the contract between the server's transport (TLS + HTTP/1.1 framing, server.cc) and
// the endpoints behind it. A handler sees a parsed request and what the TLS layer knows about the
// client, and returns a response; it never touches sockets or the TLS library.
#ifndef HALLMARK_SERVER_HANDLER_H_
#define HALLMARK_SERVER_HANDLER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/certificate.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "server/policy.h"

namespace hallmark::server {

// HttpRequest is one parsed request. The body is bounded by the route's body limit.
struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string content_type;
  std::string body;
};

// HttpResponse is what a handler answers.
struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  bool close = false;  // close the connection after this response
};

// ClientContext is what the TLS layer established about the client on this connection.
struct ClientContext {
  // identity is set when the listener's policy accepted the client's certificate; it is empty on
  // routes that admit unauthenticated clients (claims, pending approval).
  const PeerIdentity* identity = nullptr;
  // leaf is the certificate the client presented (always present: every listener requires one,
  // and the TLS layer has checked that the client holds its private key).
  const Certificate* leaf = nullptr;
  std::string peer_address;  // "127.0.0.1:5555", for logs and per-source rate limits
  // export_keying_material is the TLS 1.3 exporter (RFC 8446 section 7.5) of this connection:
  // `length` bytes for `label` and `context`. Binds a proof to this very connection.
  std::function<Result<SecretBytes>(std::string_view label, std::span<const uint8_t> context,
                                    size_t length)>
      export_keying_material;
};

// Handler serves one route (an exact path). Thread-safe: called concurrently from all workers.
class Handler {
 public:
  virtual ~Handler() = default;
  // max_body_bytes bounds the request body; larger bodies are refused with 413 before Handle.
  virtual size_t max_body_bytes() const { return 0; }
  // authenticated_only: when true (the default) the route is only reachable by clients the
  // listener's policy accepted; others get 403 without reaching Handle.
  virtual bool authenticated_only() const { return true; }
  // blocking: Handle may wait for the disk (a transaction's fsync) or other slow I/O. The server
  // then runs it on a small pool of its own threads instead of the connection's event loop, so
  // other connections' handshakes and requests do not wait behind it. Handle must be
  // thread-safe either way.
  virtual bool blocking() const { return false; }
  virtual HttpResponse Handle(const HttpRequest& request, const ClientContext& client) = 0;
};

// JsonError builds the uniform error response: {"error": message}.
HttpResponse JsonError(int status, std::string_view message);

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_HANDLER_H_
