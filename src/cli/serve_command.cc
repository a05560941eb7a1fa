// `hallmark serve`: the mutual-TLS server.
#include "cli/commands.h"

namespace hallmark::cli {

void AddServeCommand(CLI::App& /*app*/, Context& /*ctx*/) {}

}  // namespace hallmark::cli
