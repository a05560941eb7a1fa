#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and runs `hallmark demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=build scripts/build.sh
exec build/hallmark demo "$@"
