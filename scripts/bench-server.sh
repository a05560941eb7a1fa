#!/usr/bin/env bash
# Server handshake benchmark (issue 3): `hallmark serve` against nginx with `ssl_verify_client on`,
# with the same certificates and the same load, one server at a time; then the server memory each
# idle authenticated connection costs. Method and figures: docs/performance.md.
#
#   scripts/bench-server.sh                                  # about 3 minutes
#   BENCH_DURATION=30 BENCH_IDLE=10000 scripts/bench-server.sh
#
# The servers run pinned to core 0 and the load generator (bench/loadgen.cc) to core 1. The
# headline is the server's CPU time per completed hello (utime+stime from /proc), which stays
# comparable when the load generator, not the server, limits the rate.
#
# Servers ("targets"): hallmark-gnutls (`hallmark serve` with `library = "gnutls"`, the default
# TLS library), hallmark-openssl (the same with `library = "openssl"`) and nginx.
#
# Environment:
#   BUILD_DIR          build directory (default: build), built by scripts/build.sh
#   BENCH_SKIP_BUILD   1: use BUILD_DIR as it is (no install-deps, no build)
#   BENCH_DURATION     seconds of load per measurement (default 10)
#   BENCH_WARMUP       seconds of unreported load before each measurement (default 1)
#   BENCH_CONCURRENCY  connections in flight (default 32)
#   BENCH_TARGETS      servers of the handshake runs (default "hallmark-gnutls hallmark-openssl
#                      nginx").
#                      Each hallmark target: the ca policy (every round), the registry policy,
#                      resumption, two threads / two processes, one connection at a time; nginx:
#                      with and without session tickets (every round), resumption, one at a time
#   BENCH_ROUNDS       repeat the ca-policy and nginx runs this often, to show the noise (default 1)
#   BENCH_DEVICES      device certificates to issue; the load uses the first (default 3)
#   BENCH_FLEET        more device certificates (issued with openssl by the same customer CA)
#                      for a "fleet" run per server: connections take them in turn, so each
#                      handshake is a first contact for the server's per-certificate caches
#                      once there are more than they hold (hallmark's: 1,024); 0 skips the
#                      runs (default 0; 1500 takes about a minute to issue)
#   BENCH_IDLE         idle connections per server for the memory figure, 0 to skip (default
#                      2000); one server process holds at most ~19,900 (open-file limit 20,000)
#   BENCH_IDLE_STEPS   client processes that open them one after another, each from its own
#                      127.0.0.x source address; the slope is taken between the first and the
#                      last step (default 2)
#   BENCH_IDLE_OPEN_S  seconds each step's client may take to open its connections (default 300);
#                      it stops early once all are open, not if the server closed some meanwhile
#   BENCH_IDLE_SERVERS server processes per server under test for the idle figure (default 1:
#                      the servers of the handshake runs). More: that many `hallmark serve`
#                      processes sharing the port (reuse_port), nginx with that many workers
#                      (`reuseport`), that many probes; past ~19,900 connections one process
#                      runs out of descriptors, e.g. BENCH_IDLE=40000 BENCH_IDLE_STEPS=4
#                      BENCH_IDLE_SERVERS=3
#   BENCH_IDLE_TARGETS servers measured idle (default "hallmark-gnutls hallmark-openssl nginx");
#                      also "gnutls" and "openssl": bench/gnutls_idle_probe, a minimal mutual-TLS
#                      server on GnuTLS or OpenSSL (built where GnuTLS is installed)
#   BENCH_HANDSHAKES   0: skip the handshake runs (idle figures only)
#   BENCH_HALLMARK     the hallmark binary to run (default BUILD_DIR/hallmark), e.g. one built
#                      with another HALLMARK_ALLOCATOR
#   BENCH_HALLMARK_TLS lines for the [tls] table of every hallmark config, e.g. "resumption = false"
#                      (not `library`: the target sets it)
#   BENCH_KEEP         1: keep the temporary directory (certificates, configs, logs, JSON)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
ROUNDS=${BENCH_ROUNDS:-1}
DEVICES=${BENCH_DEVICES:-3}
FLEET=${BENCH_FLEET:-0}
IDLE=${BENCH_IDLE:-2000}
IDLE_STEPS=${BENCH_IDLE_STEPS:-2}
IDLE_SERVERS=${BENCH_IDLE_SERVERS:-1}
IDLE_TARGETS=${BENCH_IDLE_TARGETS:-hallmark-gnutls hallmark-openssl nginx}
TARGETS=${BENCH_TARGETS:-hallmark-gnutls hallmark-openssl nginx}
IDLE_OPEN_S=${BENCH_IDLE_OPEN_S:-300}
# HOLD_S: how long the idle connections may stay silent (the clients' hold, hallmark's
# idle_timeout_s, nginx's keepalive_timeout, the probes' life): longer than the slowest idle run,
# so that no server closes the first step's connections before the last step is measured.
HOLD_S=$((IDLE_STEPS * (IDLE_OPEN_S + 10) + 600))
HANDSHAKES=${BENCH_HANDSHAKES:-1}
HALLMARK_TLS=${BENCH_HALLMARK_TLS:-}

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  scripts/install-deps.sh --bench
  BUILD_DIR=$BUILD_DIR scripts/build.sh
