// TLS glue: the OpenSSL context a listener accepts devices with. TLS 1.3 only, client
// certificate required, and the certificate decision handed to a TrustPolicy. This is the one
// place that knows the TLS library; swapping it means reimplementing this file.
#ifndef HALLMARK_SERVER_TLS_H_
#define HALLMARK_SERVER_TLS_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "core/certificate.h"
#include "core/key.h"
#include "core/ossl.h"
#include "core/status.h"
#include "server/policy.h"

namespace hallmark::server {

// HandshakeOutcome is what the policy decided for one connection.
struct HandshakeOutcome {
  std::optional<PeerIdentity> identity;
  std::string rejection;  // reason for the log, when the policy said no
};

// MakeServerContext returns an SSL_CTX for TLS 1.3 servers presenting `chain` (leaf first) with
// `key`, requiring a client certificate and asking `policy` (which must outlive the context)
// about it. kInvalidArgument if the key does not match the certificate.
Result<OsslPtr<SSL_CTX>> MakeServerContext(std::span<const Certificate> chain,
                                           const PrivateKey& key, const TrustPolicy* policy);

// OutcomeOf returns the policy's decision for `ssl`'s handshake, or nullptr if the policy never
// ran (no client certificate, protocol error).
const HandshakeOutcome* OutcomeOf(SSL* ssl);

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_TLS_H_
