#include "server/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <charconv>
#include <filesystem>

#include "core/file.h"

namespace hallmark::server {
namespace {

std::string Resolve(const std::string& base, const std::string& path) {
  if (path.empty() || path.front() == '/') {
    return path;
  }
  return (std::filesystem::path(base) / path).string();
}

Error Bad(std::string_view key, std::string_view problem) {
  return Error(Code::kInvalidArgument, "config: " + std::string(key) + ": " + std::string(problem));
}

template <typename T>
Result<T> Integer(const toml::table& table, std::string_view section, std::string_view key,
                  T fallback, int64_t min, int64_t max) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return fallback;
  }
  std::string full = std::string(section) + "." + std::string(key);
  auto v = node->value<int64_t>();
  if (!v.has_value() || !node->is_integer()) {
    return Bad(full, "must be an integer");
  }
  if (*v < min || *v > max) {
    return Bad(full, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                         ", got " + std::to_string(*v));
  }
  return static_cast<T>(*v);
}

Result<bool> Boolean(const toml::table& table, std::string_view section, std::string_view key,
                     bool fallback) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return fallback;
  }
  if (!node->is_boolean()) {
    return Bad(std::string(section) + "." + std::string(key), "must be true or false");
  }
  return *node->value<bool>();
}

Result<std::string> String(const toml::table& table, std::string_view section, std::string_view key,
                           bool required) {
  const toml::node* node = table.get(key);
  std::string full = std::string(section) + "." + std::string(key);
  if (node == nullptr) {
    if (required) {
      return Bad(full, "is required");
    }
    return std::string();
  }
  auto v = node->value<std::string>();
  if (!v.has_value() || !node->is_string()) {
    return Bad(full, "must be a string");
  }
  return *v;
}

Result<std::vector<std::string>> Strings(const toml::table& table, std::string_view section,
                                         std::string_view key, const std::string& base) {
  std::vector<std::string> out;
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return out;
  }
  std::string full = std::string(section) + "." + std::string(key);
  const toml::array* arr = node->as_array();
  if (arr == nullptr) {
    return Bad(full, "must be an array of strings");
  }
  for (const toml::node& item : *arr) {
    auto v = item.value<std::string>();
    if (!v.has_value() || !item.is_string()) {
      return Bad(full, "must be an array of strings");
    }
    out.push_back(Resolve(base, *v));
  }
  return out;
}

Status CheckKeys(const toml::table& table, std::string_view section,
                 std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : table) {
    bool ok = false;
    for (std::string_view name : known) {
      ok = ok || k.str() == name;
    }
    if (!ok) {
      return Bad(std::string(section) + "." + std::string(k.str()), "unknown key");
    }
  }
  return OkStatus();
}

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Error(Code::kInvalidArgument, "'" + std::string(text) + "' is not HOST:PORT");
  }
  Endpoint e;
  e.host = std::string(text.substr(0, colon));
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
    e.host = e.host.substr(1, e.host.size() - 2);
  }
  std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return Error(Code::kInvalidArgument, "'" + std::string(text) + "' has an invalid port");
  }
  e.port = static_cast<uint16_t>(value);
  unsigned char buf[16];
  if (inet_pton(AF_INET, e.host.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, e.host.c_str(), buf) != 1 && e.host != "localhost") {
    return Error(Code::kInvalidArgument,
                 "'" + e.host + "' is not an IP address (hallmark binds to addresses, not names)");
  }
  if (e.host == "localhost") {
    e.host = "127.0.0.1";
  }
  return e;
}