fi
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
HALLMARK=${BENCH_HALLMARK:-$BUILD_DIR/hallmark}
LOADGEN=$BUILD_DIR/bench/hallmark_loadgen
PROBE=$BUILD_DIR/bench/gnutls_idle_probe
if [[ " $IDLE_TARGETS " =~ \ (gnutls|openssl)\  && ! -x $PROBE ]]; then
  echo "bench-server: $PROBE is missing (needs libgnutls28-dev: install-deps.sh --bench)" >&2
  exit 1
fi
for bin in "$HALLMARK" "$LOADGEN"; do
  [[ -x $bin ]] || { echo "bench-server: $bin is missing (build first)" >&2; exit 1; }
done
for tool in nginx taskset curl openssl; do
  command -v "$tool" >/dev/null || { echo "bench-server: $tool missing" >&2; exit 1; }
done
for target in $TARGETS; do
  [[ $target =~ ^(hallmark-openssl|hallmark-gnutls|nginx)$ ]] ||
    { echo "bench-server: unknown BENCH_TARGETS entry $target" >&2; exit 1; }
done
for target in $IDLE_TARGETS; do
  [[ $target =~ ^(hallmark-openssl|hallmark-gnutls|nginx|gnutls|openssl)$ ]] ||
    { echo "bench-server: unknown BENCH_IDLE_TARGETS entry $target" >&2; exit 1; }
done


WORK=$(mktemp -d /tmp/hallmark-bench-server.XXXXXX)
BENCH_NAME=bench-server
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_require_cores
trap bench_cleanup EXIT
trap 'echo "bench-server: failed at line $LINENO" >&2' ERR

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

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
if [[ $FLEET -gt 0 ]]; then
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n%s\n' \
    'extendedKeyUsage=clientAuth' >fleet.ext
  mkdir -p fleet
  for i in $(seq "$FLEET"); do
    openssl ecparam -name prime256v1 -genkey -noout -out "fleet/$i.key"
    openssl req -new -key "fleet/$i.key" -subj "/O=ACME/CN=FLEET-$i" |
      openssl x509 -req -CA ca/customers/acme/ca.pem -CAkey ca/keys/customer-acme.key \
        -set_serial "$((1000000 + i))" -days 30 -extfile fleet.ext -out "fleet/$i.pem" 2>/dev/null
    echo "$WORK/fleet/$i.pem $WORK/fleet/$i.key"
  done >fleet.txt
fi
openssl pkey -in dev-1.key -pubout -out dev-1.pub
hm registry --db reg.db --registrar-key registrar.key init
hm registry --db reg.db --registrar-key registrar.key add --pubkey dev-1.pub \
  --serial ACME-000001 --owner ACME
