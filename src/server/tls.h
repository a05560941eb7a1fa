// TLS glue: the OpenSSL context a listener accepts devices with. TLS 1.3 only, client
// certificate required, and the certificate decision handed to a TrustPolicy. This is the one
// place that knows the TLS library; swapping it means reimplementing this file.
#ifndef HALLMARK_SERVER_TLS_H_
#define HALLMARK_SERVER_TLS_H_

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "core/certificate.h"
#include "core/key.h"
#include "core/ossl.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "server/policy.h"

namespace hallmark::server {

// HandshakeOutcome is what the policy decided for one connection.
struct HandshakeOutcome {
  std::optional<PeerIdentity> identity;
  std::string rejection;  // reason for the log, when the policy said no
};

// PeerVerification is how a listener decides on client certificates.
struct PeerVerification {
  const TrustPolicy* policy = nullptr;
  // admit_unknown: complete the handshake even when the policy refuses the certificate (the
  // client still proves it holds the certificate's key), leaving the connection without an
  // identity. For listeners that serve claim and pending-approval endpoints to devices that have
  // no credential yet; every other endpoint refuses such connections.
  bool admit_unknown = false;
};

// MakeServerContext returns an SSL_CTX for TLS 1.3 servers presenting `chain` (leaf first) with
// `key`, requiring a client certificate and deciding on it by `verification` (which must outlive
// the context). kInvalidArgument if the key does not match the certificate.
Result<OsslPtr<SSL_CTX>> MakeServerContext(std::span<const Certificate> chain,
                                           const PrivateKey& key,
                                           const PeerVerification* verification);

// TakeOutcome removes the policy's decision from `ssl` and returns it: nullptr if the policy never
// ran (no client certificate, protocol error, or a resumed session). The connection keeps no copy,
// so an idle connection does not pay for what only its handshake needed.
std::unique_ptr<HandshakeOutcome> TakeOutcome(SSL* ssl);

// SessionOptions: TLS 1.3 resumption. The server keeps resumable sessions in a bounded in-memory
// cache and hands each client one ticket that only names its cache entry (no session state
// leaves the server). A resumed handshake skips the certificate exchange, so the server runs the
// trust policy again on the certificate the session was established with (see server.cc).
struct SessionOptions {
  bool resumption = true;
  size_t cache_size = 20000;
  std::chrono::seconds lifetime{3600};
};

// ConfigureSessions applies `options` to `ctx` (made by MakeServerContext).
Status ConfigureSessions(SSL_CTX* ctx, const SessionOptions& options);

// TlsConnection is one server-side TLS connection over a non-blocking socket. OpenSSL reads and
// writes the socket itself, so there is no buffer between the kernel and the TLS layer, and with
// SSL_MODE_RELEASE_BUFFERS an idle connection keeps no record buffers either. The caller waits
// for readiness (kWantRead / kWantWrite) and calls again. Not thread-safe: one connection is
// driven by one thread at a time.
class TlsConnection {
 public:
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kFailed };

  // New attaches a TLS server connection to the connected socket `fd` (not owned).
  static Result<TlsConnection> New(SSL_CTX* ctx, int fd);

  Io Handshake();
  // Read reads up to out.size() bytes into `out`; `n` is how many on kDone. kClosed when the
  // peer closed the connection (close_notify or EOF).
  Io Read(std::span<char> out, size_t& n);
  // Write writes `in` entirely (partial writes are not enabled); kDone when all is sent.
  Io Write(std::span<const char> in);
  // Shutdown sends close_notify (one attempt; the peer's reply is not awaited).
  void Shutdown();

  // HasBufferedInput reports decrypted or undecrypted bytes already read from the socket.
  bool HasBufferedInput() const;
  bool resumed() const;
  // last_error is the OpenSSL error code of the last kFailed (0 if none).
  unsigned long last_error() const { return last_error_; }
  std::string ErrorText() const;
  SSL* native() const { return ssl_.get(); }

  // ExportKeyingMaterial is the TLS 1.3 exporter (RFC 8446 section 7.5).
  Result<SecretBytes> ExportKeyingMaterial(std::string_view label,
                                           std::span<const uint8_t> context, size_t length) const;

 private:
  explicit TlsConnection(OsslPtr<SSL> ssl) : ssl_(std::move(ssl)) {}
  Io Classify(int ret);

  OsslPtr<SSL> ssl_;
  unsigned long last_error_ = 0;
};

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_TLS_H_
