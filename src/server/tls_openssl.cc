// The OpenSSL 3.0 implementation of server/tls.h.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "core/ossl.h"
#include "server/tls.h"

namespace hallmark::server {
namespace {

using Io = TlsConnection::Io;

void FreeOutcome(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                 void* /*argp*/) {
  delete static_cast<HandshakeOutcome*>(ptr);
}

int OutcomeIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeOutcome);
  return index;
}

// ChainOf converts what OpenSSL received (the leaf, and the chain, which may repeat the leaf) to
// Certificates. OpenSSL accepts certificates whose keys do not decode (and runs the verify
// callback before it checks them): a peer can send anything, so every conversion is checked.
Result<std::vector<Certificate>> ChainOf(X509* leaf, STACK_OF(X509) * presented) {
  std::vector<Certificate> chain;
  if (leaf == nullptr) {
    return chain;
  }
  auto leaf_cert = Certificate::FromNative(leaf);
  if (!leaf_cert) {
    return Error(Code::kInvalidArgument, "the device certificate's public key does not decode");
  }
  chain.push_back(std::move(*leaf_cert));
  for (int i = 0; presented != nullptr && i < sk_X509_num(presented); ++i) {
    X509* c = sk_X509_value(presented, i);
    if (c == leaf || X509_cmp(c, leaf) == 0) {
      continue;
    }
    auto cert = Certificate::FromNative(c);
    if (!cert) {
      return Error(Code::kInvalidArgument,
                   "a certificate in the presented chain has a public key that does not decode");
    }
    chain.push_back(std::move(*cert));
  }
  return chain;
}

// VerifyPeer replaces OpenSSL's chain verification for client certificates: the listener's
// policy decides. Runs inside the handshake, so a refused device gets a TLS alert and nothing
// else. No exception may cross back into OpenSSL's C frames.
int VerifyPeer(X509_STORE_CTX* store_ctx, void* arg) {
  const auto* verification = static_cast<const PeerVerification*>(arg);
  SSL* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  if (ssl == nullptr || leaf == nullptr) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  try {
    bool accept = false;
    auto outcome =
        verification->Decide(ChainOf(leaf, X509_STORE_CTX_get0_untrusted(store_ctx)), accept);
    delete static_cast<HandshakeOutcome*>(SSL_get_ex_data(ssl, OutcomeIndex()));
    SSL_set_ex_data(ssl, OutcomeIndex(), outcome.release());
    if (!accept) {
      X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED);
    }
    return accept ? 1 : 0;
  } catch (...) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
}

class OpenSslConnection : public TlsConnection {
 public:
  explicit OpenSslConnection(OsslPtr<SSL> ssl) : ssl_(std::move(ssl)) {}

  Io Handshake() override {
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_.get());
    if (ret == 1) {
      return Io::kDone;
    }
    Io io = Classify(ret);
    // A handshake that ends without a finished exchange is a failure, not a clean close.
    return io == Io::kClosed ? Io::kFailed : io;
  }

  Io Read(std::span<char> out, size_t& n) override {
    ERR_clear_error();
    n = 0;
    if (SSL_read_ex(ssl_.get(), out.data(), out.size(), &n) == 1) {
      return Io::kDone;
    }
    return Classify(0);
  }

  Io Write(std::span<const char> in) override {
    ERR_clear_error();
    size_t written = 0;
    if (SSL_write_ex(ssl_.get(), in.data(), in.size(), &written) == 1) {
      return Io::kDone;
    }
    return Classify(0);
  }

  void Shutdown() override {
    ERR_clear_error();
    if (SSL_is_init_finished(ssl_.get())) {
      SSL_shutdown(ssl_.get());
    }
    ERR_clear_error();
  }

  bool HasBufferedInput() const override { return SSL_has_pending(ssl_.get()) == 1; }
  bool resumed() const override { return SSL_session_reused(ssl_.get()) == 1; }

  std::string ErrorText() const override {
    if (last_error_ == 0) {
      return "connection closed";
    }
    char buf[256];
    ERR_error_string_n(last_error_, buf, sizeof(buf));
    return buf;
  }

  HandshakeFailure FailureReason() const override {
    switch (ERR_GET_REASON(last_error_)) {
      case SSL_R_UNSUPPORTED_PROTOCOL:
        return HandshakeFailure::kTlsVersion;
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return HandshakeFailure::kNoClientCertificate;
      default:
        return HandshakeFailure::kProtocol;
    }
  }

  std::unique_ptr<HandshakeOutcome> TakeOutcome() override {
    std::unique_ptr<HandshakeOutcome> outcome(
        static_cast<HandshakeOutcome*>(SSL_get_ex_data(ssl_.get(), OutcomeIndex())));
    SSL_set_ex_data(ssl_.get(), OutcomeIndex(), nullptr);
    return outcome;
  }

  Result<std::vector<Certificate>> PeerChain() override {
    X509* leaf = SSL_get0_peer_certificate(ssl_.get());
    if (leaf == nullptr) {
      return Error(Code::kUnauthenticated, "no peer certificate");
    }
    return ChainOf(leaf, SSL_get_peer_cert_chain(ssl_.get()));
  }

  Status Export(std::string_view label, std::span<const uint8_t> context,
                std::span<uint8_t> out) const override {
    const std::string label_text(label);
    if (SSL_export_keying_material(ssl_.get(), out.data(), out.size(), label_text.c_str(),
                                   label_text.size(), context.data(), context.size(),
                                   /*use_context=*/1) != 1) {
      return OsslError(Code::kFailedPrecondition, "TLS exporter");
    }
    return OkStatus();
  }

 private:
  Io Classify(int ret) {
    switch (SSL_get_error(ssl_.get(), ret)) {
      case SSL_ERROR_WANT_READ:
        return Io::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kClosed;
      case SSL_ERROR_SYSCALL:
        // EOF or a socket error: the peer is gone either way.
        last_error_ = ERR_peek_last_error();
        ERR_clear_error();
        return last_error_ == 0 ? Io::kClosed : Io::kFailed;
      default:
        last_error_ = ERR_peek_last_error();
        ERR_clear_error();
        return Io::kFailed;
    }
  }

  OsslPtr<SSL> ssl_;
  unsigned long last_error_ = 0;
};

