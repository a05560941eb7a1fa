#!/usr/bin/env bash
# Installs every Debian 12 package hallmark needs to build, test, benchmark and run its demo.
# Idempotent, non-interactive; run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # libraries
  libssl-dev libsqlite3-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libboost-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # interop peers used by the tests and the demo
  openssl sqlite3 procps curl
)

# --bench also installs the peers the benchmarks compare against (nginx). Its package would
# start a system nginx on port 80, which the build and the tests do not need.
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(nginx)
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
