// The [enroll] table of hallmark.toml, read by `hallmark serve` (docs/enrollment.md). The server
// part of the file is read by server/config.cc; this part belongs to the enrollment endpoints.
#include "cli/enroll_config.h"

#include <toml++/toml.h>

#include <filesystem>

#include "core/clock.h"

namespace hallmark::cli {
namespace {

Error Bad(std::string_view key, std::string_view problem) {
  return Error(Code::kInvalidArgument,
               "config: enroll." + std::string(key) + ": " + std::string(problem));
}

std::string Resolve(const std::string& base, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) {
    return path;
  }
  return (std::filesystem::path(base) / path).lexically_normal().string();
}

Status ReadString(const toml::table& t, std::string_view key, const std::string& base,
                  std::string& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return OkStatus();
  }
  if (!n->is_string()) {
    return Bad(key, "must be a string");
  }
  out = Resolve(base, *n->value<std::string>());
  return OkStatus();
}

Status ReadInteger(const toml::table& t, std::string_view key, int64_t min, int64_t max,
                   int64_t& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return OkStatus();
  }
  if (!n->is_integer()) {
    return Bad(key, "must be an integer");
  }
  int64_t v = *n->value<int64_t>();
  if (v < min || v > max) {
    return Bad(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                        ", got " + std::to_string(v));
  }
  out = v;
  return OkStatus();
}

Status ReadRate(const toml::table& t, std::string_view key, enroll::RateLimit& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    return OkStatus();
  }
  const toml::table* r = n->as_table();
  if (r == nullptr) {
    return Bad(key, "must be a table { per_second = ..., burst = ... }");
  }
  for (const auto& [k, v] : *r) {
    if (k.str() != "per_second" && k.str() != "burst") {
      return Bad(std::string(key) + "." + std::string(k.str()), "unknown key");
    }
    if (!v.is_number()) {
      return Bad(std::string(key) + "." + std::string(k.str()), "must be a number");
    }
    double d = *v.value<double>();
    if (d < 0 || d > 1e6) {
      return Bad(std::string(key) + "." + std::string(k.str()), "must be between 0 and 1000000");
    }
    (k.str() == "per_second" ? out.per_second : out.burst) = d;
  }
  return OkStatus();
}

}  // namespace

Result<std::optional<enroll::EnrollConfig>> LoadEnrollConfig(const std::string& path,
                                                             const server::ServerConfig& server) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return Error(Code::kInvalidArgument, "config: " + std::string(e.description()));
  }
  const toml::table* t = root["enroll"].as_table();
  if (t == nullptr) {
    return std::optional<enroll::EnrollConfig>();
  }
  const std::string base = std::filesystem::path(path).parent_path().string();
  static const std::vector<std::string_view> kKeys = {
      "registry_db", "registrar_public_key", "enrollment_key", "enrollment_key_passphrase_file",
      "approval", "max_pending", "ca_dir", "ca_name", "ca_passphrase_file",
      "operational_validity_s", "rate_per_source", "rate_per_batch", "rate_per_device",
      "max_claim_bytes", "max_csr_bytes"};
  for (const auto& [k, v] : *t) {
    if (std::find(kKeys.begin(), kKeys.end(), k.str()) == kKeys.end()) {
      return Bad(k.str(), "unknown key");
    }
  }
  enroll::EnrollConfig c;
  c.registry_db = server.registry_db;
  c.registrar_public_key = server.registrar_public_key;
  int64_t max_pending = static_cast<int64_t>(c.max_pending);
  int64_t claim_bytes = static_cast<int64_t>(c.max_claim_bytes);
  int64_t csr_bytes = static_cast<int64_t>(c.max_csr_bytes);
  Status s = ReadString(*t, "registry_db", base, c.registry_db);
  if (s) s = ReadString(*t, "registrar_public_key", base, c.registrar_public_key);
  if (s) s = ReadString(*t, "enrollment_key", base, c.enrollment_key);
  if (s) s = ReadString(*t, "enrollment_key_passphrase_file", base,
                        c.enrollment_key_passphrase_file);
  if (s) s = ReadString(*t, "ca_dir", base, c.ca_dir);
  if (s) {
    if (const toml::node* n = t->get("ca_name"); n != nullptr) {
      if (!n->is_string()) {
        s = Bad("ca_name", "must be a string");
      } else {
        c.ca_name = *n->value<std::string>();
      }
    }
  }
  if (s) s = ReadString(*t, "ca_passphrase_file", base, c.ca_passphrase_file);
  if (s) {
    if (const toml::node* n = t->get("approval"); n != nullptr) {
      if (!n->is_boolean()) {
        s = Bad("approval", "must be true or false");
      } else {
        c.approval = *n->value<bool>();
      }
    }
  }
  if (s) s = ReadInteger(*t, "max_pending", 0, 10'000'000, max_pending);
  if (s) s = ReadInteger(*t, "operational_validity_s", 60, 90 * 86400, c.operational_validity);
  if (s) s = ReadInteger(*t, "max_claim_bytes", 256, 1 << 20, claim_bytes);
  if (s) s = ReadInteger(*t, "max_csr_bytes", 256, 1 << 20, csr_bytes);
  if (s) s = ReadRate(*t, "rate_per_source", c.rate_per_source);
  if (s) s = ReadRate(*t, "rate_per_batch", c.rate_per_batch);
  if (s) s = ReadRate(*t, "rate_per_device", c.rate_per_device);
  if (!s) {
    return s.error();
  }
  c.max_pending = static_cast<uint64_t>(max_pending);
  c.max_claim_bytes = static_cast<size_t>(claim_bytes);
  c.max_csr_bytes = static_cast<size_t>(csr_bytes);
  return std::optional<enroll::EnrollConfig>(std::move(c));
}

Status MountEnrollHandlers(server::Server& server, registry::Directory* directory,
                           const enroll::EnrollConfig& config) {
  enroll::EnrollDeps deps;
  deps.directory = directory;
  deps.clock = &SystemClock();
  server::Server* raw = &server;
  // A claim's own handshake cached "not registered": drop it so the device's next connection
  // is let in at once.
  deps.on_enrolled = [raw](const std::string& id) { raw->ForgetDevice(id); };
  auto handlers = enroll::MakeHandlers(config, deps);
  if (!handlers) {
    return handlers.error().WithContext("enroll");
  }
  for (auto& [path, handler] : *handlers) {
    if (auto s = server.AddRoute(path, std::move(handler)); !s) {
      return s;
    }
  }
  return OkStatus();
}

}  // namespace hallmark::cli
