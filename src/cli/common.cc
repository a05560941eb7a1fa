#include "cli/common.h"

#include <unistd.h>

#include <iostream>

#include "core/file.h"

namespace hallmark::cli {

int ExitCodeFor(Code code) {
  switch (code) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
    case Code::kOutOfRange:
      return kExitInvalidInput;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
      return kExitRefused;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
    case Code::kResourceExhausted:
      return kExitConflict;
    case Code::kUnavailable:
      return kExitUnavailable;
    case Code::kDataLoss:
      return kExitDataLoss;
    case Code::kInternal:
      return kExitInternal;
  }
  return kExitInternal;
}

void Succeed(Context& ctx, const nlohmann::json& data, const std::string& human) {
  if (ctx.json) {
    std::cout << data.dump(2) << "\n";
  } else if (!human.empty()) {
    std::cout << human;
    if (human.back() != '\n') {
      std::cout << "\n";
    }
  }
  std::cout.flush();
  ctx.exit_code = kExitOk;
}

void Fail(Context& ctx, const Error& error) {
  std::cerr << "hallmark: error: " << error.message();
  if (!error.detail().empty()) {
    std::cerr << "\n  detail: " << error.detail();
  }
  std::cerr << std::endl;
  if (ctx.json) {
    nlohmann::json j = {{"error",
                         {{"code", std::string(CodeName(error.code()))},
                          {"message", error.message()},
                          {"exit_code", ExitCodeFor(error.code())}}}};
    std::cout << j.dump(2) << std::endl;
  }
  ctx.exit_code = ExitCodeFor(error.code());
}

void Report(Context& ctx, const Status& status, const nlohmann::json& data,
            const std::string& human) {
  if (status) {
    Succeed(ctx, data, human);
  } else {
    Fail(ctx, status.error());
  }
}

std::function<void()> Run(Context& ctx, std::function<Status()> body) {
  return [&ctx, body = std::move(body)]() {
    Status s = body();
    if (!s) {
      Fail(ctx, s.error());
    }
  };
}

void AddPassphraseOption(CLI::App* cmd, std::string* path) {
  cmd->add_option("--passphrase-file", *path,
                  "File holding the passphrase that encrypts the private key(s)")
      ->envname("HALLMARK_PASSPHRASE_FILE");
}

Result<std::optional<SecretBytes>> LoadPassphrase(const std::string& path) {
  return ReadOptionalSecretFile(path);
}

bool StderrIsTerminal() { return ::isatty(2) == 1; }

}  // namespace hallmark::cli
