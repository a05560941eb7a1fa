#include "device/enroll_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/pkcs7.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/ossl.h"
#include "core/random.h"

namespace hallmark::device {
namespace {

constexpr std::string_view kBatchKeySalt = "hallmark-batch-key/1";
constexpr size_t kMaxReply = 1 << 20;

struct Pkcs7Free {
  void operator()(PKCS7* p) const { PKCS7_free(p); }
};
struct KdfFree {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

// Base64url (RFC 4648 section 5) without padding, through the standard Base64 codec.
std::string ToBase64Url(std::span<const uint8_t> bytes) {
  std::string s = Base64Encode(bytes);
  while (!s.empty() && s.back() == '=') {
    s.pop_back();
  }
  std::replace(s.begin(), s.end(), '+', '-');
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

Result<Bytes> FromBase64Url(std::string_view text) {
  std::string s(text);
  if (s.find_first_of("+/=") != std::string::npos) {
    return Error(Code::kInvalidArgument, "not base64url");
  }
  std::replace(s.begin(), s.end(), '-', '+');
  std::replace(s.begin(), s.end(), '_', '/');
  s.append((4 - s.size() % 4) % 4, '=');
  auto bytes = Base64Decode(s);
  Wipe(s);
  return bytes;
}

// --- TLS exchange -------------------------------------------------------------------------------

struct Request {
  std::string method;
  std::string target;
  std::string content_type;
  std::string body;
};

std::string HostPort(const ClientOptions& o) {
  bool v6 = o.host.find(':') != std::string::npos;
  return (v6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
}

Result<OsslPtr<SSL_CTX>> NewContext(const PrivateKey& key, std::span<const Certificate> chain,
                                    const ClientOptions& o) {
  OsslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    return OsslError("SSL_CTX_new");
  }
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_use_certificate(ctx.get(), chain.front().native()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.native()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return OsslError(Code::kInvalidArgument, "the device certificate and key do not match");
  }
  for (const Certificate& extra : chain.subspan(1)) {
    if (SSL_CTX_add1_chain_cert(ctx.get(), extra.native()) != 1) {
      return OsslError(Code::kInvalidArgument, "the device certificate chain is not usable");
    }
  }
  X509_STORE* pinned = SSL_CTX_get_cert_store(ctx.get());
  for (const Certificate& anchor : o.trust) {
    if (X509_STORE_add_cert(pinned, anchor.native()) != 1) {
      return OsslError("X509_STORE_add_cert");
    }
  }
  X509_STORE_set_flags(pinned, X509_V_FLAG_PARTIAL_CHAIN);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

// ParseHttp splits a complete HTTP/1.1 response (read until the server closed) and undoes a
// chunked transfer encoding.
Result<ServerReply> ParseHttp(std::string_view raw) {
  size_t head_end = raw.find("\r\n\r\n");
  if (raw.substr(0, 5) != "HTTP/" || head_end == std::string_view::npos) {
    return Error(Code::kUnavailable, "the server sent a malformed HTTP response");
  }
  ServerReply reply;
  std::string_view head = raw.substr(0, head_end);
  size_t space = head.find(' ');
  if (space == std::string_view::npos || space + 4 > head.size()) {
    return Error(Code::kUnavailable, "the server sent a malformed HTTP status line");
  }
  reply.status = std::atoi(std::string(head.substr(space + 1, 3)).c_str());
  bool chunked = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos) {
    size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(
        pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string name(line.substr(0, colon));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string_view value = line.substr(colon + 1);
      value.remove_prefix(std::min(value.find_first_not_of(' '), value.size()));
      if (name == "content-type") {
        reply.content_type = std::string(value);
      } else if (name == "transfer-encoding" && value.find("chunked") != std::string_view::npos) {
        chunked = true;
      }
    }
    pos = next;
  }
  std::string_view body = raw.substr(head_end + 4);
  if (!chunked) {
    reply.body = std::string(body);
    return reply;
  }
  while (!body.empty()) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) {
      return Error(Code::kUnavailable, "the server sent a truncated chunked body");
    }
    size_t size = std::strtoul(std::string(body.substr(0, eol)).c_str(), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (size == 0) {
      break;
    }
    if (body.size() < size + 2) {
      return Error(Code::kUnavailable, "the server sent a truncated chunk");
    }
    reply.body.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
  return reply;
}

// Exchange connects over TLS 1.3 with `key` and `chain`, checks the server against the pinned
// trust and name, lets `prepare` build the request on the established connection (a claim needs
// the connection's exporter), sends it and reads the reply until the server closes.
Result<ServerReply> Exchange(const PrivateKey& key, std::span<const Certificate> chain,
                             const ClientOptions& o,
                             const std::function<Result<Request>(SSL*)>& prepare) {
  if (chain.empty()) {
    return Error(Code::kInvalidArgument, "no device certificate");
  }
  if (o.trust.empty()) {
    return Error(Code::kInvalidArgument, "no pinned server trust (--trust)");
  }
  auto ctx = NewContext(key, chain, o);
  if (!ctx) {
    return ctx.error();
  }
  const std::string where = HostPort(o);
  OsslPtr<BIO> conn(BIO_new_connect(where.c_str()));
  if (!conn) {
    return OsslError("BIO_new_connect");
  }
  BIO_set_nbio(conn.get(), 1);
  int seconds = static_cast<int>(std::max<int64_t>(1, o.timeout.count() / 1000));
  if (BIO_do_connect_retry(conn.get(), seconds, 50) != 1) {
    return OsslError(Code::kUnavailable, "cannot connect to " + where);
  }
  int fd = -1;
  BIO_get_fd(conn.get(), &fd);
  if (fd < 0 || BIO_socket_nbio(fd, 0) != 1) {
    return OsslError(Code::kUnavailable, "cannot use the connection to " + where);
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(o.timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((o.timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  OsslPtr<SSL> ssl(SSL_new(ctx->get()));
  if (!ssl) {
    return OsslError("SSL_new");
  }
  BIO* bio = conn.release();
  SSL_set_bio(ssl.get(), bio, bio);  // SSL_set_bio takes ownership.
  const std::string name = o.server_name.empty() ? o.host : o.server_name;
  unsigned char addr[16];
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (inet_pton(AF_INET, name.c_str(), addr) == 1 || inet_pton(AF_INET6, name.c_str(), addr) == 1) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) {
      return OsslError(Code::kInvalidArgument, "cannot check the server address " + name);
    }
  } else if (SSL_set1_host(ssl.get(), name.c_str()) != 1 ||
             SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                      const_cast<char*>(name.c_str())) != 1) {
    return OsslError(Code::kInvalidArgument, "cannot check the server name " + name);
  }
  if (SSL_connect(ssl.get()) != 1) {
    long verify = SSL_get_verify_result(ssl.get());
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return Error(Code::kUnauthenticated, std::string("server certificate rejected: ") +
                                               X509_verify_cert_error_string(verify));
    }
    return OsslError(Code::kUnauthenticated, "TLS handshake with " + where + " failed");
  }
  auto request = prepare(ssl.get());
  if (!request) {
    return request.error();
  }
  std::string wire = request->method + " " + request->target + " HTTP/1.1\r\nHost: " + name +
                     "\r\nUser-Agent: hallmark-device\r\nConnection: close\r\n";
  if (!request->content_type.empty()) {
    wire += "Content-Type: " + request->content_type + "\r\n";
  }
  if (request->method != "GET") {
    wire += "Content-Length: " + std::to_string(request->body.size()) + "\r\n";
  }
  wire += "\r\n" + request->body;
  if (SSL_write(ssl.get(), wire.data(), static_cast<int>(wire.size())) <= 0) {
    // TLS 1.3: the server checks our certificate after our Finished; a refusal shows here.
    return OsslError(Code::kUnauthenticated, "the server closed the connection (refused us?)");
  }
  std::string raw;
  char buf[8192];
  for (;;) {
    int n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > kMaxReply) {
        return Error(Code::kUnavailable, "the server's reply is larger than 1 MiB");
      }
      continue;
    }
    int err = SSL_get_error(ssl.get(), n);
    ERR_clear_error();
    if (raw.empty() && err != SSL_ERROR_ZERO_RETURN) {
      return Error(Code::kUnauthenticated, "the server closed the connection (refused us?)");
    }
    break;
  }
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  return ParseHttp(raw);
}

// Exporter returns this connection's claim exporter.
Result<Bytes> Exporter(SSL* ssl) {
  Bytes out(kClaimExporterLength);
  const auto* context = reinterpret_cast<const unsigned char*>(kClaimExporterContext.data());
  if (SSL_export_keying_material(ssl, out.data(), out.size(), kClaimExporterLabel.data(),
                                 kClaimExporterLabel.size(), context, kClaimExporterContext.size(),
                                 1) != 1) {
    return OsslError("SSL_export_keying_material");
  }
  return out;
}

Result<std::vector<Certificate>> SelfSigned(const PrivateKey& key, const Clock& clock) {
  auto cert = SelfSignedCertificate(key, clock);
  if (!cert) {
    return cert.error();
  }
  return std::vector<Certificate>{*cert};
}

// ServerRefusal turns a 4xx/5xx reply into an error carrying the server's reason.
Error ServerRefusal(const ServerReply& reply, std::string_view what) {
  auto j = nlohmann::json::parse(reply.body, nullptr, false);
  std::string reason = j.is_object() && j.contains("error") && j["error"].is_string()
                           ? j["error"].get<std::string>()
                           : reply.body.substr(0, 200);
  Code code =
      reply.status >= 400 && reply.status < 500 ? Code::kPermissionDenied : Code::kUnavailable;
  return Error(
      code, std::string(what) + " refused (HTTP " + std::to_string(reply.status) + "): " + reason);
}

}  // namespace

SecretBytes GenerateBatchSecret() { return SecretBytes(RandomBytes(kBatchSecretLength)); }

SecretBytes FormatBatchSecret(const SecretBytes& secret) {
  std::string text = ToBase64Url(secret.bytes(SecretAccess::Grant()));
  SecretBytes out{std::string_view(text)};
  Wipe(text);
  return out;
}

Result<SecretBytes> ParseBatchSecret(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  size_t end = text.find_last_not_of(" \t\r\n");
  std::string_view trimmed =
      begin == std::string_view::npos ? std::string_view() : text.substr(begin, end - begin + 1);
  auto bytes = FromBase64Url(trimmed);
  if (!bytes || bytes->size() != kBatchSecretLength) {
    if (bytes) {
      std::fill(bytes->begin(), bytes->end(), 0);
    }
    return Error(Code::kInvalidArgument,
                 "not a batch secret: expected 43 characters of base64url (32 bytes)");
  }
  SecretBytes secret(*bytes);
  std::fill(bytes->begin(), bytes->end(), 0);
  return secret;
}

Result<PrivateKey> DeriveBatchKey(const SecretBytes& secret, std::string_view batch_id) {
  if (secret.size() != kBatchSecretLength) {
    return Error(Code::kInvalidArgument,
                 "a batch secret is 32 bytes, not " + std::to_string(secret.size()));
  }
  std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) {
    return OsslError("EVP_KDF_fetch(HKDF)");
  }
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) {
    return OsslError("EVP_KDF_CTX_new");
  }
  std::span<const uint8_t> ikm = secret.bytes(SecretAccess::Grant());
  std::string digest = "SHA256";
  std::string salt(kBatchKeySalt);
  std::string info(batch_id);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", digest.data(), 0),
      OSSL_PARAM_construct_octet_string("key", const_cast<uint8_t*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string("salt", salt.data(), salt.size()),
      OSSL_PARAM_construct_octet_string("info", info.data(), info.size()),
      OSSL_PARAM_construct_end(),
  };
  uint8_t seed[32];
  if (EVP_KDF_derive(ctx.get(), seed, sizeof(seed), params) != 1) {
    return OsslError("HKDF");
  }
  OsslPtr<EVP_PKEY> pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof(seed)));
  OPENSSL_cleanse(seed, sizeof(seed));
  if (!pkey) {
    return OsslError("EVP_PKEY_new_raw_private_key");
  }
  return PrivateKey::FromNative(std::move(pkey));
}

