// LoadEnrollConfig: the [enroll] table of hallmark.toml (see enroll/enroll.h for its keys).
#ifndef HALLMARK_CLI_ENROLL_CONFIG_H_
#define HALLMARK_CLI_ENROLL_CONFIG_H_

#include <optional>
#include <string>

#include "core/status.h"
#include "enroll/enroll.h"
#include "server/config.h"
#include "server/server.h"

namespace hallmark::cli {

// LoadEnrollConfig returns the [enroll] settings of the config file at `path` (nullopt if it has
// no such table). The registry defaults to the server's [registry]; relative paths resolve
// against the file's directory. kInvalidArgument names the key and the problem.
Result<std::optional<enroll::EnrollConfig>> LoadEnrollConfig(const std::string& path,
                                                             const server::ServerConfig& server);

// MountEnrollHandlers builds the endpoints of `config` (`enroll::MakeHandlers`) over the server's
// registry view `directory` (may be null) and adds them to `server`, before `Start`. A device that
// enrolled is dropped from the server's caches at once, so its next connection is let in.
// Errors of MakeHandlers (with context "enroll") and of AddRoute.
Status MountEnrollHandlers(server::Server& server, registry::Directory* directory,
                           const enroll::EnrollConfig& config);

}  // namespace hallmark::cli

#endif  // HALLMARK_CLI_ENROLL_CONFIG_H_
