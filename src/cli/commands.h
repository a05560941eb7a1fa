// The `hallmark` subcommand groups, each registered on the top-level CLI11 app.
#ifndef HALLMARK_CLI_COMMANDS_H_
#define HALLMARK_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace hallmark::cli {

void AddBatchCommands(CLI::App& app, Context& ctx);
void AddCaCommands(CLI::App& app, Context& ctx);
void AddDeviceCommands(CLI::App& app, Context& ctx);
// AddDeviceEnrollCommands adds claim, request-approval, code, enroll and renew to the `device`
// group; call it after AddDeviceCommands.
void AddDeviceEnrollCommands(CLI::App& app, Context& ctx);
void AddDemoCommand(CLI::App& app, Context& ctx);
void AddFactoryCommands(CLI::App& app, Context& ctx);
void AddPufCommands(CLI::App& app, Context& ctx);
void AddRegistryCommands(CLI::App& app, Context& ctx);
void AddServeCommand(CLI::App& app, Context& ctx);

}  // namespace hallmark::cli

#endif  // HALLMARK_CLI_COMMANDS_H_
