// `hallmark registry ...`: the owner's device registry.
#include "cli/commands.h"

namespace hallmark::cli {

void AddRegistryCommands(CLI::App& /*app*/, Context& /*ctx*/) {}

}  // namespace hallmark::cli
