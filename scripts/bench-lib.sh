# shellcheck shell=bash
# Shell helpers shared by the benchmark scripts (sourced, not run). The caller sets BENCH_NAME
# (for messages), HALLMARK (the binary) and WORK (its temporary directory), and keeps the PIDs of
# every process it starts in PIDS; `trap bench_cleanup EXIT` stops them by PID.

PIDS=()  # every process the script started, stopped by PID on exit

# bench_require_cores: the servers run on core 0 and the load on core 1.
bench_require_cores() {
  if [[ $(nproc) -lt 2 ]]; then
    echo "$BENCH_NAME: needs 2 cores (servers on core 0, load on core 1)" >&2
    exit 1
  fi
  # Each connection takes a descriptor on both sides; the machine's hard limit may be the cap.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  wait 2>/dev/null || true
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "$BENCH_NAME: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}

# jget FILE KEY prints a top-level number or string from a load generator's one-line JSON.
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

hm() { "$HALLMARK" "$@" >/dev/null; }
