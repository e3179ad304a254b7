#!/usr/bin/env bash
# Memory soak: runs the cars example under a steady mixed load (bench/soak.mjs: writers making
# creates, patches and deletes; ~30 subscribers and live queries over WebSocket and SSE that
# reconnect every 5-30 s; task submitters polling to the end; list readers) and samples the
# server's RSS (total, anonymous, file-backed: /proc/<pid>/status) and open fds every
# SOAK_SAMPLE=30 s into a CSV, then prints the curve.
# Usage: bench/soak.sh <minutes> [sqlite|postgres]
# SOAK_CSV=<file> keeps the samples there (default: soak-<storage>-<date>.csv in the working
# directory); BENCH_BUILD_DIR=<dir> uses (and builds) that tree instead of a Release one in
# build/release; BENCH_PORT sets the server's port (default 18082); SOAK_WRITERS,
# SOAK_SUBSCRIBERS, SOAK_TASKERS, SOAK_READERS size the load (4, 30, 2, 2); SOAK_PAUSE_MS paces
# each writer (default 0: as fast as the server answers).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: bench/soak.sh <minutes> [sqlite|postgres]}
export BENCH_STORAGE=${2:-${BENCH_STORAGE:-sqlite}}
build=${BENCH_BUILD_DIR:-build/release}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  scripts/setup.sh
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=ON >/dev/null
fi
cmake --build "$build" --target cars
csv=${SOAK_CSV:-soak-$BENCH_STORAGE-$(date -u +%Y%m%dT%H%M%S).csv}
sample=${SOAK_SAMPLE:-30}
work=$(mktemp -d)
srv=
load=
cleanup() {
  if [ -n "$load" ]; then kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true; fi
  if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
  bench_storage_stop
  rm -rf "$work"
}
trap cleanup EXIT
port=${BENCH_PORT:-18082}
. bench/lib.sh
bench_storage_start
bench_storage_url "$work" soak
LIVEBASE_STORAGE_URL="$bench_url" LIVEBASE_SERVER_LISTEN="127.0.0.1:$port" LIVEBASE_TASKS_WORKERS=2 \
  "$build"/examples/cars/cars serve --log-level warn 2>"$work/server.log" &
srv=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
token=$(bench_token "$port")
SOAK_SECONDS=$((minutes * 60)) node --experimental-websocket bench/soak.mjs "$port" "$token" &
load=$!
echo "storage $BENCH_STORAGE, server pid $srv, load pid $load, $minutes min, samples every ${sample}s -> $csv"
echo "seconds,rss_kb,anon_kb,file_kb,fds,threads" >"$csv"
start=$(date +%s)
while :; do
  now=$(date +%s)
  kill -0 "$srv" 2>/dev/null || { echo "server died:"; tail -20 "$work/server.log"; exit 1; }
  awk -v t=$((now - start)) -v fds="$(ls /proc/"$srv"/fd | wc -l)" '
    /^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^Threads:/ {th=$2}
    END {printf "%d,%d,%d,%d,%d,%d\n", t, r, a, f, fds, th}' /proc/"$srv"/status >>"$csv"
  [ $((now - start)) -ge $((minutes * 60)) ] && break
  sleep "$sample"
done
grep -c . "$work/server.log" | xargs -I{} echo "server log lines (warn and up): {}"
python3 - "$csv" <<'PY'
import csv, sys
rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(sys.argv[1]))]
print(f"{'min':>6} {'rss MB':>8} {'anon MB':>8} {'file MB':>8} {'fds':>5} {'thr':>4}")
last_min = -1
for r in rows:
    m = r["seconds"] // 60
    if m != last_min and (m % 5 == 0 or r is rows[-1] or m < 5):
        print(f"{r['seconds']/60:6.1f} {r['rss_kb']/1024:8.1f} {r['anon_kb']/1024:8.1f} {r['file_kb']/1024:8.1f} {r['fds']:5d} {r['threads']:4d}")
        last_min = m
def at(minute):
    return min(rows, key=lambda r: abs(r["seconds"] - minute * 60))
last = rows[-1]
marks = [("first", rows[0])] + [(f"min {m}", at(m)) for m in (10, 30) if last["seconds"] >= m * 60] + [("last", last)]
print("  ".join(f"{n}: {r['rss_kb']/1024:.1f} MB" for n, r in marks))
third = [r for r in rows if r["seconds"] >= last["seconds"] * 2 / 3]
if len(third) >= 2 and third[-1]["seconds"] > third[0]["seconds"]:
    slope = (third[-1]["rss_kb"] - third[0]["rss_kb"]) / 1024 / ((third[-1]["seconds"] - third[0]["seconds"]) / 60)
    print(f"slope over the last third: {slope:+.3f} MB/min (rss), fds {third[0]['fds']} -> {third[-1]['fds']}")
PY
