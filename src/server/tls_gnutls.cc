// The GnuTLS 3.7 implementation of server/tls.h, the default (`[tls] library = "gnutls"`): an
// idle connection costs about half what it costs with OpenSSL 3.0, the handshake of a device
// that reconnects about a quarter less CPU, a first contact about a sixth more
// (docs/adr/0008-tls-libraries.md).
// GnuTLS does the handshake, the record layer and the proof that the client holds its
// certificate's key (CertificateVerify); the listener's policy decides on the certificates
// themselves, as with OpenSSL, after they are decoded by core/certificate (OpenSSL).
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "server/internal/lru_map.h"
#include "server/tls.h"

namespace hallmark::server {
namespace {

using Io = TlsConnection::Io;

// kPriorities: TLS 1.3 only, GnuTLS's default algorithms otherwise.
constexpr const char* kPriorities = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
// kNonFatalRetries bounds how many non-fatal notices (e.g. a warning alert) one call skips.
constexpr int kNonFatalRetries = 8;
// kDecodedCertificates bounds the decoded-certificate cache of a listener (about 3 KiB each).
constexpr size_t kDecodedCertificates = 1024;

Error GnuTlsError(Code code, std::string_view what, int err) {
  return Error(code, std::string(what) + ": " + gnutls_strerror(err));
}

// DecodedCertificates hands the policy OpenSSL certificates for the DER GnuTLS received. OpenSSL
// 3.0 decodes a certificate's key through its provider decoders, about 115 us for a P-256 device
// certificate (bench/policy_bench BM_ParseDeviceCertificate), so the certificates it decoded are
// kept, keyed by the SHA-256 of their DER, for a device that reconnects and for the requests of
// an open connection. Bounded (least recently used goes first); thread-safe.
class DecodedCertificates {
 public:
  DecodedCertificates() : map_(kDecodedCertificates, internal::NewDigestHash()) {}

  Result<Certificate> Decode(std::span<const uint8_t> der) {
    internal::Digest key;
    const Bytes digest = Sha256(der);
    std::copy_n(digest.begin(), key.size(), key.begin());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (const std::optional<Certificate>* known = map_.Find(key); known != nullptr) {
        return **known;
      }
    }
    auto cert = Certificate::FromDer(der);
    if (cert) {
      std::lock_guard<std::mutex> lock(mu_);
      map_.Insert(key, *cert);
    }
    return cert;
  }

 private:
  std::mutex mu_;
  internal::LruMap<std::optional<Certificate>> map_;
};

// ListenerState is what all connections of one listener share.
struct ListenerState {
  const PeerVerification* verification = nullptr;
  DecodedCertificates decoded;
};

// PeersOf decodes the certificates GnuTLS received (or restored from a resumption ticket).
Result<std::vector<Certificate>> PeersOf(gnutls_session_t session, DecodedCertificates& decoded) {
  unsigned int count = 0;
  const gnutls_datum_t* peers = gnutls_certificate_get_peers(session, &count);
  std::vector<Certificate> chain;
  for (unsigned int i = 0; peers != nullptr && i < count; ++i) {
    auto cert = decoded.Decode({peers[i].data, peers[i].size});
    if (!cert) {
      return Error(Code::kInvalidArgument,
                   i == 0 ? "the device certificate does not decode: " + cert.error().message()
                          : "a certificate in the presented chain does not decode: " +
                                cert.error().message());
    }
    chain.push_back(std::move(*cert));
  }
  return chain;
}

class GnuTlsConnection : public TlsConnection {
 public:
  GnuTlsConnection(gnutls_session_t session, ListenerState* listener, bool send_ticket)
      : session_(session), listener_(listener), send_ticket_(send_ticket) {
    gnutls_session_set_ptr(session_, this);
  }
  ~GnuTlsConnection() override { gnutls_deinit(session_); }
  GnuTlsConnection(const GnuTlsConnection&) = delete;
  GnuTlsConnection& operator=(const GnuTlsConnection&) = delete;

