#include "server/tls.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <mutex>

namespace hallmark::server {
namespace {

void FreeOutcome(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                 void* /*argp*/) {
  delete static_cast<HandshakeOutcome*>(ptr);
}

int OutcomeIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeOutcome);
  return index;
}

// VerifyPeer replaces OpenSSL's chain verification for client certificates: the listener's
// policy decides. Runs inside the handshake, so a refused device gets a TLS alert and nothing
// else.
int DecideAndRecord(X509_STORE_CTX* store_ctx, const PeerVerification* verification, SSL* ssl) {
  const TrustPolicy* policy = verification->policy;
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  auto outcome = std::make_unique<HandshakeOutcome>();
  auto reject = [&](std::string reason) {
    outcome->rejection = std::move(reason);
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED);
    return 0;
  };
  int ok = 1;
  // OpenSSL runs this callback before it checks that the certificates' keys decode: a peer can
  // send anything here, so every conversion is checked.
  auto leaf_cert = Certificate::FromNative(leaf);
  std::vector<Certificate> untrusted;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_untrusted(store_ctx);
  bool chain_ok = true;
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* c = sk_X509_value(chain, i);
    if (c == leaf) {
      continue;
    }
    auto cert = Certificate::FromNative(c);
    if (!cert) {
      chain_ok = false;
      break;
    }
    untrusted.push_back(std::move(*cert));
  }
  if (!leaf_cert) {
    ok = reject("the device certificate's public key does not decode");
  } else if (!chain_ok) {
    ok = reject("a certificate in the presented chain has a public key that does not decode");
  } else if (auto id = policy->Authorize(*leaf_cert, untrusted); id) {
    outcome->identity = std::move(*id);
  } else if (verification->admit_unknown) {
    outcome->rejection = id.error().message();  // admitted without an identity
  } else {
    ok = reject(id.error().message());
  }
  delete static_cast<HandshakeOutcome*>(SSL_get_ex_data(ssl, OutcomeIndex()));
  SSL_set_ex_data(ssl, OutcomeIndex(), outcome.release());
  return ok;
}

// VerifyPeer replaces OpenSSL's chain verification for client certificates: the listener's
// policy decides. Runs inside the handshake, so a refused device gets a TLS alert and nothing
// else. No exception may cross back into OpenSSL's C frames.
int VerifyPeer(X509_STORE_CTX* store_ctx, void* arg) {
  const auto* verification = static_cast<const PeerVerification*>(arg);
  SSL* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr || X509_STORE_CTX_get0_cert(store_ctx) == nullptr) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  try {
    return DecideAndRecord(store_ctx, verification, ssl);
  } catch (...) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
}

}  // namespace

std::unique_ptr<HandshakeOutcome> TakeOutcome(SSL* ssl) {
  std::unique_ptr<HandshakeOutcome> outcome(
      static_cast<HandshakeOutcome*>(SSL_get_ex_data(ssl, OutcomeIndex())));
  SSL_set_ex_data(ssl, OutcomeIndex(), nullptr);
  return outcome;
}

Result<OsslPtr<SSL_CTX>> MakeServerContext(std::span<const Certificate> chain,
                                           const PrivateKey& key,
                                           const PeerVerification* verification) {
  if (chain.empty()) {
    return Error(Code::kInvalidArgument, "server certificate chain is empty");
  }
  if (!(chain.front().Key() == key.Public())) {
    return Error(Code::kInvalidArgument,
                 "server private key does not match the certificate " + chain.front().Subject());
  }
  OsslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    return OsslError("SSL_CTX_new");
  }
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
    return OsslError("restricting the server to TLS 1.3");
  }
  if (SSL_CTX_use_certificate(c, chain.front().native()) != 1 ||
      SSL_CTX_use_PrivateKey(c, key.native()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    return OsslError(Code::kInvalidArgument, "server certificate and key are not usable");
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(c, chain[i].native()) != 1) {
      return OsslError("SSL_CTX_add1_chain_cert");
    }
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(c, VerifyPeer, const_cast<PeerVerification*>(verification));
  // Devices lose power and drop connections without close_notify: treat that as a close, not
  // a fatal error (which would also evict the session from the resumption cache). Requests are
  // framed by Content-Length, so truncation cannot go unnoticed.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Idle connections keep no read/write buffers.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (auto s = ConfigureSessions(c, SessionOptions{.resumption = false}); !s) {
    return s.error();
  }
  return ctx;
}

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

Result<TlsConnection> TlsConnection::New(SSL_CTX* ctx, int fd) {
  OsslPtr<SSL> ssl(SSL_new(ctx));
  if (!ssl) {
    return OsslError(Code::kResourceExhausted, "SSL_new");
  }
  if (SSL_set_fd(ssl.get(), fd) != 1) {
    return OsslError("SSL_set_fd");
  }
  SSL_set_accept_state(ssl.get());
  return TlsConnection(std::move(ssl));
}

TlsConnection::Io TlsConnection::Classify(int ret) {
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

TlsConnection::Io TlsConnection::Handshake() {
  ERR_clear_error();
  int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) {
    return Io::kDone;
  }
  Io io = Classify(ret);
  // A handshake that ends without a finished exchange is a failure, not a clean close.
  return io == Io::kClosed ? Io::kFailed : io;
}

TlsConnection::Io TlsConnection::Read(std::span<char> out, size_t& n) {
  ERR_clear_error();
  n = 0;
  if (SSL_read_ex(ssl_.get(), out.data(), out.size(), &n) == 1) {
    return Io::kDone;
  }
  return Classify(0);
}

TlsConnection::Io TlsConnection::Write(std::span<const char> in) {
  ERR_clear_error();
  size_t written = 0;
  if (SSL_write_ex(ssl_.get(), in.data(), in.size(), &written) == 1) {
    return Io::kDone;
  }
  return Classify(0);
}

void TlsConnection::Shutdown() {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_.get())) {
    SSL_shutdown(ssl_.get());
  }
  ERR_clear_error();
}

bool TlsConnection::HasBufferedInput() const { return SSL_has_pending(ssl_.get()) == 1; }

bool TlsConnection::resumed() const { return SSL_session_reused(ssl_.get()) == 1; }

std::string TlsConnection::ErrorText() const {
  if (last_error_ == 0) {
    return "connection closed";
  }
  char buf[256];
  ERR_error_string_n(last_error_, buf, sizeof(buf));
  return buf;
}

Result<SecretBytes> TlsConnection::ExportKeyingMaterial(std::string_view label,
                                                        std::span<const uint8_t> context,
                                                        size_t length) const {
  if (length == 0 || length > 1024) {
    return Error(Code::kInvalidArgument, "exporter length must be 1..1024 bytes");
  }
  std::vector<uint8_t> out(length);
  const std::string label_text(label);
  if (SSL_export_keying_material(ssl_.get(), out.data(), out.size(), label_text.c_str(),
                                 label_text.size(), context.data(), context.size(),
                                 /*use_context=*/1) != 1) {
    return OsslError(Code::kFailedPrecondition, "TLS exporter");
  }
  SecretBytes secret{std::span<const uint8_t>(out)};
  OPENSSL_cleanse(out.data(), out.size());
  return secret;
}

}  // namespace hallmark::server
