#!/usr/bin/env bash
# Task engine benchmark: submit-only throughput, end-to-end throughput and submit -> finished
# latency of no-op tasks (GET /api/double?foo=1) against the cars example on embedded SQLite
# with 4 in-process workers, driven by bench/tasks_bench.cpp over loopback.
# Usage: bench/tasks_run.sh [tasks=5000] [connections=8] [depth=8] [rounds=3]
# Each round starts a fresh server on a fresh database. Prints every round and the medians.
# BENCH_STORAGE=postgres runs the server on a private PostgreSQL 15 instead (scripts/pg.sh, a temp
# dir, port BENCH_PG_PORT=56432, stopped on exit; a fresh schema per round). BENCH_BUILD_DIR=<dir>
# uses (and builds) that tree instead of a Release one in build/release; BENCH_PORT sets the
# server's port (default 18081).
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-5000}; conns=${2:-8}; depth=${3:-8}; rounds=${4:-3}
build=${BENCH_BUILD_DIR:-build/release}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  scripts/setup.sh
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=ON >/dev/null
fi
cmake --build "$build" --target cars tasks_bench

work=$(mktemp -d)
srv=
stop_server() {
  if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; srv=; fi
}
trap 'stop_server; bench_storage_stop; rm -rf "$work"' EXIT
port=${BENCH_PORT:-18081}
. bench/lib.sh
bench_storage_start
echo "storage: $BENCH_STORAGE"
results=
for round in $(seq "$rounds"); do
  bench_storage_url "$work" bench
  LIVEBASE_STORAGE_URL="$bench_url" LIVEBASE_SERVER_LISTEN="127.0.0.1:$port" \
  LIVEBASE_TASKS_WORKERS=4 \
    "$build"/examples/cars/cars serve --log-level warn 2>"$work/server.log" &
  srv=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
  out=$("$build"/bench/tasks_bench --port "$port" --tasks "$tasks" --conns "$conns" --depth "$depth" \
          --latency-tasks 1000 --latency-conns 4) || { echo "$out"; echo "round $round failed" >&2; exit 1; }
  stop_server
  echo "--- round $round"
  grep -v '^RESULT' <<<"$out"
  results+="$(grep '^RESULT' <<<"$out");"
done
echo "--- medians over $rounds rounds ($tasks tasks, $conns connections x $depth in flight; latency: 1,000 tasks, 4 connections; storage $BENCH_STORAGE)"
python3 - "$results" <<'PY'
import statistics, sys
rows = []
for line in sys.argv[1].split(";"):
    if line.strip():
        rows.append(dict(kv.split("=") for kv in line.split()[1:]))
med = lambda k: statistics.median(float(r[k]) for r in rows)
print(f"submit only: {med('submit_rps'):10.0f} req/s (202)")
print(f"end to end:  {med('e2e_tps'):10.0f} tasks/s")
print(f"latency:     p50 {med('p50_ms'):7.3f} ms   p99 {med('p99_ms'):7.3f} ms   (submit -> finished)")
PY
