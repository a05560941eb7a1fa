// What every `hallmark` subcommand shares: output for humans or `--json`, exit codes, and
// passphrase options.
#ifndef HALLMARK_CLI_COMMON_H_
#define HALLMARK_CLI_COMMON_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark::cli {

// Exit codes, documented in docs/cli.md. Scripts may rely on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,      // a bug or unexpected library failure
  kExitUsage = 2,         // bad command line
  kExitInvalidInput = 3,  // malformed or inconsistent input (bad CSR, bad value)
  kExitNotFound = 4,      // a named thing does not exist
  kExitRefused = 5,       // policy said no (disallowed key, CA:TRUE request, key file mode)
  kExitConflict = 6,      // wrong state (exists already, not initialised, revoked already)
  kExitUnavailable = 7,   // I/O or storage failure; retrying may help
  kExitDataLoss = 8,      // stored data is corrupt or was tampered with
};

int ExitCodeFor(Code code);

// Context is shared by all commands of one invocation.
struct Context {
  bool json = false;
  int exit_code = kExitOk;
};

// Succeed prints `human` to stdout, or `data` as JSON with --json, and records exit code 0.
void Succeed(Context& ctx, const nlohmann::json& data, const std::string& human);
// Fail prints the error to stderr ("hallmark: error: ..."), and with --json also as
// {"error": {...}} on stdout, and records its exit code.
void Fail(Context& ctx, const Error& error);
// Finish calls Succeed or Fail for a Status.
void Report(Context& ctx, const Status& status, const nlohmann::json& data,
            const std::string& human);

// Run wraps a command body: it calls `body`, which returns a Status, and turns a failure into
// Fail(). Use as the CLI11 callback.
std::function<void()> Run(Context& ctx, std::function<Status()> body);

// PassphraseOption adds --passphrase-file to `cmd`; the file may also come from the
// HALLMARK_PASSPHRASE_FILE environment variable.
void AddPassphraseOption(CLI::App* cmd, std::string* path);
// LoadPassphrase reads the passphrase named by `path`, or none if `path` is empty.
Result<std::optional<SecretBytes>> LoadPassphrase(const std::string& path);

// IsTerminal reports whether stderr is a terminal (for progress output).
bool StderrIsTerminal();

}  // namespace hallmark::cli

#endif  // HALLMARK_CLI_COMMON_H_
