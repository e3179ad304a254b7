#!/usr/bin/env bash
# Records benchmark: GET by id (anonymous, and with a Bearer token: the auth path's cost), a
# filtered list (20 rows) and POST create against the cars example on embedded SQLite with 1,000
# rows, driven by wrk over loopback.
# Usage: bench/run.sh [seconds-per-run=10] [connections=32] [rounds=3]
# BENCH_STORAGE=postgres runs the server on a private PostgreSQL 15 instead (scripts/pg.sh, a temp
# dir, port BENCH_PG_PORT=56432, stopped on exit; a fresh schema per run). BENCH_PORT sets the
# server's port (default 18080).
# Prints one line per run and the median req/s, p50 and p99 per scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; conns=${2:-32}; rounds=${3:-3}
# BENCH_BUILD_DIR=<dir> uses (and builds) that tree instead of a Release one in build/release.
build=${BENCH_BUILD_DIR:-build/release}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  scripts/setup.sh
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=OFF >/dev/null
fi
cmake --build "$build" --target cars
. bench/lib.sh

work=$(mktemp -d)
srv=
trap 'if [ -n "$srv" ]; then kill $srv 2>/dev/null || true; wait $srv 2>/dev/null || true; fi; bench_storage_stop; rm -rf "$work"' EXIT
port=${BENCH_PORT:-18080}
bench_storage_start
echo "storage: $BENCH_STORAGE"
bench_storage_url "$work" bench
LIVEBASE_STORAGE_URL="$bench_url" LIVEBASE_SERVER_LISTEN="127.0.0.1:$port" \
  "$build"/examples/cars/cars serve --log-level warn 2>"$work/server.log" &
srv=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
LIVEBASE_BENCH_TOKEN=$(bench_token "$port")
export LIVEBASE_BENCH_TOKEN

# 1,000 rows
python3 - "$port" "$work/ids" "$LIVEBASE_BENCH_TOKEN" <<'PY'
import json, sys, urllib.request
port, out, token = sys.argv[1], sys.argv[2], sys.argv[3]
brands = ["Ford", "Opel", "Fiat", "Tesla", "Volvo"]
ids = []
for i in range(1000):
    body = json.dumps({"brand": brands[i % 5], "model": 1990 + i % 30, "color": "Red", "vin": f"VIN{i:05d}"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/cars", body, {"Content-Type": "application/json", "Authorization": "Bearer " + token})
    ids.append(json.load(urllib.request.urlopen(req))["id"])
open(out, "w").write("\n".join(ids) + "\n")
PY

export LIVEBASE_BENCH_IDS="$work/ids"
declare -A results
# Reads first, on the 1,000-row table; creates last, since they grow it. get_by_id and
# get_by_id_auth alternate round by round, so that both see the same machine noise.
scenarios="get_by_id get_by_id_auth list create"
for scenario in get_by_id:get_by_id_auth list create; do
  for round in $(seq "$rounds"); do
   for one in ${scenario//:/ }; do
    args=(-s "bench/wrk/${one%_auth}.lua")
    [ "$one" = get_by_id_auth ] && args+=(-H "Authorization: Bearer $LIVEBASE_BENCH_TOKEN")
    out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "${args[@]}" "http://127.0.0.1:$port")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "round $round $one: $rps req/s  p50 $p50  p99 $p99  ${non2xx:+non-2xx $non2xx}"
    results[$one]+="$rps $p50 $p99;"
   done
  done
done
echo "--- medians over $rounds rounds (${secs}s, $conns connections, 1 wrk thread; storage $BENCH_STORAGE)"
for scenario in $scenarios; do
  python3 - "$scenario" "${results[$scenario]}" <<'PY'
import statistics, sys
def ms(t):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if t.endswith(unit) and (unit != "s" or not t.endswith("ms") and not t.endswith("us")):
            return float(t[: -len(unit)]) * f
    return float(t)
rows = [r.split() for r in sys.argv[2].split(";") if r.strip()]
rps = statistics.median(float(r[0]) for r in rows)
p50 = statistics.median(ms(r[1]) for r in rows)
p99 = statistics.median(ms(r[2]) for r in rows)
print(f"{sys.argv[1]:>10}: {rps:10.0f} req/s   p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
PY
done
