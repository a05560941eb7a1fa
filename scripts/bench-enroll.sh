#!/usr/bin/env bash
# Enrollment benchmark (issue 4): batch claims/s and EST enrollments/s of `hallmark serve`
# against the crypto limit, and against `cfssl serve` signing the same CSRs, in one run. Method
# and figures: docs/performance.md ("Enrollment").
#
#   scripts/bench-enroll.sh                                  # about 2 minutes
#   BENCH_DURATION=30 BENCH_TMPDIR=/dev/shm scripts/bench-enroll.sh
#
# Servers run pinned to core 0 and the load generator (bench/enroll_loadgen.cc) to core 1. The
# headline is the server's CPU time per success (utime+stime from /proc), which stays comparable
# when the load generator, the disk or another tenant of the machine limits the rate.
#
#   1. crypto  the public-key operations per claim, per EST enrollment and per cfssl signature,
#              timed on core 0 before any load, and one 4 KiB write + fdatasync in the work dir
#   2. claims  devices with their own keys and distinct serials claim through one batch over
#              mutual TLS (the device code: device::Claim); each claim commits one registry
#              transaction
#   3. EST     the claimed devices get operational certificates (device::EstEnroll,
#              simpleenroll, over their registered keys); each issuance commits to the CA's log
#   4. cfssl   `cfssl serve` with the same issuing CA (certificate and P-256 key) signs the same
#              CSRs: POST /api/v1/cfssl/sign, plain HTTP with keep-alive, no client
#              authentication, no database
# then each of 2-4 again with one request at a time (latency without queueing).
#
# Environment:
#   BUILD_DIR            build directory (default: build), built by scripts/build.sh
#   BENCH_SKIP_BUILD     1: use BUILD_DIR as it is (no install-deps, no build)
#   BENCH_DURATION       seconds of each measured window at full concurrency (default 20)
#   BENCH_SHORT          seconds of each one-at-a-time window (default 5; 0 skips them)
#   BENCH_WARMUP         seconds of unreported load before each window (default 1)
#   BENCH_CONCURRENCY    requests in flight (default 32)
#   BENCH_DEVICES        device keys the claim run generates, at most one claim each (default
#                        20000); the batch is this size plus the one-at-a-time run's
#   BENCH_EST_FACTOR     after its window a claim run keeps claiming (unreported, at most 60 s)
#                        until this many times as many devices are claimed as by the window's
#                        end, so that the EST run that follows has enough (default 2)
#   BENCH_THREADS        hallmark's worker threads, all on core 0 (default 1)
#   BENCH_TMPDIR         where the work directory goes (default /tmp); its file system decides
#                        what an fsync costs (/dev/shm: none)
#   BENCH_KEEP           1: keep the work directory (keys, configs, logs, one JSON per run and
#                        bench-enroll.json with every figure)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
DURATION=${BENCH_DURATION:-20}
SHORT=${BENCH_SHORT:-5}
WARMUP=${BENCH_WARMUP:-1}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
DEVICES=${BENCH_DEVICES:-20000}
EST_FACTOR=${BENCH_EST_FACTOR:-2}
THREADS=${BENCH_THREADS:-1}
C1_DEVICES=2000

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  scripts/install-deps.sh --bench
  BUILD_DIR=$BUILD_DIR scripts/build.sh
fi
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
HALLMARK=$BUILD_DIR/hallmark
LOADGEN=$BUILD_DIR/bench/hallmark_enroll_loadgen
for bin in "$HALLMARK" "$LOADGEN"; do
  [[ -x $bin ]] || { echo "bench-enroll: $bin is missing (build first)" >&2; exit 1; }
done
for tool in cfssl taskset curl openssl; do
  command -v "$tool" >/dev/null || { echo "bench-enroll: $tool missing" >&2; exit 1; }
done

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/hallmark-bench-enroll.XXXXXX")
BENCH_NAME=bench-enroll
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_require_cores
trap bench_cleanup EXIT
trap 'echo "bench-enroll: failed at line $LINENO" >&2' ERR

echo "== bench-enroll: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$(openssl version | cut -d' ' -f1-2), cfssl $(cfssl version 2>/dev/null | head -1 |
    awk '{print $2}'), work dir on $(df -T "$WORK" | awk 'NR == 2 {print $2}')"

