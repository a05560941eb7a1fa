#!/usr/bin/env bash
# Builds and runs the benchmarks, printing the figures quoted in issue notes and docs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=build scripts/build.sh
# Pin to one core when possible so figures read as "per core".
PIN=()
if command -v taskset >/dev/null; then
  PIN=(taskset -c 1)
fi
"${PIN[@]}" build/bench/issuance_bench --benchmark_min_time=1 "$@"
