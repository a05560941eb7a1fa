#include "device/enroll_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/kdf.h"
#include "core/ossl.h"
#include "core/pkcs7.h"
#include "core/random.h"

namespace hallmark::device {
namespace {

constexpr std::string_view kBatchKeySalt = "hallmark-batch-key/1";

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

// Send sends the request `prepare` builds on the pinned mutual-TLS connection (see
// device::Exchange) and parses the reply.
Result<ServerReply> Send(const PrivateKey& key, std::span<const Certificate> chain,
                         const ClientOptions& o,
                         const std::function<Result<ClientRequest>(SSL*)>& prepare) {
  auto raw = device::Exchange(key, chain, o, prepare);
  if (!raw) {
    return raw.error();
  }
  return ParseHttp(raw->raw);
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
  auto seed = HkdfSha256(secret.bytes(SecretAccess::Grant()), AsBytes(kBatchKeySalt),
                         AsBytes(batch_id), 32);
  if (!seed) {
    return seed.error();
  }
  std::span<const uint8_t> raw = seed->bytes(SecretAccess::Grant());
  OsslPtr<EVP_PKEY> pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
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
  auto certs = DecodeCertsOnly(body);
  return certs ? certs
               : Result<std::vector<Certificate>>(certs.error().WithContext("EST response"));
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
  return Send(key, *chain, options, [&](SSL* ssl) -> Result<ClientRequest> {
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
    return ClientRequest{"POST", std::string(kClaimPath), "application/json", body.dump()};
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
  return Send(key, *chain, options, [&body](SSL*) -> Result<ClientRequest> {
    return ClientRequest{"POST", std::string(kPendingPath), "application/json", body.dump()};
  });
}

Result<std::vector<Certificate>> FetchCaCerts(const PrivateKey& key,
                                              std::span<const Certificate> chain,
                                              const ClientOptions& options) {
  auto reply = Send(key, chain, options, [](SSL*) -> Result<ClientRequest> {
    return ClientRequest{"GET", std::string(kEstCaCertsPath), "", ""};
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
  auto reply = Send(key, chain, options, [&](SSL*) -> Result<ClientRequest> {
    return ClientRequest{"POST", std::string(path), "application/pkcs10", body};
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
