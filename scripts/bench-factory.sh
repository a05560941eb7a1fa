#!/usr/bin/env bash
# Throughput of the simulated production line: devices per second for each mode (extract,
# inject) and device key store (file, pkcs11 on SoftHSM2, tpm on swtpm). Every device is its own
# `hallmark factory device-agent` process, as on a real line, so the figures include one process
# start per device.
#
#   scripts/bench-factory.sh [COUNT]        (default 200 devices per run)
#   HALLMARK=build/hallmark scripts/bench-factory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-200}"
HALLMARK="${HALLMARK:-build/hallmark}"
HALLMARK="$(realpath "$HALLMARK")"
WORK="$(mktemp -d)"
SWTPM_PID=""
cleanup() {
  if [[ -n "$SWTPM_PID" ]]; then kill "$SWTPM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$WORK"
"$HALLMARK" ca --dir ca init >/dev/null
"$HALLMARK" ca --dir ca customer add acme >/dev/null
"$HALLMARK" device --key factory.key keygen >/dev/null

# One SoftHSM2 token holds the line's device keys.
SOFTHSM_MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
  [[ -r "$m" ]] && SOFTHSM_MODULE="$m" && break
done
mkdir -p tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$WORK" > softhsm2.conf
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
softhsm2-util --init-token --free --label line --so-pin 12345678 --pin 1234 >/dev/null
echo 1234 > pin

# One swtpm holds the line's TPM keys (each device's blob is in its own directory).
mkdir -p tpm
swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" --server type=unixio,path="$WORK/tpm.sock" \
  --ctrl type=unixio,path="$WORK/tpm.sock.ctrl" --flags not-need-init,startup-clear \
  --pid file="$WORK/tpm.pid" --daemon
SWTPM_PID="$(cat "$WORK/tpm.pid")"

run() {  # MODE STORE KEYSTORE [extra args...]
  local mode="$1" store="$2" keystore="$3"
  shift 3
  local extra=(--factory-key factory.key)
  [[ "$mode" == inject ]] && extra=(--ca-dir ca)
  "$HALLMARK" --json factory run --customer acme --count "$COUNT" --mode "$mode" \
    --keystore "$keystore" --line-dir "line-$mode-$store" --serial-prefix "$mode-$store-" \
    "${extra[@]}" "$@" |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print("%-8s %-7s %6d %8.2f %10.1f" % (sys.argv[1], sys.argv[2], j["provisioned"], j["seconds"], j["devices_per_second"]))' "$mode" "$store"
}

echo "hallmark factory run, $COUNT devices per run, $(nproc) cores"
printf '%-8s %-7s %6s %8s %10s\n' mode store devices seconds devices/s
for mode in extract inject; do
  run "$mode" file file
  run "$mode" pkcs11 "pkcs11:module=$SOFTHSM_MODULE;token=line" --device-pin-file pin
  run "$mode" tpm "tpm:tcti=swtpm:path=$WORK/tpm.sock"
done