MAX_CONN=$((IDLE + 1000 > 10000 ? IDLE + 1000 : 10000))
# tls_table TARGET: the [tls] table of TARGET's config: its TLS library and BENCH_HALLMARK_TLS.
tls_table() {
  local lines=("library = \"${1#hallmark-}\"")
  [[ -z $HALLMARK_TLS ]] || lines+=("$HALLMARK_TLS")
  echo '[tls]'
  printf '%s\n' "${lines[@]}"
}

# config_head TARGET THREADS REUSE_PORT MAX_CONNECTIONS: the tables every config of a hallmark
# target shares (the registry is configured, so each handshake also makes the registry lookup).
config_head() {
  cat <<EOF
[server]
certificate = "server.pem"
private_key = "server.key"
threads = $2
reuse_port = $3
[limits]
idle_timeout_s = $HOLD_S
max_connections = $4
[registry]
db = "reg.db"
registrar_public_key = "registrar.key.pub"
[admin]
listen = "127.0.0.1:0"
$(tls_table "$1")
EOF
}

# group_failed NAME LOG: reports a server (group) that did not start (fails).
group_failed() {
  echo "bench-server: $1 did not start" >&2
  cat "$2" >&2
  return 1
}

# --- hallmark: the server of the handshake runs (and of the idle runs with one process) for each
# hallmark target, started when first needed: one worker thread, a ca listener and a registry
# listener, in TARGET.toml / .out / .log.
declare -A MAIN_PID MAIN_CA_PORT MAIN_REG_PORT MAIN_ADMIN
# start_main TARGET: starts TARGET's server unless it runs already.
start_main() {
  local t=$1 policy port
  [[ -z ${MAIN_PID[$t]:-} ]] || return 0
  {
    config_head "$t" 1 false "$MAX_CONN"
    cat <<EOF
[[listener]]
listen = "127.0.0.1:0"
policy = "ca"
anchors = ["ca/customers/acme/ca.pem"]
[[listener]]
listen = "127.0.0.1:0"
policy = "registry"
EOF
  } >"$t.toml"
  taskset -c 0 "$HALLMARK" serve --config "$t.toml" >"$t.out" 2>"$t.log" &
  MAIN_PID[$t]=$!
  PIDS+=("${MAIN_PID[$t]}")
  wait_for_line "$t.out" '"ready"' "${MAIN_PID[$t]}" || group_failed "$t" "$t.log"
  # The port of each listener in the ready line (keys in any order).
  for policy in ca registry; do
    port=$(grep -o "{[^{}]*\"policy\":\"$policy\"[^{}]*}" "$t.out" |
      grep -o '"listen":"[^"]*' | grep -o '[0-9]*$')
    if [[ $policy == ca ]]; then MAIN_CA_PORT[$t]=$port; else MAIN_REG_PORT[$t]=$port; fi
  done
  MAIN_ADMIN[$t]=$(grep -o '"admin":"[^"]*' "$t.out" | cut -d'"' -f4)
}