Status ConfigureSessions(SSL_CTX* ctx, const SessionOptions& options) {
  // Stateless tickets (OpenSSL's default, two per handshake) cost about as much CPU as the
  // handshake's own signature; SSL_OP_NO_TICKET makes TLS 1.3 tickets stateful: a ticket only
  // names an entry in the server's cache.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (!options.resumption) {
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return OkStatus();
  }
  static constexpr unsigned char kContext[] = "hallmark-device";
  if (SSL_CTX_set_session_id_context(ctx, kContext, sizeof(kContext) - 1) != 1) {
    return OsslError("SSL_CTX_set_session_id_context");
  }
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(options.cache_size));
  SSL_CTX_set_timeout(ctx, static_cast<long>(options.lifetime.count()));
  return OkStatus();
}

class OpenSslServer : public TlsServer {
 public:
  explicit OpenSslServer(OsslPtr<SSL_CTX> ctx) : ctx_(std::move(ctx)) {}

  Result<std::unique_ptr<TlsConnection>> Accept(int fd) override {
    OsslPtr<SSL> ssl(SSL_new(ctx_.get()));
    if (!ssl) {
      return OsslError(Code::kResourceExhausted, "SSL_new");
    }
    if (SSL_set_fd(ssl.get(), fd) != 1) {
      return OsslError("SSL_set_fd");
    }
    SSL_set_accept_state(ssl.get());
    return std::unique_ptr<TlsConnection>(std::make_unique<OpenSslConnection>(std::move(ssl)));
  }

 private:
  OsslPtr<SSL_CTX> ctx_;
};

}  // namespace

Result<std::unique_ptr<TlsServer>> MakeOpenSslServer(const TlsServerOptions& options) {
  OsslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    return OsslError("SSL_CTX_new");
  }
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
    return OsslError("restricting the server to TLS 1.3");
  }
  if (SSL_CTX_use_certificate(c, options.chain.front().native()) != 1 ||
      SSL_CTX_use_PrivateKey(c, options.key->native()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    return OsslError(Code::kInvalidArgument, "server certificate and key are not usable");
  }
  for (size_t i = 1; i < options.chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(c, options.chain[i].native()) != 1) {
      return OsslError("SSL_CTX_add1_chain_cert");
    }
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(c, VerifyPeer,
                                   const_cast<PeerVerification*>(options.verification));
  // Devices lose power and drop connections without close_notify: treat that as a close, not
  // a fatal error (which would also evict the session from the resumption cache). Requests are
  // framed by Content-Length, so truncation cannot go unnoticed.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Idle connections keep no read/write buffers.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (auto s = ConfigureSessions(c, options.sessions); !s) {
    return s.error();
  }
  return std::unique_ptr<TlsServer>(std::make_unique<OpenSslServer>(std::move(ctx)));
}

}  // namespace hallmark::server
