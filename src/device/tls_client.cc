#include "device/tls_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>

#include "core/certificate_builder.h"
#include "core/ossl.h"

namespace hallmark::device {
namespace {

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

Result<int> Connect(const ClientOptions& o) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(o.port);
  int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return Error(Code::kUnavailable, "cannot resolve " + o.host + ": " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      continue;
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(o.timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((o.timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      break;
    }
    last_error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return Error(Code::kUnavailable,
                 "cannot connect to " + o.host + ":" + port + ": " + last_error);
  }
  return fd;
}

Result<OsslPtr<SSL_CTX>> ClientContext(const PrivateKey& key, std::span<const Certificate> chain,
                                       const ClientOptions& o) {
  OsslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    return OsslError("SSL_CTX_new");
  }
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
  if (SSL_CTX_use_certificate(c, chain.front().native()) != 1 ||
      SSL_CTX_use_PrivateKey(c, key.native()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    return OsslError(Code::kInvalidArgument, "device certificate and key do not match");
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(c, chain[i].native()) != 1) {
      return OsslError(Code::kInvalidArgument, "device certificate chain is not usable");
    }
  }
  // Pinned trust only: a store with the configured certificates, no default paths.
  X509_STORE* store = SSL_CTX_get_cert_store(c);
  for (const Certificate& t : o.trust) {
    if (X509_STORE_add_cert(store, t.native()) != 1) {
      return OsslError("X509_STORE_add_cert");
    }
  }
  // The pin may be the customer intermediate or the server certificate itself.
  X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

Result<HttpReply> ParseReply(const std::string& raw) {
  size_t eol = raw.find("\r\n");
  size_t end = raw.find("\r\n\r\n");
  if (eol == std::string::npos || end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) {
    return Error(Code::kUnavailable, "server sent a malformed HTTP response");
  }
  HttpReply reply;
  size_t sp = raw.find(' ');
  reply.status = std::atoi(raw.c_str() + sp + 1);
  reply.body = raw.substr(end + 4);
  return reply;
}

}  // namespace

Result<Certificate> SelfSignedCertificate(const PrivateKey& key, const Clock& clock) {
  CertificateTemplate t;
  t.serial = Bytes{0x01};
  std::string id = key.Public().DeviceId();
  t.subject.common_name = "hallmark device " + id.substr(0, 16);
  t.not_before = clock.Now() - 300;
  t.not_after = clock.Now() + 86400;
  t.key_usage = kDigitalSignature;
  t.extended_key_usage = {ExtendedKeyUsage::kClientAuth};
  return SignCertificate(t, key.Public(), nullptr, key);
}

Result<RawReply> Exchange(const PrivateKey& key, std::span<const Certificate> chain,
                          const ClientOptions& o,
                          const std::function<Result<ClientRequest>(SSL*)>& prepare) {
  if (chain.empty()) {
    return Error(Code::kInvalidArgument, "no device certificate");
  }
  if (o.trust.empty()) {
    return Error(Code::kInvalidArgument, "no pinned server trust (--trust)");
  }
  auto ctx = ClientContext(key, chain, o);
  if (!ctx) {
    return ctx.error();
  }
  auto fd = Connect(o);
  if (!fd) {
    return fd.error();
  }
  Socket sock(*fd);
  OsslPtr<SSL> ssl(SSL_new(ctx->get()));
  if (!ssl || SSL_set_fd(ssl.get(), sock.fd()) != 1) {
    return OsslError("SSL_new");
  }
  const std::string name = o.server_name.empty() ? o.host : o.server_name;
  unsigned char ip[16];
  bool is_ip =
      inet_pton(AF_INET, name.c_str(), ip) == 1 || inet_pton(AF_INET6, name.c_str(), ip) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) {
      return OsslError(Code::kInvalidArgument, "cannot check the server address " + name);
    }
  } else {
    // SSL_set_tlsext_host_name is a macro with a C cast.
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));
    if (SSL_set1_host(ssl.get(), name.c_str()) != 1) {
      return OsslError(Code::kInvalidArgument, "cannot check the server name " + name);
    }
  }
  if (SSL_connect(ssl.get()) != 1) {
    long verify = SSL_get_verify_result(ssl.get());
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return Error(Code::kUnauthenticated, std::string("server certificate rejected: ") +
                                               X509_verify_cert_error_string(verify));
    }
    return OsslError(Code::kUnauthenticated, "TLS handshake failed (the server refused us?)");
  }
  auto prepared = prepare(ssl.get());
  if (!prepared) {
    return prepared.error();
  }
  std::string request = prepared->method + " " + prepared->target + " HTTP/1.1\r\nHost: " +
                        name + "\r\nConnection: close\r\nUser-Agent: hallmark-device\r\n";
  if (!prepared->content_type.empty()) {
    request += "Content-Type: " + prepared->content_type + "\r\n";
  }
  if (prepared->method != "GET") {
    request += "Content-Length: " + std::to_string(prepared->body.size()) + "\r\n";
  }
  request += "\r\n" + prepared->body;
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0) {
    // TLS 1.3: the server checks our certificate after our Finished; a refusal shows here.
    return OsslError(Code::kUnauthenticated, "the server closed the connection (refused us?)");
  }
  std::string raw;
  char buf[4096];
  for (;;) {
    int n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > (1 << 20)) {
        return Error(Code::kUnavailable, "server response is larger than 1 MiB");
      }
      continue;
    }
    int err = SSL_get_error(ssl.get(), n);
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && !raw.empty())) {
      break;
    }
    if (raw.empty()) {
      return OsslError(Code::kUnauthenticated, "the server closed the connection (refused us?)");
    }
    break;
  }
  ERR_clear_error();
  RawReply reply{std::move(raw), ""};
  if (X509* peer = SSL_get0_peer_certificate(ssl.get()); peer != nullptr) {
    if (auto server_cert = Certificate::FromNative(peer); server_cert) {
      reply.server_subject = server_cert->Subject();
    }
  }
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  return reply;
}

Result<HttpReply> Get(const PrivateKey& key, std::span<const Certificate> chain,
                      const ClientOptions& o, const std::string& target) {
  auto raw = Exchange(key, chain, o, [&target](SSL*) -> Result<ClientRequest> {
    return ClientRequest{"GET", target, "", ""};
  });
  if (!raw) {
    return raw.error();
  }
  auto reply = ParseReply(raw->raw);
  if (!reply) {
    return reply.error();
  }
  reply->server_subject = std::move(raw->server_subject);
  return reply;
}

}  // namespace hallmark::device
