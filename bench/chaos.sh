#!/usr/bin/env bash
# kill -9 chaos: runs the cars example under writers, SSE subscribers and tasks, kills it with
# SIGKILL <cycles> times (after 2-6 s of load each), restarts it, then checks that every
# acknowledged write is there, every subscriber got exactly the change log (no loss, no
# duplicate, in order) and every acknowledged task is final once (bench/chaos.py).
# Usage: bench/chaos.sh [cycles=5] [sqlite|postgres]
# Server logs: one file per cycle in CHAOS_KEEP=<dir> (default: a temp dir, kept on a violation).
# BENCH_BUILD_DIR=<dir> uses (and builds) that tree instead of a Release one in build/release;
# BENCH_PORT sets the server's port (default 18083). Exits 1 on a violation.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-5}
export BENCH_STORAGE=${2:-${BENCH_STORAGE:-sqlite}}
build=${BENCH_BUILD_DIR:-build/release}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  scripts/setup.sh
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=ON >/dev/null
fi
cmake --build "$build" --target cars
work=${CHAOS_KEEP:-$(mktemp -d /tmp/lb-chaos.XXXXXX)}
mkdir -p "$work"
srv=
trap 'if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi; bench_storage_stop' EXIT
port=${BENCH_PORT:-18083}
. bench/lib.sh
bench_storage_start
bench_storage_url "$work" chaos
export LIVEBASE_STORAGE_URL="$bench_url" LIVEBASE_SERVER_LISTEN="127.0.0.1:$port" \
  LIVEBASE_TASKS_WORKERS=2 LIVEBASE_TASKS_LEASE=2s
# A first server only to sign up the writers' user (the token outlives the restarts).
"$build"/examples/cars/cars serve --log-level warn 2>"$work/server-0.log" &
srv=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
bench_token "$port" >"$work/token"
kill "$srv"; wait "$srv" || true; srv=
echo "storage $BENCH_STORAGE, $cycles cycles, logs in $work"
status=0
CHAOS_PORT=$port CHAOS_TOKEN_FILE="$work/token" CHAOS_BINARY="$build/examples/cars/cars" CHAOS_WORK="$work" \
  python3 bench/chaos.py "$cycles" || status=$?
if [ "$status" = 0 ] && [ -z "${CHAOS_KEEP:-}" ]; then rm -rf "$work"; fi
exit "$status"