# --- nginx: the same server certificate and key, client certificates required and verified up to
# the vendor root (nginx has no partial-chain option), one worker. Own prefix, config, pid and
# logs in $WORK; the system configuration is never read.
mkdir -p nginx/tmp
# nginx_server PORT EXTRA [LISTEN]: one server block; EXTRA adds directives, LISTEN parameters.
nginx_server() {
  cat <<EOF
  server {
    listen 127.0.0.1:$1 ssl${3:-};
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
  keepalive_timeout ${HOLD_S}s;
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
  local who=(--cert dev-1.pem --key dev-1.key)
  [[ -z ${LOAD_DEVICES:-} ]] || who=(--devices "$LOAD_DEVICES")
  local common=(--connect "127.0.0.1:$port" "${who[@]}" --cafile ca/root.pem
    --concurrency "$concurrency" "$@")
  if [[ $WARMUP != 0 ]]; then
    taskset -c 1 "$LOADGEN" "${common[@]}" --duration "$WARMUP" >/dev/null 2>&1 || true
  fi
  taskset -c 1 "$LOADGEN" "${common[@]}" --duration "$duration" --label "$name" \
    "${pid_args[@]}" >"$name.json" 2>"$name.txt" || true
  cat "$name.txt"
}

# serve_variant TARGET NAME THREADS REUSE PORT [MAX_CONNECTIONS]: starts one hallmark process
# of TARGET with a ca listener on PORT and an admin listener on a free port, prints its PID.
serve_variant() {
  {
    config_head "$1" "$3" "$4" "${6:-$MAX_CONN}"
    cat <<EOF
[[listener]]
listen = "127.0.0.1:$5"
policy = "ca"
anchors = ["ca/customers/acme/ca.pem"]
EOF
  } >"$2.toml"
  taskset -c 0 "$HALLMARK" serve --config "$2.toml" >"$2.out" 2>"$2.log" &
  echo $!
}

# variant_runs TARGET: threads or processes (issue 3: OpenSSL 3.0 threads share global locks):
# the ca listener served by one process with two event-loop threads, then by two single-threaded
# processes sharing the port with SO_REUSEPORT; all on core 0, so the figure is the CPU each
# handshake costs. Rows TARGET-ca-threads2 and TARGET-ca-procs2.
variant_runs() {
  local t=$1 port pid pid_a pid_b
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))
    pid=$(serve_variant "$t" "$t-threads2" 2 false "$port")
    PIDS+=("$pid")
    if wait_for_line "$t-threads2.out" '"ready"' "$pid"; then
      break
    fi
  done
  load "$t-ca-threads2" "$port" "$pid"
  stop_pid "$pid"
  pid_a=$(serve_variant "$t" "$t-proc-a" 1 true "$port")
  pid_b=$(serve_variant "$t" "$t-proc-b" 1 true "$port")
  PIDS+=("$pid_a" "$pid_b")
  if wait_for_line "$t-proc-a.out" '"ready"' "$pid_a" &&
    wait_for_line "$t-proc-b.out" '"ready"' "$pid_b"; then
    load "$t-ca-procs2" "$port" "$pid_a $pid_b"
  fi
  stop_pid "$pid_a"
  stop_pid "$pid_b"
  ROWS+=("$t-ca-threads2" "$t-ca-procs2")
}

# The hallmark targets among BENCH_TARGETS, in order; whether nginx is one of them.
HM_TARGETS=()
for target in $TARGETS; do
  [[ $target == nginx ]] || HM_TARGETS+=("$target")
done
[[ " $TARGETS " == *" nginx "* ]] && WITH_NGINX=1 || WITH_NGINX=0
NGINX_PIDS="$NGINX_PID $NGINX_WORKER"

ROWS=()
declare -A METRICS
if [[ $HANDSHAKES == 1 ]]; then
  for t in "${HM_TARGETS[@]}"; do
    start_main "$t"
  done
  echo "== handshakes: ${DURATION}s each, concurrency $CONCURRENCY, servers on core 0, load on core 1"
  for round in $(seq "$ROUNDS"); do
    for t in $TARGETS; do
      if [[ $t == nginx ]]; then
        load "nginx-$round" "$NGINX_PORT" "$NGINX_PIDS"
        load "nginx-notickets-$round" "$((NGINX_PORT + 1))" "$NGINX_PIDS"
        ROWS+=("nginx-$round" "nginx-notickets-$round")
      else
        load "$t-ca-$round" "${MAIN_CA_PORT[$t]}" "${MAIN_PID[$t]}"
        ROWS+=("$t-ca-$round")
      fi
    done
  done
  for t in $TARGETS; do
    if [[ $t == nginx ]]; then
      load nginx-resume "$NGINX_PORT" "$NGINX_PIDS" --resume
      ROWS+=(nginx-resume)
    else
      load "$t-registry" "${MAIN_REG_PORT[$t]}" "${MAIN_PID[$t]}"
      load "$t-ca-resume" "${MAIN_CA_PORT[$t]}" "${MAIN_PID[$t]}" --resume
      ROWS+=("$t-registry" "$t-ca-resume")
    fi
  done
  if [[ $FLEET -gt 0 ]]; then
    for t in $TARGETS; do
      if [[ $t == nginx ]]; then
        LOAD_DEVICES=fleet.txt load nginx-fleet "$NGINX_PORT" "$NGINX_PIDS"
        ROWS+=(nginx-fleet)
      else
        LOAD_DEVICES=fleet.txt load "$t-ca-fleet" "${MAIN_CA_PORT[$t]}" "${MAIN_PID[$t]}"
        ROWS+=("$t-ca-fleet")
      fi
    done
  fi
  for t in "${HM_TARGETS[@]}"; do
    variant_runs "$t"
  done
  # One connection at a time: latency without queueing behind the other connections.
  SHORT=$(awk -v d="$DURATION" 'BEGIN { print (d / 2 > 1) ? d / 2 : 1 }')
  for t in $TARGETS; do
    if [[ $t == nginx ]]; then
      LOAD_CONCURRENCY=1 LOAD_DURATION=$SHORT load nginx-c1 "$NGINX_PORT" "$NGINX_PIDS"
      ROWS+=(nginx-c1)
    else
      LOAD_CONCURRENCY=1 LOAD_DURATION=$SHORT load "$t-ca-c1" "${MAIN_CA_PORT[$t]}" \
        "${MAIN_PID[$t]}"
      ROWS+=("$t-ca-c1")
    fi
  done
  for t in "${HM_TARGETS[@]}"; do
    METRICS[$t]=$(curl -s --max-time 5 "http://${MAIN_ADMIN[$t]}/metrics" || true)
  done
