// ServerConfig: what `hallmark serve --config hallmark.toml` reads.
//
//   [server]
//   certificate = "server-chain.pem"   # leaf first, then the customer intermediate
//   private_key = "server.key"
//   threads = 2                        # worker threads (default: cores)
//   reuse_port = false                 # true: several processes may serve the same port
//
//   [limits]
//   handshake_timeout_ms = 5000
//   idle_timeout_s = 300
//   max_connections = 10000
//   max_header_bytes = 8192
//
//   [tls]
//   library = "gnutls"                 # or "openssl" (ADR 0008)
//   resumption = true                  # one ticket per handshake (see server/tls.h)
//   session_cache_size = 20000
//   session_lifetime_s = 3600
//
//   [registry]                         # needed by the registry policy
//   db = "registry.db"
//   registrar_public_key = "registrar.pub"
//   refresh_interval_ms = 250
//   head_file = "server-head.json"     # newest verified tree head, kept across restarts
//   cache_size = 100000                # verified records cached (LRU)
//   negative_cache_size = 10000        # "not registered" answers cached (LRU)
//
//   [admin]
//   listen = "127.0.0.1:9100"          # /metrics and /healthz, loopback only
//
//   [[listener]]
//   listen = "127.0.0.1:8443"
//   policy = "ca"                      # or "registry"
//   anchors = ["acme-ca.pem"]          # ca: the customer's intermediate(s)
//   crls = ["acme.crl"]                # ca: optional
//   admit_unknown = false              # true: unknown devices may reach claim endpoints only
//
//   [enroll]                           # enrollment endpoints: read by `hallmark serve`
//                                      # (cli/enroll_config.h), see docs/enrollment.md; then one per anchor
//   crl_reload_s = 10                  # ca: how often CRL files are checked for changes
#ifndef HALLMARK_SERVER_CONFIG_H_
#define HALLMARK_SERVER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/tls_library.h"

namespace hallmark::server {

struct Endpoint {
  std::string host;
  uint16_t port = 0;  // 0: pick a free port (reported when the server is ready)
};

// ParseEndpoint accepts "HOST:PORT" and "[V6]:PORT".
Result<Endpoint> ParseEndpoint(std::string_view text);

struct ListenerConfig {
  Endpoint listen;
  std::string policy;  // "ca" or "registry"
  std::vector<std::string> anchors;
  std::vector<std::string> crls;
  std::chrono::seconds crl_reload{10};  // how often `crls` files are checked for changes
  // admit_unknown: devices the policy does not (yet) accept may still connect, with their own
  // key, to the endpoints open to them (claims, pending approval); nothing else.
  bool admit_unknown = false;
};

struct ServerConfig {
  std::string certificate;
  std::string private_key;
  std::string passphrase_file;
  int threads = 0;
  // reuse_port: bind the device listeners with SO_REUSEPORT, so that several `hallmark serve`
  // processes (one per core) share a port and the kernel spreads connections over them.
  bool reuse_port = false;

  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::seconds idle_timeout{300};
  size_t max_connections = 10000;
  uint32_t max_header_bytes = 8192;

  // tls_library: which TLS library serves the device listeners (server/tls.h, ADR 0008).
  TlsLibrary tls_library = TlsLibrary::kGnuTls;
  // TLS 1.3 resumption through a server-side session cache (one ticket per full handshake,
  // naming a cache entry); resumed devices are authorized again by the listener's policy.
  bool session_resumption = true;
  size_t session_cache_size = 20000;
  std::chrono::seconds session_lifetime{3600};

  std::string registry_db;
  std::string registrar_public_key;
  std::chrono::milliseconds registry_refresh{250};
  // registry_head_file: where the server keeps the newest tree head it verified, so that a
  // database rolled back to an older copy is refused at the next start (optional).
  std::string registry_head_file;
  // Bounds of the registry cache (RecordCache): records, and "not registered" answers.
  size_t registry_cache_size = 100000;
  size_t registry_negative_cache_size = 10000;

  std::optional<Endpoint> admin;
  std::vector<ListenerConfig> listeners;
};

// LoadConfig reads and checks a TOML file. Relative paths are resolved against the file's
// directory. kInvalidArgument names the key and the problem; kNotFound if the file is missing.
Result<ServerConfig> LoadConfig(const std::string& path);

// ParseConfig parses TOML text; `base_dir` resolves relative paths.
Result<ServerConfig> ParseConfig(std::string_view toml, const std::string& base_dir);

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_CONFIG_H_