Bytes ClaimProofMessage(std::string_view batch_id, std::string_view serial,
                        std::string_view device_id, std::span<const uint8_t> exporter) {
  std::string text = "hallmark-batch-claim/1\nbatch_id=" + std::string(batch_id) +
                     "\nserial=" + std::string(serial) + "\ndevice_id=" + std::string(device_id) +
                     "\nexporter=" + HexEncode(exporter) + "\n";
  return Bytes(text.begin(), text.end());
}

std::string ComparisonCode(const PublicKey& key) {
  static constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  Bytes id = Sha256(key.SpkiDer());
  uint64_t bits = 0;
  for (int i = 0; i < 5; ++i) {
    bits = (bits << 8) | id[static_cast<size_t>(i)];
  }
  std::string code;
  for (int i = 7; i >= 0; --i) {
    code += kCrockford[(bits >> (5 * i)) & 31];
    if (i == 4) {
      code += '-';
    }
  }
  return code;
}

Result<std::vector<Certificate>> ParseCertsOnly(std::string_view body) {
  auto der = Base64Decode(body);
  if (!der || der->empty()) {
    return Error(Code::kInvalidArgument, "EST response is not base64");
  }
  const unsigned char* p = der->data();
  std::unique_ptr<PKCS7, Pkcs7Free> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(der->size())));
  if (!p7 || p != der->data() + der->size() || !PKCS7_type_is_signed(p7.get()) ||
      p7->d.sign == nullptr) {
    ERR_clear_error();
    return Error(Code::kInvalidArgument, "EST response is not a DER PKCS#7 certs-only message");
  }
  std::vector<Certificate> out;
  STACK_OF(X509)* certs = p7->d.sign->cert;
  for (int i = 0; certs != nullptr && i < sk_X509_num(certs); ++i) {
    auto cert = Certificate::FromNative(sk_X509_value(certs, i));
    if (!cert) {
      return cert.error();
    }
    out.push_back(std::move(*cert));
  }
  if (out.empty()) {
    return Error(Code::kInvalidArgument, "EST response holds no certificate");
  }
  return out;
}