fi

# --- Idle connections
# A server under test is a group of processes listening on one port: GROUP_PORT, GROUP_PIDS
# (whose VmRSS is summed), GROUP_ADMINS (hallmark's admin listeners, for /metrics) and
# GROUP_PROBES (the probes' stdout files, for their stats lines), set by start_group.

# stop_group: stops the processes of the current group.
stop_group() {
  local pid
  for pid in $GROUP_PIDS; do
    stop_pid "$pid"
  done
}

# start_hallmark_group TARGET COUNT: COUNT hallmark processes of TARGET sharing a port
# (reuse_port), named idle-TARGET-1...
start_hallmark_group() {
  local target=$1 name=idle-$1 count=$2 i pid ok
  local per_process=$((IDLE / count + 2000 < 19500 ? IDLE / count + 2000 : 19500))
  for _ in 1 2 3 4 5; do
    GROUP_PORT=$((20000 + RANDOM % 12000))
    GROUP_PIDS="" GROUP_ADMINS="" ok=1
    for i in $(seq "$count"); do
      pid=$(serve_variant "$target" "$name-$i" 1 true "$GROUP_PORT" "$per_process")
      PIDS+=("$pid")
      GROUP_PIDS+=" $pid"
    done
    for i in $(seq "$count"); do
      pid=$(echo "$GROUP_PIDS" | awk -v i="$i" '{ print $i }')
      if ! wait_for_line "$name-$i.out" '"ready"' "$pid"; then
        ok=0
      else
        GROUP_ADMINS+=" $(grep -o '"admin":"[^"]*' "$name-$i.out" | cut -d'"' -f4)"
      fi
    done
    [[ $ok == 0 ]] || return 0
    stop_group
  done
  group_failed "$name" "$name-1.log"
}

# start_nginx_group NAME COUNT: nginx with COUNT workers, each with its own listening socket
# (reuseport); the workers' VmRSS is summed (the master holds no connections).
start_nginx_group() {
  local name=$1 count=$2 master workers
  mkdir -p "$name/tmp"
  for _ in 1 2 3 4 5; do
    GROUP_PORT=$((20000 + RANDOM % 12000))
    cat >"$name/nginx.conf" <<EOF
worker_processes $count;
pid $WORK/$name/nginx.pid;
error_log $WORK/$name/error.log warn;
worker_rlimit_nofile $(ulimit -n);
events {
  worker_connections 19500;
}
http {
  access_log off;
  client_body_temp_path $WORK/$name/tmp/body;
  proxy_temp_path $WORK/$name/tmp/proxy;
  fastcgi_temp_path $WORK/$name/tmp/fastcgi;
  uwsgi_temp_path $WORK/$name/tmp/uwsgi;
  scgi_temp_path $WORK/$name/tmp/scgi;
  keepalive_timeout ${HOLD_S}s;
$(nginx_server "$GROUP_PORT" "" " reuseport")
}
EOF
    taskset -c 0 nginx -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -e "$WORK/$name/error.log" \
      -g 'daemon off;' &
    master=$!
    PIDS+=("$master")
    for _ in $(seq 50); do
      GROUP_PIDS=$(cat "/proc/$master/task/$master/children" 2>/dev/null || true)
      if [[ $(echo "$GROUP_PIDS" | wc -w) -ge $count ]] &&
        curl -s -o /dev/null --max-time 2 --cacert ca/root.pem --cert dev-1.pem \
          --key dev-1.key "https://localhost:$GROUP_PORT/v1/hello"; then
        GROUP_PIDS=$(cat "/proc/$master/task/$master/children")
        read -ra workers <<<"$GROUP_PIDS"
        PIDS+=("${workers[@]}")
        return 0
      fi
      kill -0 "$master" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$master"
  done
  group_failed "$name" "$name/error.log"
}

# start_probe_group NAME TLS COUNT: COUNT gnutls_idle_probe processes (--tls TLS) on one port.
start_probe_group() {
  local name=$1 tls=$2 count=$3 i pid ok
  for _ in 1 2 3 4 5; do
    GROUP_PORT=$((20000 + RANDOM % 12000))
    GROUP_PIDS="" GROUP_PROBES="" ok=1
    for i in $(seq "$count"); do
      taskset -c 0 "$PROBE" --tls "$tls" --port "$GROUP_PORT" --reuse-port --cert server.pem \
        --key server.key --ca ca/customers/acme/ca.pem --duration "$HOLD_S" \
        >"$name-$i.out" 2>"$name-$i.log" &
      pid=$!
      PIDS+=("$pid")
      GROUP_PIDS+=" $pid"
      GROUP_PROBES+=" $name-$i.out"
      wait_for_line "$name-$i.out" '"ready"' "$pid" || ok=0
    done
    [[ $ok == 0 ]] || return 0
    stop_group
  done
  group_failed "$name" "$name-1.log"
}

# start_group TARGET: the server group for one BENCH_IDLE_TARGETS entry. With one server process,
# hallmark-gnutls, hallmark-openssl and nginx are the servers of the handshake runs.
start_group() {
  GROUP_ADMINS="" GROUP_PROBES=""
  case $1 in
    hallmark-openssl | hallmark-gnutls)
      if [[ $IDLE_SERVERS == 1 ]]; then
        start_main "$1"
        GROUP_PORT=${MAIN_CA_PORT[$1]} GROUP_PIDS=${MAIN_PID[$1]} GROUP_ADMINS=${MAIN_ADMIN[$1]}
      else
        start_hallmark_group "$1" "$IDLE_SERVERS"
      fi
      ;;
    nginx)
      if [[ $IDLE_SERVERS == 1 ]]; then
        GROUP_PORT=$NGINX_PORT GROUP_PIDS=$NGINX_WORKER
      else
        start_nginx_group idle-nginx "$IDLE_SERVERS"
      fi
      ;;
    gnutls | openssl) start_probe_group "idle-$1" "$1" "$IDLE_SERVERS" ;;
    *)
      echo "bench-server: unknown BENCH_IDLE_TARGETS entry $1" >&2
      return 1
      ;;
  esac
}