# --- A CA with a customer intermediate (it issues the operational certificates), a server
# certificate, a registry, the server's enrollment key and one batch.
echo "== setup in $WORK"
cd "$WORK"
hm ca --dir ca init --org "Bench Vendor"
hm ca --dir ca customer add acme --org ACME
hm device --key server.key keygen
hm device --key server.key csr --san ip:127.0.0.1 --san dns:localhost --out server.csr
hm ca --dir ca issue --customer acme --profile server server.csr --out server.pem --chain
hm registry --db reg.db --registrar-key registrar.key init
hm batch enrollment-key --out enroll.key
hm batch --db reg.db --registrar-key registrar.key create --size $((DEVICES + C1_DEVICES)) \
  --expires 1d --owner ACME --id bench --enrollment-pub enroll.key.pub --secret-out batch.secret

# hallmark: one registry listener that lets unknown devices reach the claim endpoint; EST from
# the acme intermediate; rate limits out of the way (one source address sends everything).
cat >hallmark.toml <<EOF
[server]
certificate = "server.pem"
private_key = "server.key"
threads = $THREADS
[limits]
max_connections = 10000
[registry]
db = "reg.db"
registrar_public_key = "registrar.key.pub"
[[listener]]
listen = "127.0.0.1:0"
policy = "registry"
admit_unknown = true
[enroll]
enrollment_key = "enroll.key"
approval = false
ca_dir = "ca"
ca_name = "acme"
rate_per_source = { per_second = 1000000.0, burst = 1000000.0 }
rate_per_batch = { per_second = 1000000.0, burst = 1000000.0 }
rate_per_device = { per_second = 1000000.0, burst = 1000000.0 }
EOF
taskset -c 0 "$HALLMARK" serve --config hallmark.toml >hallmark.out 2>hallmark.log &
HM_PID=$!
PIDS+=("$HM_PID")
wait_for_line hallmark.out '"ready"' "$HM_PID" || {
  echo "bench-enroll: hallmark did not start" >&2
  cat hallmark.log >&2
  exit 1
}
HM_PORT=$(grep -o '"listen":"[^"]*' hallmark.out | head -1 | grep -o '[0-9]*$')

# cfssl: the same issuing CA (the acme intermediate's certificate and its unencrypted PKCS#8
# P-256 key), one profile like hallmark's operational one (client auth, 7 days).
cat >cfssl.json <<EOF
{"signing": {"default": {"usages": ["digital signature", "client auth"], "expiry": "168h"}}}
EOF
start_cfssl() {
  taskset -c 0 cfssl serve -address 127.0.0.1 -port "$1" -ca ca/customers/acme/ca.pem \
    -ca-key ca/keys/customer-acme.key -config cfssl.json >cfssl.log 2>&1 &
  CF_PID=$!
  PIDS+=("$CF_PID")
  for _ in $(seq 100); do
    if curl -sf -o /dev/null --max-time 2 -d '{}' "http://127.0.0.1:$1/api/v1/cfssl/info"; then
      return 0
    fi
    kill -0 "$CF_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
CF_PORT=""
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 12000))  # below the ephemeral range
  if start_cfssl "$port"; then
    CF_PORT=$port
    break
  fi
  stop_pid "$CF_PID"
done
if [[ -z $CF_PORT ]]; then
  echo "bench-enroll: cfssl did not start" >&2
  cat cfssl.log >&2
  exit 1
fi

# --- 1. The crypto limit, on the servers' core while they are idle.
echo "== crypto limit (core 0, servers idle)"
taskset -c 0 "$LOADGEN" crypto --fsync-dir "$WORK" >crypto.json 2>crypto.txt
cat crypto.txt

# --- 2-4. Load. run NAME ARGS...: one measurement into NAME.json (summary in NAME.txt).
ROWS=()
run() {
  local name=$1
  shift
  taskset -c 1 "$LOADGEN" "$@" --label "$name" >"$name.json" 2>"$name.txt" || true
  cat "$name.txt"
  ROWS+=("$name")
}
device_args=(--connect "127.0.0.1:$HM_PORT" --trust ca/customers/acme/ca.pem
  --server-pid "$HM_PID")
cfssl_args=(cfssl --connect "127.0.0.1:$CF_PORT" --server-pid "$CF_PID")
echo "== ${DURATION} s windows at concurrency $CONCURRENCY, then ${SHORT} s one at a time;" \
  "servers on core 0, load on core 1"
run claims claim "${device_args[@]}" --batch bench --secret-file batch.secret \
  --devices "$DEVICES" --serial-prefix C- --keys-out claimed.jsonl \
  --extra-factor "$EST_FACTOR" --concurrency "$CONCURRENCY" --warmup "$WARMUP" \
  --duration "$DURATION"