  // VerifyClient is GnuTLS's certificate verification callback. GnuTLS runs it after it has
  // checked the client's CertificateVerify (the client holds the leaf's key); the policy
  // decides. No exception may cross back into GnuTLS's C frames.
  static int VerifyClient(gnutls_session_t session) noexcept {
    auto* self = static_cast<GnuTlsConnection*>(gnutls_session_get_ptr(session));
    if (self == nullptr) {
      return -1;
    }
    try {
      auto chain = PeersOf(session, self->listener_->decoded);
      bool accept = false;
      self->outcome_ = self->listener_->verification->Decide(chain, accept);
      if (accept && chain) {
        self->chain_ = std::move(*chain);  // for the first request's authorization
      }
      return accept ? 0 : -1;
    } catch (...) {
      return -1;
    }
  }

  Io Handshake() override {
    for (int attempt = 0; !handshake_done_; ++attempt) {
      const int r = gnutls_handshake(session_);
      if (r == GNUTLS_E_SUCCESS) {
        handshake_done_ = true;
      } else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED ||
                 gnutls_error_is_fatal(r) != 0 || attempt + 1 >= kNonFatalRetries) {
        return ClassifyHandshake(r);
      }
      // Otherwise a notice such as a warning alert: the handshake goes on at once.
    }
    if (send_ticket_) {
      // One resumption ticket per handshake (GnuTLS would send two).
      const int r = gnutls_session_ticket_send(session_, 1, 0);
      if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
        return Direction();
      }
      send_ticket_ = false;
      if (r < 0 && gnutls_error_is_fatal(r) != 0) {
        last_error_ = r;
        return Io::kFailed;
      }
    }
    return Io::kDone;
  }

  Io Read(std::span<char> out, size_t& n) override {
    n = 0;
    for (int attempt = 0; attempt < kNonFatalRetries; ++attempt) {
      const ssize_t r = gnutls_record_recv(session_, out.data(), out.size());
      if (r > 0) {
        n = static_cast<size_t>(r);
        return Io::kDone;
      }
      if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
        // close_notify, or (devices lose power) EOF without one: a close either way. Requests
        // are framed by Content-Length, so truncation cannot go unnoticed.
        return Io::kClosed;
      }
      if (auto io = Retry(static_cast<int>(r)); io != Io::kDone) {
        return io;
      }
    }
    return Io::kFailed;
  }

  Io Write(std::span<const char> in) override {
    for (int attempt = 0; attempt < kNonFatalRetries;) {
      const ssize_t r =
          gnutls_record_send(session_, in.data() + written_, in.size() - written_);
      if (r >= 0) {
        written_ += static_cast<size_t>(r);
        if (written_ >= in.size()) {
          written_ = 0;
          return Io::kDone;
        }
        continue;  // the rest in the next record(s)
      }
      if (auto io = Retry(static_cast<int>(r)); io != Io::kDone) {
        return io;
      }
      ++attempt;
    }
    written_ = 0;
    return Io::kFailed;
  }

  void Shutdown() override {
    if (handshake_done_) {
      gnutls_bye(session_, GNUTLS_SHUT_WR);  // one attempt on a non-blocking socket
    }
  }

  bool HasBufferedInput() const override {
    // GnuTLS reads the socket one record at a time, so what it holds undecrypted is at most
    // the start of the next record, which needs more bytes from the socket anyway.
    return gnutls_record_check_pending(session_) > 0;
  }
  bool resumed() const override { return gnutls_session_is_resumed(session_) != 0; }

  std::string ErrorText() const override {
    switch (last_error_) {
      case 0:
        return "connection closed";
      case GNUTLS_E_KEY_USAGE_VIOLATION:
        // GnuTLS checks this before the policy: a CA certificate, or one not meant for devices.
        return "the certificate's key usage does not allow signing the handshake";
      default:
        return std::string(gnutls_strerror(last_error_)) +
               (OldClient() ? " (the client does not offer TLS 1.3)" : "");
    }
  }

  HandshakeFailure FailureReason() const override {
    switch (last_error_) {
      case GNUTLS_E_NO_CERTIFICATE_FOUND:
      case GNUTLS_E_CERTIFICATE_REQUIRED:
        return HandshakeFailure::kNoClientCertificate;
      case GNUTLS_E_KEY_USAGE_VIOLATION:
        return HandshakeFailure::kPolicyRejected;
      default:
        return OldClient() ? HandshakeFailure::kTlsVersion : HandshakeFailure::kProtocol;
    }
  }

  std::unique_ptr<HandshakeOutcome> TakeOutcome() override { return std::move(outcome_); }

  Result<std::vector<Certificate>> PeerChain() override {
    if (!chain_.empty()) {
      return chain_;
    }
    auto chain = PeersOf(session_, listener_->decoded);
    if (chain && chain->empty()) {
      return Error(Code::kUnauthenticated, "no peer certificate");
    }
    if (chain) {
      chain_ = *chain;  // until the connection goes idle
    }
    return chain;
  }

  void Idle() override { std::vector<Certificate>().swap(chain_); }

  Status Export(std::string_view label, std::span<const uint8_t> context,
                std::span<uint8_t> out) const override {
    const int r = gnutls_prf_rfc5705(session_, label.size(), label.data(), context.size(),
                                     reinterpret_cast<const char*>(context.data()), out.size(),
                                     reinterpret_cast<char*>(out.data()));
    if (r < 0) {
      return GnuTlsError(Code::kFailedPrecondition, "TLS exporter", r);
    }
    return OkStatus();
  }

 private:
  // OldClient: the handshake failed on a client that offers no TLS 1.3 (GnuTLS reports such a
  // client as having no cipher suite in common, or as an unsupported version).
  bool OldClient() const {
    return last_error_ == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
           ((last_error_ == GNUTLS_E_NO_CIPHER_SUITES ||
             last_error_ == GNUTLS_E_UNKNOWN_CIPHER_SUITE) &&
            version_ != GNUTLS_VERSION_UNKNOWN && version_ != GNUTLS_TLS1_3);
  }

  Io Direction() const {
    return gnutls_record_get_direction(session_) == 1 ? Io::kWantWrite : Io::kWantRead;
  }

  // Retry maps an error of a record call: kDone means "not fatal, call again".
  Io Retry(int err) {
    if (err == GNUTLS_E_AGAIN || err == GNUTLS_E_INTERRUPTED) {
      return Direction();
    }
    if (gnutls_error_is_fatal(err) == 0) {
      return Io::kDone;
    }
    last_error_ = err;
    return Io::kFailed;
  }

  Io ClassifyHandshake(int err) {
    if (err == GNUTLS_E_AGAIN || err == GNUTLS_E_INTERRUPTED) {
      return Direction();
    }
    last_error_ = err;
    version_ = gnutls_protocol_get_version(session_);
    // Tell the client why in TLS terms (bad_certificate, protocol_version, ...); one attempt.
    gnutls_alert_send_appropriate(session_, err);
    return Io::kFailed;
  }

  gnutls_session_t session_;
  ListenerState* listener_;
  std::unique_ptr<HandshakeOutcome> outcome_;
  std::vector<Certificate> chain_;  // decoded at the handshake, dropped when idle
  size_t written_ = 0;              // of the Write in progress
  int last_error_ = 0;
  gnutls_protocol_t version_ = GNUTLS_VERSION_UNKNOWN;  // as negotiated when the handshake failed
  bool handshake_done_ = false;
  bool send_ticket_;
};

