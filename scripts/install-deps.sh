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
  # the server's second TLS library (server/tls.h, docs/adr/0008-tls-libraries.md)
  libgnutls28-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # allocator for the server (measured in docs/performance.md)
  libmimalloc-dev libjemalloc-dev
  # device key stores: PKCS#11 (SoftHSM2 as the token), TPM 2.0 (swtpm as the chip)
  softhsm2 opensc libengine-pkcs11-openssl libp11-dev libp11-kit-dev
  tpm2-openssl tpm2-tools swtpm swtpm-tools libtss2-tcti-swtpm0 libtss2-dev
  # interop peers used by the tests and the demo
  openssl gnutls-bin sqlite3 procps curl mosquitto mosquitto-clients
)

# --bench also installs the peers the benchmarks compare against (nginx, cfssl).
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(nginx golang-cfssl)
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
# Packages such as nginx and mosquitto start a system service on install; the tests and
# benchmarks start their own on loopback ports, so keep the system ones from starting (only
# when no policy-rc.d is in place already).
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
