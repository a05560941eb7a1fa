// The device's mutual-TLS client: says hello to the owner's server, trusting only what was
// pinned in its firmware.
#ifndef HALLMARK_DEVICE_TLS_CLIENT_H_
#define HALLMARK_DEVICE_TLS_CLIENT_H_

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/certificate.h"
#include "core/clock.h"
#include "core/key.h"
#include "core/status.h"

namespace hallmark::device {

struct ClientOptions {
  std::string host;  // address or name to connect to
  uint16_t port = 0;
  // server_name: the name (DNS or IP) the server certificate must carry; defaults to `host`.
  std::string server_name;
  // trust: the pinned server CA(s) or the server certificate itself. Nothing else is trusted,
  // never the system store.
  std::vector<Certificate> trust;
  std::chrono::milliseconds timeout{10000};
};

struct HttpReply {
  int status = 0;
  std::string body;
  std::string server_subject;
};

// SelfSignedCertificate returns a short-lived self-signed certificate over `key`, the container
// a device without a CA certificate presents under the registry policy.
Result<Certificate> SelfSignedCertificate(const PrivateKey& key, const Clock& clock);

// ClientRequest is one HTTP request a device sends (with `Connection: close`).
struct ClientRequest {
  std::string method = "GET";
  std::string target;
  std::string content_type;  // sent when not empty
  std::string body;          // sent with a Content-Length unless the method is GET
};

// RawReply is a server's whole response, read until it closed the connection.
struct RawReply {
  std::string raw;
  std::string server_subject;
};

// Exchange connects over TLS 1.3 like Get, lets `prepare` build the request on the established
// connection (a claim binds its proof to the connection's TLS exporter), sends it and reads the
// response until the server closes (at most 1 MiB). Errors as for Get.
Result<RawReply> Exchange(const PrivateKey& key, std::span<const Certificate> chain,
                          const ClientOptions& options,
                          const std::function<Result<ClientRequest>(SSL*)>& prepare);

// Get connects over TLS 1.3, authenticates with `key` and `chain` (leaf first), checks the
// server against `options.trust` and the server name, and sends `GET target`.
// kUnauthenticated if either side rejects the other (the server's reason is not disclosed to
// devices); kUnavailable if the server cannot be reached or times out.
Result<HttpReply> Get(const PrivateKey& key, std::span<const Certificate> chain,
                      const ClientOptions& options, const std::string& target);

}  // namespace hallmark::device

#endif  // HALLMARK_DEVICE_TLS_CLIENT_H_