class GnuTlsServer : public TlsServer {
 public:
  GnuTlsServer() = default;
  ~GnuTlsServer() override {
    if (priorities_ != nullptr) {
      gnutls_priority_deinit(priorities_);
    }
    if (credentials_ != nullptr) {
      gnutls_certificate_free_credentials(credentials_);
    }
    if (ticket_key_.data != nullptr) {
      gnutls_memset(ticket_key_.data, 0, ticket_key_.size);
      gnutls_free(ticket_key_.data);
    }
  }
  GnuTlsServer(const GnuTlsServer&) = delete;
  GnuTlsServer& operator=(const GnuTlsServer&) = delete;

  Status Init(const TlsServerOptions& options) {
    listener_.verification = options.verification;
    sessions_ = options.sessions;
    int r = gnutls_certificate_allocate_credentials(&credentials_);
    if (r < 0) {
      return GnuTlsError(Code::kResourceExhausted, "gnutls_certificate_allocate_credentials", r);
    }
    const std::string chain_pem = ChainToPem(options.chain);
    auto key_pem = options.key->ToPem(SecretAccess::Grant());
    if (!key_pem) {
      return key_pem.error().WithContext("the server key cannot be handed to GnuTLS");
    }
    const std::string_view key_text = key_pem->view(SecretAccess::Grant());
    gnutls_datum_t cert{reinterpret_cast<unsigned char*>(const_cast<char*>(chain_pem.data())),
                        static_cast<unsigned int>(chain_pem.size())};
    gnutls_datum_t key{reinterpret_cast<unsigned char*>(const_cast<char*>(key_text.data())),
                       static_cast<unsigned int>(key_text.size())};
    r = gnutls_certificate_set_x509_key_mem2(credentials_, &cert, &key, GNUTLS_X509_FMT_PEM,
                                             nullptr, 0);
    if (r < 0) {
      return GnuTlsError(Code::kInvalidArgument, "server certificate and key are not usable", r);
    }
    gnutls_certificate_set_verify_function(credentials_, &GnuTlsConnection::VerifyClient);
    const char* error_at = nullptr;
    r = gnutls_priority_init(&priorities_, kPriorities, &error_at);
    if (r < 0) {
      return GnuTlsError(Code::kInternal, "gnutls_priority_init", r);
    }
    if (sessions_.resumption) {
      r = gnutls_session_ticket_key_generate(&ticket_key_);
      if (r < 0) {
        return GnuTlsError(Code::kInternal, "generating the resumption ticket key", r);
      }
    }
    return OkStatus();
  }

