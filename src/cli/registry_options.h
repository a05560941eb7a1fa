// What the `registry` and `batch` command groups share: the database, the registrar key and the
// trusted registrar public key, from options or the environment.
#ifndef HALLMARK_CLI_REGISTRY_OPTIONS_H_
#define HALLMARK_CLI_REGISTRY_OPTIONS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "core/key.h"
#include "core/status.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"

namespace hallmark::cli {

struct RegistryOptions {
  std::string db;
  std::string registrar_key;
  std::string registrar_pub;
  std::string passphrase_file;
};

// AddRegistryOptions adds --db, --registrar-key, --registrar-pub and --passphrase-file (with
// their environment variables) to `group`.
void AddRegistryOptions(CLI::App* group, RegistryOptions* o);

// OpenRegistry opens the database named by --db.
Result<registry::Registry> OpenRegistry(const RegistryOptions& o);

// LoadRegistrar loads --registrar-key for `command`, which signs with it.
Result<registry::RegistrarKey> LoadRegistrar(const RegistryOptions& o, std::string_view command);

// RegistrarSession is the registry opened for a command the registrar signs.
struct RegistrarSession {
  registry::RegistrarKey registrar;
  registry::Registry registry;
};

// OpenAsRegistrar loads the registrar key (LoadRegistrar) and opens the registry.
Result<RegistrarSession> OpenAsRegistrar(const RegistryOptions& o, std::string_view command);

// TrustedKey is the registrar public key to check against, and where it came from.
struct TrustedKey {
  PublicKey key;
  std::string source;  // "--registrar-pub FILE", "KEY.pub" or "database"
};

// LoadTrustedKey prefers --registrar-pub, then the public half of --registrar-key's KEY.pub,
// and falls back to the key stored in the database, which an attacker could have replaced.
Result<TrustedKey> LoadTrustedKey(const RegistryOptions& o, registry::Registry& registry);

}  // namespace hallmark::cli

#endif  // HALLMARK_CLI_REGISTRY_OPTIONS_H_