int64_t RenewalTime(const Certificate& cert) {
  int64_t start = cert.NotBefore();
  return start + (cert.NotAfter() - start) / 3 * 2;
}

Result<ServerReply> Claim(const PrivateKey& key, const ClientOptions& options,
                          const BatchClaim& claim, const Clock& clock) {
  if (claim.secret == nullptr) {
    return Error(Code::kInvalidArgument, "no batch secret");
  }
  auto proof_key = DeriveBatchKey(*claim.secret, claim.batch_id);
  if (!proof_key) {
    return proof_key.error();
  }
  auto chain = SelfSigned(key, clock);
  if (!chain) {
    return chain.error();
  }
  const std::string device_id = key.Public().DeviceId();
  return Exchange(key, *chain, options, [&](SSL* ssl) -> Result<Request> {
    auto exporter = Exporter(ssl);
    if (!exporter) {
      return exporter.error();
    }
    auto proof =
        proof_key->Sign(ClaimProofMessage(claim.batch_id, claim.serial, device_id, *exporter));
    if (!proof) {
      return proof.error();
    }
    nlohmann::json body = {
        {"batch_id", claim.batch_id}, {"serial", claim.serial}, {"proof", Base64Encode(*proof)}};
    return Request{"POST", std::string(kClaimPath), "application/json", body.dump()};
  });
}

