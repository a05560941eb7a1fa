// TLS glue: how a listener accepts devices over TLS 1.3 with a required client certificate whose
// decision is handed to a TrustPolicy. This interface is the one place the server knows a TLS
// library through; two implementations sit behind it (docs/adr/0008-tls-libraries.md):
//   - GnuTLS 3.7 (tls_gnutls.cc), the default: 11.5 KiB per idle connection, 424 us per full
//     handshake and hello of a reconnecting device (more for a first contact);
//   - OpenSSL 3.0 (tls_openssl.cc): 20 KiB, 564 us.
#ifndef HALLMARK_SERVER_TLS_H_
#define HALLMARK_SERVER_TLS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.h"
#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "server/metrics.h"
#include "server/policy.h"
#include "server/tls_library.h"

namespace hallmark::server {

// kMaxExporterLength bounds TlsConnection::ExportKeyingMaterial's `length`.
inline constexpr size_t kMaxExporterLength = 1024;

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

  // Decide runs the policy on a presented chain (leaf first; an empty or undecodable chain is
  // refused). The outcome has an identity, or a rejection; `accept` says whether the handshake
  // may complete (true for refusals too when admit_unknown).
  std::unique_ptr<HandshakeOutcome> Decide(const Result<std::vector<Certificate>>& chain,
                                           bool& accept) const;
};

// SessionOptions: TLS 1.3 resumption. A resumed handshake skips the certificate exchange, so the
// server runs the trust policy again on the certificate the session was established with (see
// server.cc). One ticket per full handshake.
//   - OpenSSL: a bounded in-memory session cache; the ticket only names its cache entry (no
//     session state leaves the server), `cache_size` bounds the cache.
//   - GnuTLS: the ticket is the session state (with the client's certificate) encrypted and
//     authenticated under a key that lives only in this process's memory and rotates; nothing is
//     kept per session on the server, `cache_size` does not apply.
struct SessionOptions {
  bool resumption = true;
  size_t cache_size = 20000;
  std::chrono::seconds lifetime{3600};
};

// TlsConnection is one server-side TLS connection over a non-blocking socket. The TLS library
// reads and writes the socket itself, so there is no buffer between the kernel and the TLS layer,
// and an idle connection keeps no record buffers. The caller waits for readiness (kWantRead /
// kWantWrite) and calls again with the same arguments. Not thread-safe: one connection is driven
// by one thread at a time.
class TlsConnection {
 public:
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kFailed };

  virtual ~TlsConnection() = default;

  virtual Io Handshake() = 0;
  // Read reads up to out.size() bytes into `out`; `n` is how many on kDone. kClosed when the
  // peer closed the connection (close_notify or EOF).
  virtual Io Read(std::span<char> out, size_t& n) = 0;
  // Write writes `in` entirely; kDone when all is sent. After kWantRead/kWantWrite, call again
  // with the same `in`.
  virtual Io Write(std::span<const char> in) = 0;
  // Shutdown sends close_notify (one attempt; the peer's reply is not awaited).
  virtual void Shutdown() = 0;

  // HasBufferedInput reports decrypted or undecrypted bytes already read from the socket.
  virtual bool HasBufferedInput() const = 0;
  virtual bool resumed() const = 0;
  // ErrorText describes the last kFailed ("connection closed" if none).
  virtual std::string ErrorText() const = 0;
  // FailureReason classifies the last failed handshake for the metrics: kTlsVersion,
  // kNoClientCertificate or kProtocol (policy refusals and timeouts are the server's to tell).
  virtual HandshakeFailure FailureReason() const = 0;

  // TakeOutcome removes the policy's decision from the connection and returns it: nullptr if the
  // policy never ran (no client certificate, protocol error, or a resumed session). The
  // connection keeps no copy, so an idle connection does not pay for what only its handshake
  // needed.
  virtual std::unique_ptr<HandshakeOutcome> TakeOutcome() = 0;
  // PeerChain returns the certificates the client presented (leaf first), for a resumed session
  // those it presented when the session was established. kUnauthenticated if there are none.
  virtual Result<std::vector<Certificate>> PeerChain() = 0;
  // Idle tells the connection that it is about to wait for the next request: it drops what it
  // kept only to answer the current one (GnuTLS: the decoded peer chain).
  virtual void Idle() {}

  // ExportKeyingMaterial is the TLS 1.3 exporter (RFC 8446 section 7.5): `length` bytes, 1 to
  // kMaxExporterLength.
  Result<SecretBytes> ExportKeyingMaterial(std::string_view label,
                                           std::span<const uint8_t> context, size_t length) const;

 protected:
  // Export fills `out` with the exporter's output for `label` and `context`.
  virtual Status Export(std::string_view label, std::span<const uint8_t> context,
                        std::span<uint8_t> out) const = 0;
};

// TlsServer is a listener's TLS context: TLS 1.3 only, presenting the server's chain, requiring a
// client certificate and deciding on it by the listener's PeerVerification. Thread-safe: every
// worker accepts through the same TlsServer.
class TlsServer {
 public:
  virtual ~TlsServer() = default;
  // Accept attaches a TLS server connection to the connected, non-blocking socket `fd` (not
  // owned). kResourceExhausted if the library cannot allocate it.
  virtual Result<std::unique_ptr<TlsConnection>> Accept(int fd) = 0;
};

// TlsServerOptions: what MakeTlsServer builds a listener's context from.
struct TlsServerOptions {
  TlsLibrary library = TlsLibrary::kGnuTls;
  std::span<const Certificate> chain;  // leaf first
  const PrivateKey* key = nullptr;
  const PeerVerification* verification = nullptr;  // must outlive the server
  SessionOptions sessions;
};

// MakeTlsServer builds a listener's TLS context. kInvalidArgument if the chain is empty or the
// key does not match its leaf.
Result<std::unique_ptr<TlsServer>> MakeTlsServer(const TlsServerOptions& options);

// Library-specific constructors behind MakeTlsServer (the options are checked there).
Result<std::unique_ptr<TlsServer>> MakeOpenSslServer(const TlsServerOptions& options);
Result<std::unique_ptr<TlsServer>> MakeGnuTlsServer(const TlsServerOptions& options);

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_TLS_H_
