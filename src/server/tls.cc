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
int DecideAndRecord(X509_STORE_CTX* store_ctx, const TrustPolicy* policy, SSL* ssl) {
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
  const auto* policy = static_cast<const TrustPolicy*>(arg);
  SSL* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr || X509_STORE_CTX_get0_cert(store_ctx) == nullptr) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  try {
    return DecideAndRecord(store_ctx, policy, ssl);
  } catch (...) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
}

}  // namespace

const HandshakeOutcome* OutcomeOf(SSL* ssl) {
  return static_cast<const HandshakeOutcome*>(SSL_get_ex_data(ssl, OutcomeIndex()));
}

Result<OsslPtr<SSL_CTX>> MakeServerContext(std::span<const Certificate> chain,
                                           const PrivateKey& key, const TrustPolicy* policy) {
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
  SSL_CTX_set_cert_verify_callback(c, VerifyPeer, const_cast<TrustPolicy*>(policy));
  // No resumption yet: every connection runs the policy on a full handshake, so revocation
  // and registry changes apply to the next connection. (Resumption that re-checks the policy is
  // a performance step for later.)
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  // Idle connections keep no read/write buffers.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

}  // namespace hallmark::server
