#!/usr/bin/env bash
# Scale-out benchmark: several processes on one PostgreSQL (a private PostgreSQL 15 started with
# scripts/pg.sh in a temp dir, stopped on exit), the cars example, driven over loopback.
#
#   fanout_single  one `serve` node; N WebSocket sockets subscribed to `cars` and the writers
#                  (HTTP keep-alive creates) on the same node
#   fanout_cross   two `serve` nodes on the same database (same schema); the N sockets on node A,
#                  the writers on node B: every event crosses the database (B commits, NOTIFY
#                  wakes A, A reads the change log and fans out)
#   tasks_single   one `serve` node with 4 in-process workers: submit and finish on that node
#   tasks_cross    nodes A and B without workers + one `cars worker` process (4 workers):
#                  submit on A, run by the worker process, finished seen on B
#
# Fan-out figures: events/s delivered (all sockets) and write -> receipt latency p50/p99 (the
# writer stamps its send time into the record; the receipt on a socket closes it, so the
# latency covers the request to B, B's commit, the wake-up of A and A's fan-out). Task figures:
# e2e tasks/s (N submissions until all are seen succeeded) and submit -> finished latency
# (tasks_bench --poll-port: long poll of each task on B).
# Every scenario of every round gets a fresh schema; the single- and cross-node scenarios
# alternate within a round, so they see the same machine noise.
#
# Usage: bench/cluster_run.sh [seconds=10] [sockets=100] [rounds=3] [rate=0] [tasks=2000]
#   rate: creates/s asked of the writers in total (0 = as fast as answered); tasks=0 skips the
#   task scenarios.
# Environment: BENCH_BUILD_DIR=<dir> uses (and builds) that tree instead of build/release;
# BENCH_PORT (node A; B is BENCH_PORT+1; default 18083), BENCH_PG_PORT (default 56432),
# BENCH_WRITERS (writer connections, default 4), BENCH_TASKS_FOLLOW (how node B sees tasks
# finish: `events`, the default, an SSE stream of `succeeded` events; `wait`, a long poll each).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; sockets=${2:-100}; rounds=${3:-3}; rate=${4:-0}; tasks=${5:-2000}
writers=${BENCH_WRITERS:-4}
build=${BENCH_BUILD_DIR:-build/release}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  scripts/setup.sh
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=ON >/dev/null
fi
cmake --build "$build" --target cars ws_bench tasks_bench

BENCH_STORAGE=postgres
. bench/lib.sh
work=$(mktemp -d)
pids=()
stop_all() {  # every process this script started, newest first (workers before nodes)
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; bench_storage_stop; rm -rf "$work"' EXIT
port_a=${BENCH_PORT:-18083}; port_b=$((port_a + 1))
ulimit -n "$(ulimit -Hn)"
bench_storage_start
echo "PostgreSQL: $bench_pg_url (private, fsync on)"

# start_node NAME PORT WORKERS: a `cars serve` on the current $bench_url; waits for /api/health.
start_node() {
  local name=$1 port=$2 workers=$3
  LIVEBASE_STORAGE_URL="$bench_url" LIVEBASE_SERVER_LISTEN="127.0.0.1:$port" \
  LIVEBASE_TASKS_WORKERS="$workers" LIVEBASE_SERVER_MAX_CONNECTIONS=20000 \
    "$build"/examples/cars/cars serve --log-level warn 2>>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "node $name did not start" >&2; cat "$work/$name.log" >&2; exit 1
}
start_worker() {  # a `cars worker` process with 4 workers on the current $bench_url
  LIVEBASE_STORAGE_URL="$bench_url" LIVEBASE_TASKS_WORKERS=4 \
    "$build"/examples/cars/cars worker --log-level warn 2>>"$work/worker.log" &
  pids+=($!)
  sleep 0.5
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "worker did not start" >&2; cat "$work/worker.log" >&2; exit 1; }
}

results=
record() {  # NAME OUTPUT
  echo "--- $1: $(grep -v '^RESULT' <<<"$2" | tr '\n' ' ')"
  results+="$1 $(grep '^RESULT' <<<"$2" | cut -d' ' -f2-);"
}
fanout() {  # NAME WRITE_PORT
  local out token
  token=$(bench_token "$2")
  out=$(timeout $((${secs%.*} + 240)) "$build"/bench/ws_bench --port "$port_a" --write-port "$2" --token "$token" \
          --mode fanout --sockets "$sockets" --seconds "$secs" --writers "$writers" --rate "$rate") ||
    { echo "$out"; echo "$1 failed" >&2; exit 1; }
  record "$1" "$out"
}
task_run() {  # NAME POLL_PORT
  local out
  out=$(timeout 600 "$build"/bench/tasks_bench --port "$port_a" --poll-port "$2" --follow "${BENCH_TASKS_FOLLOW:-events}" --tasks "$tasks" \
          --conns 8 --depth 8 --latency-tasks 500 --latency-conns 4) ||
    { echo "$out"; echo "$1 failed" >&2; exit 1; }
  record "$1" "$out"
}

for round in $(seq "$rounds"); do
  echo "=== round $round"
  bench_storage_url "$work" fan; start_node A "$port_a" 0
  fanout fanout_single "$port_a"; stop_all
  bench_storage_url "$work" fan; start_node A "$port_a" 0; start_node B "$port_b" 0
  fanout fanout_cross "$port_b"; stop_all
  if [ "$tasks" -gt 0 ]; then
    bench_storage_url "$work" tsk; start_node A "$port_a" 4
    task_run tasks_single "$port_a"; stop_all
    bench_storage_url "$work" tsk; start_node A "$port_a" 0; start_node B "$port_b" 0; start_worker
    task_run tasks_cross "$port_b"; stop_all
  fi
done

echo "=== medians over $rounds rounds (${secs} s, $sockets sockets, $writers writers, rate ${rate:-0}/s (0 = unpaced); tasks: $tasks, latency 500)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in sys.argv[1].split(";"):
    parts = line.split()
    if parts:
        rows.setdefault(parts[0], []).append(dict(kv.split("=") for kv in parts[1:]))
med = lambda name, k: statistics.median(float(r[k]) for r in rows[name])
for name in ("fanout_single", "fanout_cross"):
    if name in rows:
        print(f"{name:14s} {med(name,'eps'):10.0f} events/s   p50 {med(name,'p50_ms'):8.2f} ms   "
              f"p99 {med(name,'p99_ms'):8.2f} ms   writes {med(name,'writes'):7.0f}   closed {med(name,'closed'):.0f}")
for name in ("tasks_single", "tasks_cross"):
    if name in rows:
        print(f"{name:14s} submit {med(name,'submit_rps'):7.0f} req/s   e2e {med(name,'e2e_tps'):7.0f} tasks/s   "
              f"p50 {med(name,'p50_ms'):8.2f} ms   p99 {med(name,'p99_ms'):8.2f} ms   errors {med(name,'errors'):.0f}")
PY
