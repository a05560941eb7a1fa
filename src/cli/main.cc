// hallmark: provable device identities for IoT fleets. One binary, many subcommands.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"

namespace {

constexpr const char* kFooter = R"(Exit codes:
  0 success               4 not found            7 I/O or storage unavailable
  1 internal error        5 refused by policy    8 data corrupt or tampered with
  2 usage error           6 conflicting state
  3 invalid input
See docs/cli.md.)";

}  // namespace

int main(int argc, char** argv) {
  using hallmark::cli::Context;
  CLI::App app("hallmark: provable device identities for IoT fleets", "hallmark");
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();
  Context ctx;
  app.add_flag("--json", ctx.json, "Machine-readable JSON output");
  app.set_version_flag("--version", "hallmark 0.1.0");
  hallmark::cli::AddCaCommands(app, ctx);
  hallmark::cli::AddDeviceCommands(app, ctx);
  hallmark::cli::AddDeviceEnrollCommands(app, ctx);
  hallmark::cli::AddRegistryCommands(app, ctx);
  hallmark::cli::AddBatchCommands(app, ctx);
  hallmark::cli::AddPufCommands(app, ctx);
  hallmark::cli::AddFactoryCommands(app, ctx);
  hallmark::cli::AddServeCommand(app, ctx);
  hallmark::cli::AddDemoCommand(app, ctx);
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->fallthrough();
    for (CLI::App* sub2 : sub->get_subcommands({})) {
      sub2->fallthrough();
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return hallmark::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "hallmark: internal error: " << e.what() << std::endl;
    return hallmark::cli::kExitInternal;
  }
  return ctx.exit_code;
}
