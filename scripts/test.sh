#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, and runs the whole test suite twice:
# a normal build, then an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

echo "== release build =="
BUILD_DIR=build scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600

if [[ "${HALLMARK_SKIP_SANITIZERS:-0}" != "1" ]]; then
  echo "== ASan + UBSan build =="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  BUILD_DIR=build-asan scripts/build.sh -DCMAKE_BUILD_TYPE=Debug -DHALLMARK_SANITIZE=ON \
    -DHALLMARK_BENCHMARKS=OFF
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 900
fi