Result<ServerConfig> ParseConfig(std::string_view text, const std::string& base) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Error(Code::kInvalidArgument, "config: line " + std::to_string(where.line) +
                                             ", column " + std::to_string(where.column) + ": " +
                                             std::string(e.description()));
  }
  if (auto s = CheckKeys(root, "", {"server", "limits", "tls", "registry", "admin", "listener", "enroll"}); !s) {
    return s.error();
  }
  ServerConfig c;
  const toml::table empty;
  const toml::table* server = root["server"].as_table();
  if (server == nullptr) {
    return Bad("server", "section is required");
  }
  if (auto s = CheckKeys(*server, "server",
                         {"certificate", "private_key", "passphrase_file", "threads",
                          "reuse_port"});
      !s) {
    return s.error();
  }
  auto cert = String(*server, "server", "certificate", true);
  auto key = String(*server, "server", "private_key", true);
  auto pass = String(*server, "server", "passphrase_file", false);
  auto threads = Integer<int>(*server, "server", "threads", 0, 0, 256);
  if (!cert || !key || !pass || !threads) {
    return !cert ? cert.error() : !key ? key.error() : !pass ? pass.error() : threads.error();
  }
  c.certificate = Resolve(base, *cert);
  c.private_key = Resolve(base, *key);
  c.passphrase_file = Resolve(base, *pass);
  c.threads = *threads;
  auto reuse_port = Boolean(*server, "server", "reuse_port", false);
  if (!reuse_port) {
    return reuse_port.error();
  }
  c.reuse_port = *reuse_port;

  const toml::table* limits = root["limits"].as_table();
  limits = limits != nullptr ? limits : &empty;
  if (auto s = CheckKeys(
          *limits, "limits",
          {"handshake_timeout_ms", "idle_timeout_s", "max_connections", "max_header_bytes"});
      !s) {
    return s.error();
  }
  auto hs = Integer<int64_t>(*limits, "limits", "handshake_timeout_ms", 5000, 10, 600000);
  auto idle = Integer<int64_t>(*limits, "limits", "idle_timeout_s", 300, 1, 7 * 86400);
  auto maxc = Integer<size_t>(*limits, "limits", "max_connections", 10000, 1, 10000000);
  auto maxh = Integer<uint32_t>(*limits, "limits", "max_header_bytes", 8192, 512, 1 << 20);
  if (!hs || !idle || !maxc || !maxh) {
    return !hs ? hs.error() : !idle ? idle.error() : !maxc ? maxc.error() : maxh.error();
  }
  c.handshake_timeout = std::chrono::milliseconds(*hs);
  c.idle_timeout = std::chrono::seconds(*idle);
  c.max_connections = *maxc;
  c.max_header_bytes = *maxh;

  const toml::table* tls = root["tls"].as_table();
  tls = tls != nullptr ? tls : &empty;
  if (auto s = CheckKeys(*tls, "tls",
                         {"library", "resumption", "session_cache_size", "session_lifetime_s"});
      !s) {
    return s.error();
  }
  if (const toml::node* library = tls->get("library"); library != nullptr) {
    auto name = library->is_string() ? library->value<std::string>() : std::nullopt;
    auto parsed = name ? ParseTlsLibrary(*name) : Error(Code::kInvalidArgument, "not a string");
    if (!parsed) {
      return Bad("tls.library", "must be \"openssl\" or \"gnutls\"" +
                                    (name ? ", got \"" + *name + "\"" : std::string()));
    }
    c.tls_library = *parsed;
  }
  auto resumption = Boolean(*tls, "tls", "resumption", true);
  auto cache_size = Integer<size_t>(*tls, "tls", "session_cache_size", 20000, 1, 10000000);
  auto lifetime = Integer<int64_t>(*tls, "tls", "session_lifetime_s", 3600, 1, 7 * 86400);
  if (!resumption || !cache_size || !lifetime) {
    return !resumption ? resumption.error() : !cache_size ? cache_size.error() : lifetime.error();
  }
  c.session_resumption = *resumption;
  c.session_cache_size = *cache_size;
  c.session_lifetime = std::chrono::seconds(*lifetime);

  if (const toml::table* reg = root["registry"].as_table(); reg != nullptr) {
    if (auto s = CheckKeys(*reg, "registry",
                           {"db", "registrar_public_key", "refresh_interval_ms", "head_file",
                            "cache_size", "negative_cache_size"});
        !s) {
      return s.error();
    }
    auto db = String(*reg, "registry", "db", true);
    auto pub = String(*reg, "registry", "registrar_public_key", true);
    auto refresh = Integer<int64_t>(*reg, "registry", "refresh_interval_ms", 250, 10, 60000);
    auto head_file = String(*reg, "registry", "head_file", false);
    if (!db || !pub || !refresh || !head_file) {
      return !db ? db.error() : !pub ? pub.error() : !refresh ? refresh.error() : head_file.error();
    }
    c.registry_head_file = head_file->empty() ? "" : Resolve(base, *head_file);
    c.registry_db = Resolve(base, *db);
    c.registrar_public_key = Resolve(base, *pub);
    c.registry_refresh = std::chrono::milliseconds(*refresh);
    auto cache = Integer<size_t>(*reg, "registry", "cache_size", 100000, 0, 100000000);
    auto negative = Integer<size_t>(*reg, "registry", "negative_cache_size", 10000, 0, 100000000);
    if (!cache || !negative) {
      return !cache ? cache.error() : negative.error();
    }
    c.registry_cache_size = *cache;
    c.registry_negative_cache_size = *negative;
  }

  if (const toml::table* admin = root["admin"].as_table(); admin != nullptr) {
    if (auto s = CheckKeys(*admin, "admin", {"listen"}); !s) {
      return s.error();
    }
    auto listen = String(*admin, "admin", "listen", true);
    if (!listen) {
      return listen.error();
    }
    auto ep = ParseEndpoint(*listen);
    if (!ep) {
      return Bad("admin.listen", ep.error().message());
    }
    if (ep->host != "127.0.0.1" && ep->host != "::1") {
      return Bad("admin.listen", "the admin listener must be bound to loopback");
    }
    c.admin = *ep;
  }

  const toml::array* listeners = root["listener"].as_array();
  if (listeners == nullptr || listeners->empty()) {
    return Bad("listener", "at least one [[listener]] is required");
  }
  for (size_t i = 0; i < listeners->size(); ++i) {
    std::string section = "listener[" + std::to_string(i) + "]";
    const toml::table* l = (*listeners)[i].as_table();
    if (l == nullptr) {
      return Bad(section, "must be a table");
    }
    if (auto s = CheckKeys(*l, section, {"listen", "policy", "anchors", "crls", "crl_reload_s",
                                               "admit_unknown"});
        !s) {
      return s.error();
    }
    ListenerConfig lc;
    auto listen = String(*l, section, "listen", true);
    auto policy = String(*l, section, "policy", true);
    auto anchors = Strings(*l, section, "anchors", base);
    auto crls = Strings(*l, section, "crls", base);
    if (!listen || !policy || !anchors || !crls) {
      return !listen    ? listen.error()
             : !policy  ? policy.error()
             : !anchors ? anchors.error()
                        : crls.error();
    }
    auto ep = ParseEndpoint(*listen);
    if (!ep) {
      return Bad(section + ".listen", ep.error().message());
    }
    lc.listen = *ep;
    lc.policy = *policy;
    lc.anchors = *anchors;
    lc.crls = *crls;
    auto crl_reload = Integer<int64_t>(*l, section, "crl_reload_s", 10, 1, 86400);
    if (!crl_reload) {
      return crl_reload.error();
    }
    lc.crl_reload = std::chrono::seconds(*crl_reload);
    auto admit_unknown = Boolean(*l, section, "admit_unknown", false);
    if (!admit_unknown) {
      return admit_unknown.error();
    }
    lc.admit_unknown = *admit_unknown;
    if (lc.policy == "ca") {
      if (lc.anchors.empty()) {
        return Bad(section + ".anchors", "the ca policy needs the customer intermediate(s)");
      }
    } else if (lc.policy == "registry") {
      if (c.registry_db.empty()) {
        return Bad(section + ".policy", "the registry policy needs a [registry] section");
      }
      if (!lc.anchors.empty() || !lc.crls.empty() || l->contains("crl_reload_s")) {
        return Bad(section, "anchors, crls and crl_reload_s belong to the ca policy");
      }
    } else {
      return Bad(section + ".policy", "unknown policy '" + lc.policy + "' (ca or registry)");
    }
    c.listeners.push_back(std::move(lc));
  }
  return c;
}

Result<ServerConfig> LoadConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return text.error();
  }
  std::string base = std::filesystem::path(path).parent_path().string();
  return ParseConfig(*text, base.empty() ? "." : base);
}

}  // namespace hallmark::server
