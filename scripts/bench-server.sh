#!/usr/bin/env bash
# Server handshake benchmark (issue 3): `hallmark serve` against nginx with `ssl_verify_client on`,
# with the same certificates and the same load, one server at a time; then the server memory each
# idle authenticated connection costs. Method and figures: docs/performance.md.
#
#   scripts/bench-server.sh                                  # about 2 minutes
#   BENCH_DURATION=30 BENCH_IDLE=10000 scripts/bench-server.sh
#
# Both servers run pinned to core 0 and the load generator (bench/loadgen.cc) to core 1. The
# headline is the server's CPU time per completed hello (utime+stime from /proc), which stays
# comparable when the load generator, not the server, limits the rate.
#
# Environment:
#   BUILD_DIR          build directory (default: build), built by scripts/build.sh
#   BENCH_SKIP_BUILD   1: use BUILD_DIR as it is (no install-deps, no build)
#   BENCH_DURATION     seconds of load per measurement (default 10)
#   BENCH_WARMUP       seconds of unreported load before each measurement (default 1)
#   BENCH_CONCURRENCY  connections in flight (default 32)
#   BENCH_ROUNDS       repeat the hallmark and nginx runs this often, to show the noise (default 1)
#   BENCH_DEVICES      device certificates to issue; the load uses the first (default 3)
#   BENCH_IDLE         idle connections per server for the memory figure, 0 to skip (default
#                      2000); one server process holds at most ~19,900 (open-file limit 20,000)
#   BENCH_IDLE_STEPS   client processes that open them one after another, each from its own
#                      127.0.0.x source address; the slope is taken between the first and the
#                      last step (default 2)
#   BENCH_KEEP         1: keep the temporary directory (certificates, configs, logs, JSON)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
ROUNDS=${BENCH_ROUNDS:-1}
DEVICES=${BENCH_DEVICES:-3}
IDLE=${BENCH_IDLE:-2000}
IDLE_STEPS=${BENCH_IDLE_STEPS:-2}

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  scripts/install-deps.sh --bench
  BUILD_DIR=$BUILD_DIR scripts/build.sh
fi
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
HALLMARK=$BUILD_DIR/hallmark
LOADGEN=$BUILD_DIR/bench/hallmark_loadgen
for bin in "$HALLMARK" "$LOADGEN"; do
  [[ -x $bin ]] || { echo "bench-server: $bin is missing (build first)" >&2; exit 1; }
done
for tool in nginx taskset curl openssl; do
  command -v "$tool" >/dev/null || { echo "bench-server: $tool missing" >&2; exit 1; }
done
if [[ $(nproc) -lt 2 ]]; then
  echo "bench-server: needs 2 cores (server on core 0, load on core 1)" >&2
  exit 1
fi

# Each connection takes a descriptor on both sides; the machine's hard limit may be the cap.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/hallmark-bench-server.XXXXXX)
PIDS=()  # every process this script started, stopped by PID on exit

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  wait 2>/dev/null || true
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "bench-server: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'echo "bench-server: failed at line $LINENO" >&2' ERR

# jget FILE KEY prints a top-level number or string from the loadgen's one-line JSON.
jget() {
  { grep -o "\"$2\":[^,}]*" "$1" 2>/dev/null || true; } | head -1 | cut -d: -f2- | tr -d '"'
}

