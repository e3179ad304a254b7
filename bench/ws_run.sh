#!/usr/bin/env bash
# Realtime benchmark against the cars example on embedded SQLite, driven by bench/ws_bench.cpp
# over loopback (client and server share the machine's cores):
#   fan-out:   1, 100, 1,000 and 10,000 sockets subscribed to `cars`, one writing client;
#              events/s delivered and write -> receipt latency p50/p99
#   memory:    server RSS per idle subscribed socket at 10,000 sockets
#   req/reply: `retrieve` over WebSocket, 32 sockets x 8 in flight
# Usage: bench/ws_run.sh [seconds=10] [rounds=3]
# BENCH_BUILD_DIR=<dir> uses (and builds) that tree instead of a Release one in build/release.
# BENCH_PIN=both (default) runs each fan-out scenario twice: shared (client and server on any
# core) and pinned (`taskset`: the client on core 0, the server on core 1, so the server's figure
# is not capped by the client taking its core); BENCH_PIN=0 or 1 runs one of them.
# BENCH_CLIENT=raw (default) or beast: ws_bench's subscribed sockets (raw: plain TCP and a small
# frame parser, about half the client CPU of Beast's stream).
# Each scenario of each round starts a fresh server on a fresh database. Prints every run and
# the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; rounds=${2:-3}
pin_modes=${BENCH_PIN:-both}; [ "$pin_modes" = both ] && pin_modes="0 1"
client=${BENCH_CLIENT:-raw}
cores=$(nproc)
scripts/setup.sh
build=${BENCH_BUILD_DIR:-build/release}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=ON >/dev/null
fi
cmake --build "$build" --target cars ws_bench

work=$(mktemp -d)
srv=
stop_server() {
  if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; srv=; fi
}
trap 'stop_server; rm -rf "$work"' EXIT
port=18082
. bench/lib.sh
ulimit -n "$(ulimit -Hn)"

server_pin=()   # set by run: taskset for the server when pinned
client_pin=()
start_server() {
  stop_server
  rm -f "$work"/bench.db*
  LIVEBASE_STORAGE_URL="sqlite:$work/bench.db" LIVEBASE_SERVER_LISTEN="127.0.0.1:$port" \
  LIVEBASE_TASKS_WORKERS=0 LIVEBASE_SERVER_MAX_CONNECTIONS=20000 \
    "${server_pin[@]}" "$build"/examples/cars/cars serve --log-level warn 2>"$work/server.log" &
  srv=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port/api/health" >/dev/null; then token=$(bench_token "$port"); return; fi
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1
}

results=
run() {  # name, pinned (0/1), ws_bench args...
  local name=$1 pinned=$2; shift 2
  server_pin=(); client_pin=()
  if [ "$pinned" = 1 ]; then
    [ "$cores" -ge 2 ] || { echo "pinned runs need 2 cores" >&2; exit 1; }
    client_pin=(taskset -c 0); server_pin=(taskset -c 1-$((cores - 1)))
    name+="_pinned"
  fi
  start_server
  local out
  out=$("${client_pin[@]}" "$build"/bench/ws_bench --port "$port" --token "$token" --client "$client" "$@") ||
    { echo "$out"; echo "$name failed" >&2; exit 1; }
  echo "--- $name: $(grep -v '^RESULT' <<<"$out" | tr '\n' ' ')"
  results+="$name $(grep '^RESULT' <<<"$out" | cut -d' ' -f2-);"
  server_pin=()
}

for round in $(seq "$rounds"); do
  echo "=== round $round"
  for pinned in $pin_modes; do
    run fanout_1     "$pinned" --mode fanout --sockets 1     --seconds "$secs" --writers 4
    run fanout_100   "$pinned" --mode fanout --sockets 100   --seconds "$secs" --writers 4
    run fanout_1000  "$pinned" --mode fanout --sockets 1000  --seconds "$secs" --writers 4 --rate 1000
    run fanout_10000 "$pinned" --mode fanout --sockets 10000 --seconds "$secs" --writers 1 --rate 10
  done
  start_server
  pk=$(curl -sf -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" -d '{"brand":"Ford"}' \
         "http://127.0.0.1:$port/api/cars" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  out=$("$build"/bench/ws_bench --port "$port" --mode reqreply --sockets 32 --depth 8 --seconds "$secs" --pk "$pk")
  echo "--- reqreply: $(grep -v '^RESULT' <<<"$out" | tr '\n' ' ')"
  results+="reqreply $(grep '^RESULT' <<<"$out" | cut -d' ' -f2-);"
  start_server
  sleep 1
  out=$("$build"/bench/ws_bench --port "$port" --mode idle --sockets 10000 --pid "$srv")
  echo "--- idle_10000: $(grep -v '^RESULT' <<<"$out" | tr '\n' ' ')"
  results+="idle_10000 $(grep '^RESULT' <<<"$out" | cut -d' ' -f2-);"
done
stop_server

echo "=== medians over $rounds rounds (${secs} s per run)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in sys.argv[1].split(";"):
    parts = line.split()
    if parts:
        rows.setdefault(parts[0], []).append(dict(kv.split("=") for kv in parts[1:]))
med = lambda name, k: statistics.median(float(r[k]) for r in rows[name])
for name in [n for base in ("fanout_1", "fanout_100", "fanout_1000", "fanout_10000")
             for n in (base, base + "_pinned") if n in rows]:
    print(f"{name:20s} {med(name,'eps'):12.0f} events/s   p50 {med(name,'p50_ms'):8.2f} ms   "
          f"p99 {med(name,'p99_ms'):8.2f} ms   writes {med(name,'writes'):8.0f}   closed {med(name,'closed'):.0f}")
print(f"reqreply      {med('reqreply','rps'):12.0f} replies/s (32 sockets x 8 in flight)")
print(f"idle_10000    {med('idle_10000','bytes_per_socket')/1024:12.2f} KiB RSS per idle subscribed socket")
PY