if [[ $SHORT != 0 ]]; then
  run claims-c1 claim "${device_args[@]}" --batch bench --secret-file batch.secret \
    --devices "$C1_DEVICES" --serial-prefix S- --keys-out claimed-c1.jsonl --concurrency 1 \
    --extra-factor "$EST_FACTOR" --warmup "$WARMUP" --duration "$SHORT"
fi
if [[ ! -s claimed.jsonl ]]; then
  echo "bench-enroll: no device claimed" >&2
  tail hallmark.log >&2
  exit 1
fi
run est est "${device_args[@]}" --keys claimed.jsonl --csr-out csrs.pem \
  --concurrency "$CONCURRENCY" --warmup "$WARMUP" --duration "$DURATION"
if [[ $SHORT != 0 && -s claimed-c1.jsonl ]]; then
  run est-c1 est "${device_args[@]}" --keys claimed-c1.jsonl --csr-out csrs-c1.pem \
    --concurrency 1 --warmup "$WARMUP" --duration "$SHORT"
fi
# The disk again: other tenants make an fsync cost anything from 0.1 to 12 ms here.
taskset -c 1 "$LOADGEN" fsync --dir "$WORK" >fsync-after.json 2>/dev/null || true
run cfssl "${cfssl_args[@]}" --csrs csrs.pem --concurrency "$CONCURRENCY" --warmup "$WARMUP" \
  --duration "$DURATION"
if [[ $SHORT != 0 && -s csrs-c1.pem ]]; then
  run cfssl-c1 "${cfssl_args[@]}" --csrs csrs-c1.pem --concurrency 1 --warmup "$WARMUP" \
    --duration "$SHORT"
fi
CLAIMS_LOGGED=$(grep -c 'event=batch_claim' hallmark.log || true)
EST_LOGGED=$(grep -c 'event=est_issued' hallmark.log || true)

# --- Report
echo
echo "== Server CPU per success (lower is better). crypto: the public-key operations each request"
echo "   needs (protocol) and makes (implemented), as a share of the server CPU; rate/limit: the"
echo "   rate against one core doing nothing but the protocol's crypto"
printf "%-10s %4s %9s %6s %7s %7s %7s %7s %7s %7s %7s %11s %11s %8s\n" run conc completed \
  failed rate/s p50_ms p99_ms srv_cpu us/op wait/op idle/op crypto/cpu impl/cpu rate/lim
# crypto_of RUN KIND: the crypto cost (KIND protocol or implemented) of one request of RUN.
crypto_of() {
  local suffix=""
  [[ $2 == implemented ]] && suffix=_implemented
  case $1 in
    claims*) jget crypto.json "claim${suffix}_us" ;;
    est*) jget crypto.json "est${suffix}_us" ;;
    cfssl*) jget crypto.json cfssl_us ;;
  esac
}
for r in "${ROWS[@]}"; do
  f=$r.json
  [[ -s $f ]] || { echo "$r: no result (see $r.txt)"; continue; }
  awk -v r="$r" -v conc="$(jget "$f" concurrency)" -v c="$(jget "$f" completed)" \
    -v fl="$(jget "$f" failed)" -v rate="$(jget "$f" rate_per_s)" \
    -v p50="$(jget "$f" latency_us_p50)" -v p99="$(jget "$f" latency_us_p99)" \
    -v u="$(jget "$f" server_cpu_util)" -v us="$(jget "$f" server_cpu_us_per_op)" \
    -v crypto="$(crypto_of "$r" protocol)" -v impl="$(crypto_of "$r" implemented)" \
    -v wait="$(jget "$f" server_runqueue_us_per_op)" -v threads="$THREADS" \
    -v early="$(jget "$f" ended_early)" 'BEGIN {
      idle = (rate > 0 && r !~ /^cfssl/) ? sprintf("%.0f", 2 * threads * 1e6 / rate - us - wait) : "-"
      printf "%-10s %4d %9d %6d %7.0f %7.2f %7.2f %6.0f%% %7.0f %7.0f %7s" \
             " %5.0f %4.1f%% %5.0f %4.1f%% %7.1f%%%s\n", r, conc, c, fl, rate, p50 / 1000,
             p99 / 1000, 100 * u, us, wait, idle,
             crypto, (us > 0 ? 100 * crypto / us : 0), impl, (us > 0 ? 100 * impl / us : 0),
             100 * rate * crypto / 1e6,
             (early == "true" ? "  (devices used up: short window)" : "") }'