# group_rss: the summed VmRSS of GROUP_PIDS, in KiB.
group_rss() {
  local pid total=0
  for pid in $GROUP_PIDS; do
    total=$((total + $(rss_kib "$pid")))
  done
  echo "$total"
}

# server_view: what the servers themselves say they hold, to check that the idle connections
# are really up and authenticated: established sockets on the server's port (ss), and hallmark's
# /metrics (open connections, successful handshakes) or the probes' last stats line.
server_view() {
  local established admin metrics active=0 handshakes=0 out
  established=$(ss -Htn state established "( sport = :$GROUP_PORT )" | wc -l)
  for admin in $GROUP_ADMINS; do
    metrics=$(curl -s --max-time 5 "http://$admin/metrics" || true)
    active=$((active + $(echo "$metrics" | awk '/^hallmark_connections_active / { print $2 }')))
    handshakes=$((handshakes + $(echo "$metrics" |
      awk '/^hallmark_handshakes_total/ { n += $2 } END { print n + 0 }')))
  done
  for out in $GROUP_PROBES; do
    active=$((active + $(grep '"stats"' "$out" | tail -1 | grep -o '"open":[0-9]*' | cut -d: -f2)))
    handshakes=$((handshakes + $(grep '"stats"' "$out" | tail -1 |
      grep -o '"handshakes":[0-9]*' | cut -d: -f2)))
  done
  if [[ -n $GROUP_ADMINS$GROUP_PROBES ]]; then
    echo "server: $established established, $active open, $handshakes handshakes accepted" \
      "since start"
  else
    echo "server: $established established"
  fi
}