# wait_for_line FILE PATTERN PID [SECONDS]: until FILE holds PATTERN (at most SECONDS, default
# 60, or until PID exits).
wait_for_line() {
  for _ in $(seq $((${4:-60} * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

hm() { "$HALLMARK" "$@" >/dev/null; }

echo "== bench-server: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$(openssl version | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3)"

# --- Certificates: a vendor root, the customer's intermediate, a server certificate (with the
# chain), device certificates; and a registry holding the first device's key.
echo "== setup in $WORK"
cd "$WORK"
hm ca --dir ca init --org "Bench Vendor"
hm ca --dir ca customer add acme --org ACME
hm device --key server.key keygen
hm device --key server.key csr --san dns:localhost --san ip:127.0.0.1 --out server.csr
hm ca --dir ca issue --customer acme --profile server server.csr --out server.pem --chain
for i in $(seq "$DEVICES"); do
  hm device --key "dev-$i.key" keygen
  hm device --key "dev-$i.key" csr --serial "ACME-$(printf %06d "$i")" --out "dev-$i.csr"
  hm ca --dir ca issue --customer acme --profile device "dev-$i.csr" --out "dev-$i.pem"
done
openssl pkey -in dev-1.key -pubout -out dev-1.pub
hm registry --db reg.db --registrar-key registrar.key init
hm registry --db reg.db --registrar-key registrar.key add --pubkey dev-1.pub \
  --serial ACME-000001 --owner ACME
MAX_CONN=$((IDLE + 1000 > 10000 ? IDLE + 1000 : 10000))

# --- hallmark: one worker thread, a ca listener (with the registry configured, so each
# handshake also makes the registry lookup) and a registry listener.
cat >hallmark.toml <<EOF
[server]
certificate = "server.pem"
private_key = "server.key"
threads = 1
[limits]
idle_timeout_s = 900
max_connections = $MAX_CONN
[registry]
db = "reg.db"
registrar_public_key = "registrar.key.pub"
[admin]
listen = "127.0.0.1:0"
[[listener]]
listen = "127.0.0.1:0"
policy = "ca"
anchors = ["ca/customers/acme/ca.pem"]
[[listener]]
listen = "127.0.0.1:0"
policy = "registry"
EOF
taskset -c 0 "$HALLMARK" serve --config hallmark.toml >hallmark.out 2>hallmark.log &
HM_PID=$!
PIDS+=("$HM_PID")
wait_for_line hallmark.out '"ready"' "$HM_PID" || {
  echo "bench-server: hallmark did not start" >&2
  cat hallmark.log >&2
  exit 1
}
# listener_port POLICY: the port of that listener in the ready line (keys in any order).
listener_port() {
  grep -o "{[^{}]*\"policy\":\"$1\"[^{}]*}" hallmark.out | grep -o '"listen":"[^"]*' |
    grep -o '[0-9]*$'
}
HM_CA_PORT=$(listener_port ca)
HM_REG_PORT=$(listener_port registry)
HM_ADMIN=$(grep -o '"admin":"[^"]*' hallmark.out | cut -d'"' -f4)

# --- nginx: the same server certificate and key, client certificates required and verified up to
# the vendor root (nginx has no partial-chain option), one worker. Own prefix, config, pid and
# logs in $WORK; the system configuration is never read.
mkdir -p nginx/tmp
# nginx_server PORT EXTRA: one server block; EXTRA adds directives.
nginx_server() {
  cat <<EOF
  server {
    listen 127.0.0.1:$1 ssl;
    ssl_certificate $WORK/server.pem;
    ssl_certificate_key $WORK/server.key;
    ssl_protocols TLSv1.3;
    ssl_verify_client on;
    ssl_client_certificate $WORK/ca/customers/acme/chain.pem;
    ssl_verify_depth 2;$2
    location = /v1/hello {
      default_type application/json;
      return 200 '{"policy":"ca","subject":"\$ssl_client_s_dn","message":"hello"}\n';
    }
  }
EOF
}
# start_nginx PORT: nginx as configured by default on PORT and, on PORT+1, the same without
# session tickets (OpenSSL sends two per full TLS 1.3 handshake; hallmark sends none).
start_nginx() {
  local port=$1
  cat >nginx/nginx.conf <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
worker_rlimit_nofile $(ulimit -n);
events {
  worker_connections $MAX_CONN;
}
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  keepalive_timeout 900s;
$(nginx_server "$port" "")
$(nginx_server $((port + 1)) "
    ssl_session_tickets off;")
}
EOF
  taskset -c 0 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
    -g 'daemon off;' &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  for _ in $(seq 100); do
    if curl -s -o /dev/null --max-time 2 --cacert ca/root.pem --cert dev-1.pem --key dev-1.key \
      "https://localhost:$((port + 1))/v1/hello"; then
      return 0
    fi
    kill -0 "$NGINX_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
NGINX_PORT=""
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 12000))  # below the ephemeral range
  if start_nginx "$port"; then
    NGINX_PORT=$port
    break
  fi
  stop_pid "$NGINX_PID"
done
if [[ -z $NGINX_PORT ]]; then
  echo "bench-server: nginx did not start" >&2
  cat nginx/error.log >&2
  exit 1
fi
read -r NGINX_WORKER _ <"/proc/$NGINX_PID/task/$NGINX_PID/children" || true  # no newline
PIDS+=("$NGINX_WORKER")

# --- Handshakes
# load NAME PORT "PIDS" [loadgen args]: warm-up, then the measured run into NAME.json.
# LOAD_CONCURRENCY and LOAD_DURATION override the defaults for one call.
load() {
  local name=$1 port=$2 pids=$3
  local concurrency=${LOAD_CONCURRENCY:-$CONCURRENCY} duration=${LOAD_DURATION:-$DURATION}
  shift 3
  local pid_args=()
  for p in $pids; do
    pid_args+=(--server-pid "$p")
  done
  local common=(--connect "127.0.0.1:$port" --cert dev-1.pem --key dev-1.key
    --cafile ca/root.pem --concurrency "$concurrency" "$@")
  if [[ $WARMUP != 0 ]]; then
    taskset -c 1 "$LOADGEN" "${common[@]}" --duration "$WARMUP" >/dev/null 2>&1 || true
  fi
  taskset -c 1 "$LOADGEN" "${common[@]}" --duration "$duration" --label "$name" \
    "${pid_args[@]}" >"$name.json" 2>"$name.txt" || true
  cat "$name.txt"
}

ROWS=()
echo "== handshakes: ${DURATION}s each, concurrency $CONCURRENCY, servers on core 0, load on core 1"
for round in $(seq "$ROUNDS"); do
  load "hallmark-ca-$round" "$HM_CA_PORT" "$HM_PID"
  load "nginx-$round" "$NGINX_PORT" "$NGINX_PID $NGINX_WORKER"
  load "nginx-notickets-$round" "$((NGINX_PORT + 1))" "$NGINX_PID $NGINX_WORKER"
  ROWS+=("hallmark-ca-$round" "nginx-$round" "nginx-notickets-$round")
done
load hallmark-registry "$HM_REG_PORT" "$HM_PID"
load hallmark-ca-resume "$HM_CA_PORT" "$HM_PID" --resume
load nginx-resume "$NGINX_PORT" "$NGINX_PID $NGINX_WORKER" --resume
ROWS+=(hallmark-registry hallmark-ca-resume nginx-resume)
# Threads or processes (issue 3: OpenSSL 3.0 threads share global locks): the ca listener served
# by one process with two event-loop threads, then by two single-threaded processes sharing the
# port with SO_REUSEPORT; all on core 0, so the figure is the CPU each handshake costs.
# serve_variant NAME THREADS REUSE PORT: starts one hallmark process, prints its PID.
serve_variant() {
  cat >"$1.toml" <<EOF
[server]
certificate = "server.pem"
private_key = "server.key"
threads = $2
reuse_port = $3
[limits]
idle_timeout_s = 900
max_connections = $MAX_CONN
[registry]
db = "reg.db"
registrar_public_key = "registrar.key.pub"
[[listener]]
listen = "127.0.0.1:$4"
policy = "ca"
anchors = ["ca/customers/acme/ca.pem"]
EOF
  taskset -c 0 "$HALLMARK" serve --config "$1.toml" >"$1.out" 2>"$1.log" &
  echo $!
}
for _ in 1 2 3 4 5; do
  VPORT=$((20000 + RANDOM % 12000))
  T2_PID=$(serve_variant hallmark-threads2 2 false "$VPORT")
  PIDS+=("$T2_PID")
  if wait_for_line hallmark-threads2.out '"ready"' "$T2_PID"; then
    break
  fi
done
load hallmark-ca-threads2 "$VPORT" "$T2_PID"
stop_pid "$T2_PID"
P1_PID=$(serve_variant hallmark-proc-a 1 true "$VPORT")
P2_PID=$(serve_variant hallmark-proc-b 1 true "$VPORT")
PIDS+=("$P1_PID" "$P2_PID")
if wait_for_line hallmark-proc-a.out '"ready"' "$P1_PID" &&
  wait_for_line hallmark-proc-b.out '"ready"' "$P2_PID"; then
  load hallmark-ca-procs2 "$VPORT" "$P1_PID $P2_PID"
fi
stop_pid "$P1_PID"
stop_pid "$P2_PID"
ROWS+=(hallmark-ca-threads2 hallmark-ca-procs2)
# One connection at a time: latency without queueing behind the other connections.
SHORT=$(awk -v d="$DURATION" 'BEGIN { print (d / 2 > 1) ? d / 2 : 1 }')
LOAD_CONCURRENCY=1 LOAD_DURATION=$SHORT load hallmark-ca-c1 "$HM_CA_PORT" "$HM_PID"
LOAD_CONCURRENCY=1 LOAD_DURATION=$SHORT load nginx-c1 "$NGINX_PORT" "$NGINX_PID $NGINX_WORKER"
ROWS+=(hallmark-ca-c1 nginx-c1)
METRICS=$(curl -s --max-time 5 "http://$HM_ADMIN/metrics" || true)

# --- Idle connections
# idle NAME PORT RSS_PID: opens BENCH_IDLE connections in BENCH_IDLE_STEPS client
# processes, reads the server's VmRSS after each step, then closes them all.
IDLE_ROWS=()
idle() {
  local name=$1 port=$2 rss_pid=$3
  local per=$((IDLE / IDLE_STEPS)) held=0 step pid
  local counts=() rss=() clients=()
  counts+=(0)
  rss+=("$(rss_kib "$rss_pid")")
  for step in $(seq "$IDLE_STEPS"); do
    taskset -c 1 "$LOADGEN" --connect "127.0.0.1:$port" --source "127.0.0.$((10 + step))" \
      --cert dev-1.pem --key dev-1.key --cafile ca/root.pem --concurrency "$CONCURRENCY" \
      --idle "$per" --hold 600 --duration 120 --label "$name-idle-$step" \
      >"$name-idle-$step.json" 2>"$name-idle-$step.txt" &
    pid=$!
    PIDS+=("$pid")
    clients+=("$pid")
    if ! wait_for_line "$name-idle-$step.json" '"holding"' "$pid" 130; then
      echo "bench-server: idle step $step against $name did not complete" >&2
      cat "$name-idle-$step.txt" >&2
      break
    fi
    held=$((held + $(jget "$name-idle-$step.json" idle)))
    sleep 1  # let the server finish the last handshakes' cleanup before reading VmRSS
    counts+=("$held")
    rss+=("$(rss_kib "$rss_pid")")
  done
  for pid in "${clients[@]}"; do
    stop_pid "$pid"
  done
  local n=${#counts[@]}
  local first=1
  [[ $n -gt 2 ]] || first=0
  IDLE_ROWS+=("$(awk -v name="$name" -v c0="${counts[$first]}" -v c1="${counts[$n - 1]}" \
    -v r0="${rss[$first]}" -v r1="${rss[$n - 1]}" -v base="${rss[0]}" -v held="$held" 'BEGIN {
      slope = (c1 > c0) ? (r1 - r0) / (c1 - c0) : 0
      printf "%-16s %9d %11d %11d %9d..%-6d %10.1f\n", name, held, base, r1, c0, c1, slope }')")
}
if [[ $IDLE -gt 0 ]]; then
  echo "== idle connections: $IDLE per server in $IDLE_STEPS steps"
  idle hallmark "$HM_CA_PORT" "$HM_PID"
  idle nginx "$NGINX_PORT" "$NGINX_WORKER"
fi

# --- Report
echo
echo "== Server CPU per mutual-TLS 1.3 handshake + GET /v1/hello (lower is better)"
echo "   (full handshakes, except the -resume rows, which reuse sessions the server offers)"
printf "%-22s %5s %9s %6s %7s %7s %7s %7s %7s %7s %7s %9s %7s\n" run conc completed failed \
  rate/s p50_ms p90_ms p99_ms max_ms srv_cpu lg_cpu us/hello resumed
for r in "${ROWS[@]}"; do
  f=$r.json
  [[ -s $f ]] || { echo "$r: no result (see $r.txt)"; continue; }
  awk -v r="$r" -v conc="$(jget "$f" concurrency)" -v c="$(jget "$f" completed)" \
    -v fl="$(jget "$f" failed)" -v lg="$(jget "$f" client_cpu_s)" -v t="$(jget "$f" elapsed_s)" \
    -v rate="$(jget "$f" rate_per_s)" -v p50="$(jget "$f" latency_us_p50)" \
    -v p90="$(jget "$f" latency_us_p90)" -v p99="$(jget "$f" latency_us_p99)" \
    -v mx="$(jget "$f" latency_us_max)" -v u="$(jget "$f" server_cpu_util)" \
    -v us="$(jget "$f" server_cpu_us_per_handshake)" -v res="$(jget "$f" resumed)" 'BEGIN {
      printf "%-22s %5d %9d %6d %7.0f %7.2f %7.2f %7.2f %7.2f %6.0f%% %6.0f%% %9.0f %7d\n",
             r, conc, c, fl, rate, p50 / 1000, p90 / 1000, p99 / 1000, mx / 1000, 100 * u,
             (t > 0 ? 100 * lg / t : 0), us, res }'
done
for round in $(seq "$ROUNDS"); do
  awk -v h="$(jget "hallmark-ca-$round.json" server_cpu_us_per_handshake)" \
    -v n="$(jget "nginx-$round.json" server_cpu_us_per_handshake)" \
    -v t="$(jget "nginx-notickets-$round.json" server_cpu_us_per_handshake)" \
    -v round="$round" 'BEGIN {
      if (h > 0) printf "ratio nginx/hallmark (ca policy), round %d: %.2fx" \
        " (nginx without session tickets: %.2fx)\n", round, n / h, t / h }'
done
awk -v h="$(jget hallmark-registry.json server_cpu_us_per_handshake)" \
  -v n="$(jget nginx-1.json server_cpu_us_per_handshake)" 'BEGIN {
    if (h > 0) printf "ratio nginx/hallmark (registry policy): %.2fx\n", n / h }'
if [[ $(jget hallmark-ca-resume.json resumed) == 0 ]]; then
  echo "hallmark resumed no session (offered: $(jget hallmark-ca-resume.json sessions_offered))"
fi
echo "hallmark /metrics, whole run:" \
  "$(echo "$METRICS" | grep -E '^hallmark_(handshakes|handshake_failures)_total' |
    grep -v ' 0$' | tr '\n' ' ')"
if [[ ${#IDLE_ROWS[@]} -gt 0 ]]; then
  echo
  echo "== Server RSS per idle authenticated connection (slope between the step counts)"
  printf "%-16s %9s %11s %11s %17s %10s\n" server held rss0_KiB rss_KiB slope_over KiB/conn
  printf "%s\n" "${IDLE_ROWS[@]}"
fi
echo
echo "Shared machine: other work on either core is noise. Load average now:" \
  "$(cut -d" " -f1-3 /proc/loadavg)"