Result<ServerReply> RequestApproval(const PrivateKey& key, const ClientOptions& options,
                                    std::string_view serial, const Clock& clock) {
  auto chain = SelfSigned(key, clock);
  if (!chain) {
    return chain.error();
  }
  nlohmann::json body = nlohmann::json::object();
  if (!serial.empty()) {
    body["serial"] = std::string(serial);
  }
  return Exchange(key, *chain, options, [&body](SSL*) -> Result<Request> {
    return Request{"POST", std::string(kPendingPath), "application/json", body.dump()};
  });
}

Result<std::vector<Certificate>> FetchCaCerts(const PrivateKey& key,
                                              std::span<const Certificate> chain,
                                              const ClientOptions& options) {
  auto reply = Exchange(key, chain, options, [](SSL*) -> Result<Request> {
    return Request{"GET", std::string(kEstCaCertsPath), "", ""};
  });
  if (!reply) {
    return reply.error();
  }
  if (reply->status != 200) {
    return ServerRefusal(*reply, "EST cacerts");
  }
  auto certs = ParseCertsOnly(reply->body);
  if (!certs) {
    return Error(Code::kUnavailable, certs.error().message());
  }
  return certs;
}

Result<Certificate> EstEnroll(const PrivateKey& key, std::span<const Certificate> chain,
                              const ClientOptions& options, const Csr& csr, bool reenroll) {
  std::string_view path = reenroll ? kEstSimpleReenrollPath : kEstSimpleEnrollPath;
  std::string body = Base64Encode(csr.ToDer());
  auto reply = Exchange(key, chain, options, [&](SSL*) -> Result<Request> {
    return Request{"POST", std::string(path), "application/pkcs10", body};
  });
  if (!reply) {
    return reply.error();
  }
  if (reply->status != 200) {
    return ServerRefusal(*reply, reenroll ? "EST simplereenroll" : "EST simpleenroll");
  }
  auto certs = ParseCertsOnly(reply->body);
  if (!certs) {
    return Error(Code::kUnavailable, certs.error().message());
  }
  const PublicKey& mine = csr.Key();
  for (const Certificate& c : *certs) {
    if (c.Key() == mine) {
      return c;
    }
  }
  return Error(Code::kUnavailable, "the EST response holds no certificate for our key");
}

}  // namespace hallmark::device
