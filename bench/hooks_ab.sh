#!/usr/bin/env bash
# A/B of POST /api/cars between two builds of the cars example, both serving at once on fresh
# SQLite files, in alternating 4 s wrk runs (8 pairs), so both see the same machine noise:
#   bench/hooks_ab.sh <build-dir-A> <build-dir-B>
# Prints "pair side req/s" lines and the median B/A ratio. Used to price the example's record
# hooks (a build without them as A, with them as B).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?build dir A}; B=${2:?build dir B}
. bench/lib.sh
work=$(mktemp -d)
LIVEBASE_STORAGE_URL="sqlite:$work/a.db" LIVEBASE_SERVER_LISTEN=127.0.0.1:18101 "$A"/examples/cars/cars serve --log-level warn 2>$work/a.log & pa=$!
LIVEBASE_STORAGE_URL="sqlite:$work/b.db" LIVEBASE_SERVER_LISTEN=127.0.0.1:18102 "$B"/examples/cars/cars serve --log-level warn 2>$work/b.log & pb=$!
trap 'kill $pa $pb 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for p in 18101 18102; do for _ in $(seq 100); do curl -sf http://127.0.0.1:$p/api/health >/dev/null && break; sleep 0.1; done; done
ta=$(bench_token 18101); tb=$(bench_token 18102)
for i in 1 2 3 4 5 6 7 8; do
  for side in a b; do
    if [ $side = a ]; then port=18101; tok=$ta; else port=18102; tok=$tb; fi
    r=$(LIVEBASE_BENCH_TOKEN=$tok wrk -t1 -c32 -d4s -s bench/wrk/create.lua http://127.0.0.1:$port | awk '/Requests\/sec/ {print $2}')
    echo "$i $side $r"
  done
done | tee "$work/runs"
python3 - "$work/runs" <<'PY'
import statistics, sys
d = {}
for line in open(sys.argv[1]):
    i, side, r = line.split()
    d.setdefault(i, {})[side] = float(r)
ratios = [v["b"] / v["a"] for v in d.values() if v.get("a") and v.get("b")]
print("median req/s A %.0f  B %.0f  median B/A per pair %.3f" % (
    statistics.median(v["a"] for v in d.values()), statistics.median(v["b"] for v in d.values()),
    statistics.median(ratios)))
PY