# idle NAME: opens BENCH_IDLE connections to the current group in BENCH_IDLE_STEPS client
# processes, reads the servers' summed VmRSS after each step, then closes them all. A connection
# counts once its client got 200 for GET /v1/hello over it.
IDLE_ROWS=()
idle() {
  local name=$1
  local per=$((IDLE / IDLE_STEPS)) held=0 step pid
  local counts=() rss=() clients=()
  counts+=(0)
  rss+=("$(group_rss)")
  for step in $(seq "$IDLE_STEPS"); do
    taskset -c 1 "$LOADGEN" --connect "127.0.0.1:$GROUP_PORT" \
      --source "127.0.0.$((10 + step))" --cert dev-1.pem --key dev-1.key --cafile ca/root.pem \
      --concurrency "$CONCURRENCY" --idle "$per" --hold "$HOLD_S" --duration "$IDLE_OPEN_S" \
      --label "$name-idle-$step" >"$name-idle-$step.json" 2>"$name-idle-$step.txt" &
    pid=$!
    PIDS+=("$pid")
    clients+=("$pid")
    if ! wait_for_line "$name-idle-$step.json" '"holding"' "$pid" $((IDLE_OPEN_S + 10)); then
      echo "bench-server: idle step $step against $name did not complete" >&2
      cat "$name-idle-$step.txt" >&2
      break
    fi
    held=$((held + $(jget "$name-idle-$step.json" idle)))
    sleep 1  # let the server finish the last handshakes' cleanup before reading VmRSS
    counts+=("$held")
    rss+=("$(group_rss)")
    echo "  $name step $step: $held held (hello answered 200), $(server_view)," \
      "RSS ${rss[-1]} KiB"
  done
  for pid in "${clients[@]}"; do
    stop_pid "$pid"
  done
  local n=${#counts[@]}
  local first=1
  [[ $n -gt 2 ]] || first=0
  IDLE_ROWS+=("$(awk -v name="$name" -v c0="${counts[$first]}" -v c1="${counts[$n - 1]}" \
    -v r0="${rss[$first]}" -v r1="${rss[$n - 1]}" -v base="${rss[0]}" -v held="$held" \
    -v procs="$(echo "$GROUP_PIDS" | wc -w)" 'BEGIN {
      slope = (c1 > c0) ? (r1 - r0) / (c1 - c0) : 0
      printf "%-16s %5d %9d %11d %11d %9d..%-6d %10.1f\n", name, procs, held, base, r1, c0, c1,
             slope }')")
}
if [[ $IDLE -gt 0 ]]; then
  echo "== idle connections: $IDLE per server in $IDLE_STEPS steps, $IDLE_SERVERS server" \
    "process(es) each"
  for target in $IDLE_TARGETS; do
    start_group "$target"
    idle "$target"
    if [[ $IDLE_SERVERS != 1 || $target == gnutls || $target == openssl ]]; then
      stop_group
    fi
  done
fi

# --- Report
if [[ ${#ROWS[@]} -gt 0 ]]; then
  W=22  # the run column: today's width, wider for longer run names
  for r in "${ROWS[@]}"; do
    [[ ${#r} -le $W ]] || W=${#r}
  done
  echo
  echo "== Server CPU per mutual-TLS 1.3 handshake + GET /v1/hello (lower is better)"
  echo "   (full handshakes, except the -resume rows, which reuse sessions the server offers)"
  printf "%-${W}s %5s %9s %6s %7s %7s %7s %7s %7s %7s %7s %9s %7s\n" run conc completed failed \
    rate/s p50_ms p90_ms p99_ms max_ms srv_cpu lg_cpu us/hello resumed
  for r in "${ROWS[@]}"; do
    f=$r.json
    [[ -s $f ]] || { echo "$r: no result (see $r.txt)"; continue; }
    awk -v r="$r" -v conc="$(jget "$f" concurrency)" -v c="$(jget "$f" completed)" \
      -v fl="$(jget "$f" failed)" -v lg="$(jget "$f" client_cpu_s)" -v t="$(jget "$f" elapsed_s)" \
      -v rate="$(jget "$f" rate_per_s)" -v p50="$(jget "$f" latency_us_p50)" \
      -v p90="$(jget "$f" latency_us_p90)" -v p99="$(jget "$f" latency_us_p99)" \
      -v mx="$(jget "$f" latency_us_max)" -v u="$(jget "$f" server_cpu_util)" \
      -v us="$(jget "$f" server_cpu_us_per_handshake)" -v res="$(jget "$f" resumed)" \
      -v w="$W" 'BEGIN {
        printf "%-" w "s %5d %9d %6d %7.0f %7.2f %7.2f %7.2f %7.2f %6.0f%% %6.0f%% %9.0f %7d\n",
               r, conc, c, fl, rate, p50 / 1000, p90 / 1000, p99 / 1000, mx / 1000, 100 * u,
               (t > 0 ? 100 * lg / t : 0), us, res }'
  done
  for t in "${HM_TARGETS[@]}"; do
    [[ $WITH_NGINX == 1 ]] || break
    for round in $(seq "$ROUNDS"); do
      awk -v h="$(jget "$t-ca-$round.json" server_cpu_us_per_handshake)" \
        -v n="$(jget "nginx-$round.json" server_cpu_us_per_handshake)" \
        -v nt="$(jget "nginx-notickets-$round.json" server_cpu_us_per_handshake)" \
        -v t="$t" -v round="$round" 'BEGIN {
          if (h > 0) printf "ratio nginx/%s (ca policy), round %d: %.2fx" \
            " (nginx without session tickets: %.2fx)\n", t, round, n / h, nt / h }'
    done
    awk -v h="$(jget "$t-registry.json" server_cpu_us_per_handshake)" \
      -v n="$(jget nginx-1.json server_cpu_us_per_handshake)" -v t="$t" 'BEGIN {
        if (h > 0) printf "ratio nginx/%s (registry policy): %.2fx\n", t, n / h }'
  done
  for t in "${HM_TARGETS[@]}"; do
    if [[ $(jget "$t-ca-resume.json" resumed) == 0 ]]; then
      echo "$t resumed no session (offered: $(jget "$t-ca-resume.json" sessions_offered))"
    fi
    echo "$t /metrics, whole run:" \
      "$(echo "${METRICS[$t]}" | grep -E '^hallmark_(handshakes|handshake_failures)_total' |
        grep -v ' 0$' | tr '\n' ' ')"
  done
fi
if [[ ${#IDLE_ROWS[@]} -gt 0 ]]; then
  echo
  echo "== Server RSS per idle authenticated connection (slope between the step counts)"
  printf "%-16s %5s %9s %11s %11s %17s %10s\n" server procs held rss0_KiB rss_KiB slope_over \
    KiB/conn
  printf "%s\n" "${IDLE_ROWS[@]}"
fi
echo
echo "Shared machine: other work on either core is noise. Load average now:" \
  "$(cut -d" " -f1-3 /proc/loadavg)"