  Result<std::unique_ptr<TlsConnection>> Accept(int fd) override {
    unsigned int flags = GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL;
    flags |= sessions_.resumption ? GNUTLS_NO_AUTO_SEND_TICKET : GNUTLS_NO_TICKETS;
    gnutls_session_t session = nullptr;
    int r = gnutls_init(&session, flags);
    if (r < 0) {
      return GnuTlsError(Code::kResourceExhausted, "gnutls_init", r);
    }
    // Owned from here on: the connection deinits the session.
    auto conn = std::make_unique<GnuTlsConnection>(session, &listener_, sessions_.resumption);
    r = gnutls_priority_set(session, priorities_);
    if (r >= 0) {
      r = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials_);
    }
    if (r >= 0 && sessions_.resumption) {
      r = gnutls_session_ticket_enable_server(session, &ticket_key_);
      gnutls_db_set_cache_expiration(session, static_cast<int>(sessions_.lifetime.count()));
    }
    if (r < 0) {
      return GnuTlsError(Code::kInternal, "setting up a GnuTLS session", r);
    }
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
    gnutls_transport_set_int(session, fd);
    return std::unique_ptr<TlsConnection>(std::move(conn));
  }

 private:
  ListenerState listener_;
  SessionOptions sessions_;
  gnutls_certificate_credentials_t credentials_ = nullptr;
  gnutls_priority_t priorities_ = nullptr;
  gnutls_datum_t ticket_key_{nullptr, 0};
};

}  // namespace

Result<std::unique_ptr<TlsServer>> MakeGnuTlsServer(const TlsServerOptions& options) {
  auto server = std::make_unique<GnuTlsServer>();
  if (auto s = server->Init(options); !s) {
    return s.error();
  }
  return std::unique_ptr<TlsServer>(std::move(server));
}

}  // namespace hallmark::server