done
echo "(per request, us: us/op the server's CPU; wait/op its threads' wait for a core while"
echo " runnable: other tenants on core 0, and its event loops and blocking-pool threads waiting"
echo " for each other on that one core; idle/op the rest of its $((2 * THREADS)) threads' time"
echo " ($THREADS event loop(s), $THREADS pool thread(s) for the endpoints that commit to disk):"
echo " blocked in fdatasync or waiting for requests)"
awk -v claim="$(jget crypto.json claim_us)" \
  -v claim_impl="$(jget crypto.json claim_implemented_us)" \
  -v est="$(jget crypto.json est_us)" -v est_impl="$(jget crypto.json est_implemented_us)" \
  -v cf="$(jget crypto.json cfssl_us)" -v tls="$(jget crypto.json tls_server_us)" \
  -v sign="$(jget crypto.json ecdsa_p256_sign)" -v verify="$(jget crypto.json ecdsa_p256_verify)" \
  -v esign="$(jget crypto.json ed25519_sign)" -v everify="$(jget crypto.json ed25519_verify)" \
  -v xk="$(jget crypto.json x25519_keygen)" -v xd="$(jget crypto.json x25519_derive)" 'BEGIN {
    printf "crypto, CPU time on core 0: P-256 sign %.1f / verify %.1f us, Ed25519 sign %.1f /" \
      " verify %.1f us, X25519 keygen %.1f / derive %.1f us\n", sign, verify, esign, everify, xk, xd
    printf "  TLS 1.3 server handshake (X25519 keygen + derive, P-256 sign + verify):" \
      " %.0f us\n", tls
    printf "  claim = handshake + Ed25519 verify (proof) + Ed25519 sign (record): %.0f us =" \
      " %.0f claims/s;\n    implemented: + Ed25519 sign (tree head) + Ed25519 verify (new head) = %.0f us\n",
      claim, 1e6 / claim, claim_impl
    printf "  EST = handshake + P-256 verify (CSR) + P-256 sign (certificate): %.0f us =" \
      " %.0f/s;\n    implemented: + Ed25519 verify (registry record, once per device)" \
      " = %.0f us\n", est, 1e6 / est, est_impl
    printf "  cfssl = P-256 verify (CSR) + sign (certificate), no TLS: %.0f us = %.0f/s\n", cf,
      1e6 / cf
  }'
echo "4 KiB write + fdatasync in the work dir, before the load: p50" \
  "$(jget crypto.json fdatasync_4k_us_p50) us, p99 $(jget crypto.json fdatasync_4k_us_p99) us;" \
  "after the EST runs: p50 $(jget fsync-after.json fdatasync_4k_us_p50) us, p99" \
  "$(jget fsync-after.json fdatasync_4k_us_p99) us"
echo "  (each claim and each issuance commits its own SQLite transaction, WAL, synchronous=FULL:"
echo "  one fdatasync per request, no group commit; a blocking-pool thread, not the event loop, waits for it)"
awk -v hr="$(jget est.json rate_per_s)" -v hc="$(jget est.json server_cpu_us_per_op)" \
  -v cr="$(jget cfssl.json rate_per_s)" -v cc="$(jget cfssl.json server_cpu_us_per_op)" 'BEGIN {
    if (hr > 0 && cr > 0 && hc > 0 && cc > 0)
      printf "hallmark EST / cfssl sign: rate %.2fx, server CPU per certificate %.2fx" \
        " (hallmark: mutual TLS handshake, registry check, logged issuance; cfssl: plain HTTP," \
        " keep-alive, no client authentication, no database)\n", hr / cr, hc / cc }'
echo "hallmark log, whole run: $CLAIMS_LOGGED claims, $EST_LOGGED EST issuances;" \
  "claimed devices kept for EST: $(jget claims.json claimed_devices_written)"
if [[ ${BENCH_KEEP:-0} == 1 ]]; then
  {
    printf '{"machine":{"cores":%s,"loadavg":"%s","openssl":"%s","threads":%s,"fs":"%s"}' \
      "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(openssl version | cut -d' ' -f2)" \
      "$THREADS" "$(df -T "$WORK" | awk 'NR == 2 {print $2}')"
    printf ',"crypto":%s,"fsync_after":%s' "$(cat crypto.json)" "$(cat fsync-after.json)"
    for r in "${ROWS[@]}"; do
      [[ -s $r.json ]] && printf ',"%s":%s' "$r" "$(cat "$r.json")"
    done
    printf '}\n'
  } >bench-enroll.json
  echo "figures: $WORK/bench-enroll.json"
fi
echo
echo "Shared machine: other work on either core is noise. Load average now:" \
  "$(cut -d" " -f1-3 /proc/loadavg)"
