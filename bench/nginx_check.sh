#!/usr/bin/env bash
# Runs the nginx configuration of docs/deploy.md for real: a private PostgreSQL 15 (scripts/pg.sh),
# two `cars serve` nodes on one schema, and nginx in the foreground (not a daemon) with the
# doc's nginx.conf block as written, only its addresses, listen port and file paths replaced.
# Checks, all through nginx:
#   1. GET /api/health answers 200, and requests reach both nodes;
#   2. a browser-like WebSocket upgrade (with Origin) gets 101 and the server's hello;
#   3. WebSocket fan-out: ws_bench subscribers and writers through nginx, events delivered,
#      no socket closed;
#   4. an SSE stream (GET /api/cars/events) delivers each create within a second;
#   5. SIGTERM to node A: the following requests still answer 200 (node B takes them).
# Stops everything it started on exit. Needs nginx (apt-get install nginx).
# Usage: bench/nginx_check.sh   (BENCH_BUILD_DIR as for the other scripts; ports: BENCH_PORT
# for node A, +1 node B, +2 nginx; default 18090; BENCH_PG_PORT default 56432)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BENCH_BUILD_DIR:-build/release}
if [ -z "${BENCH_BUILD_DIR:-}" ]; then
  scripts/setup.sh
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=ON >/dev/null
fi
cmake --build "$build" --target cars ws_bench
command -v nginx >/dev/null || { echo "nginx is not installed" >&2; exit 1; }

BENCH_STORAGE=postgres
. bench/lib.sh
work=$(mktemp -d)
chmod 755 "$work"   # nginx workers run unprivileged
pids=()
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; bench_storage_stop; rm -rf "$work"' EXIT
pa=${BENCH_PORT:-18090}; pb=$((pa + 1)); pn=$((pa + 2))
bench_storage_start
bench_storage_url "$work" nginx

start_node() {  # NAME PORT
  LIVEBASE_STORAGE_URL="$bench_url" LIVEBASE_SERVER_LISTEN="127.0.0.1:$2" LIVEBASE_TASKS_WORKERS=0 \
    "$build"/examples/cars/cars serve --log-level info 2>"$work/$1.log" &
  pids+=($!)
  node_pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$2/api/health" >/dev/null && return 0; sleep 0.1; done
  echo "node $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}
start_node A "$pa"
pid_a=$node_pid
start_node B "$pb"

# The doc's block, from the marker to the closing fence.
awk '/<!-- nginx.conf/ {on=1; next} on && /^```nginx/ {inside=1; next} inside && /^```/ {exit} inside {print}' \
  docs/deploy.md >"$work/doc-nginx.conf"
[ -s "$work/doc-nginx.conf" ] || { echo "no nginx block in docs/deploy.md" >&2; exit 1; }
sed -e "s/10\.0\.0\.11:8080/127.0.0.1:$pa/; s/10\.0\.0\.12:8080/127.0.0.1:$pb/" \
    -e "s/^\( *\)listen 80;/\1listen 127.0.0.1:$pn;/" \
    -e "s|^http {|http {\n    access_log $work/access.log;|" \
    "$work/doc-nginx.conf" >"$work/nginx.conf"
grep -q "127.0.0.1:$pn" "$work/nginx.conf" || { echo "listen line not replaced" >&2; exit 1; }
nginx_args=(-p "$work" -c "$work/nginx.conf" -g "daemon off; pid $work/nginx.pid; error_log $work/error.log warn;")
nginx -t "${nginx_args[@]}" 2>&1 | sed 's/^/nginx -t: /'
nginx "${nginx_args[@]}" &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$pn/api/health" >/dev/null && break; sleep 0.1; done
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$pn -> nodes 127.0.0.1:$pa, 127.0.0.1:$pb"
fail=0
ok() { echo "ok:   $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# 1. health, both nodes reached (round robin; each node logs its requests at info level)
codes=$(for _ in $(seq 20); do curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$pn/api/health"; done | sort | uniq -c | tr '\n' ' ')
[ "$(echo "$codes" | awk '{print $2}')" = 200 ] && [ "$(echo "$codes" | awk '{print $1}')" = 20 ] &&
  ok "20 x GET /api/health through nginx: $codes" || bad "health through nginx: $codes"
na=$(grep -c '"path":"/api/health"' "$work/A.log" || true); nb=$(grep -c '"path":"/api/health"' "$work/B.log" || true)
[ "$na" -gt 0 ] && [ "$nb" -gt 0 ] && ok "both nodes served them (A $na, B $nb)" || bad "not both nodes reached (A $na, B $nb)"

# 2. a browser-like upgrade with Origin = the proxy's own origin
hello=$(curl -s -N --max-time 2 --http1.1 -o - \
  -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
  -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" -H "Origin: http://127.0.0.1:$pn" \
  -D "$work/upgrade.headers" "http://127.0.0.1:$pn/ws" | tr -d '\0' | strings | head -c 300 || true)
status=$(head -1 "$work/upgrade.headers" | tr -d '\r')
if [[ "$status" == *101* ]] && [[ "$hello" == *hello* ]] && [[ "$hello" != *"origin not allowed"* ]]; then
  ok "WebSocket upgrade with Origin through nginx: $status, first frame: ${hello:0:80}"
else
  bad "WebSocket upgrade: '$status' '$hello'"
fi

# 3. fan-out through nginx (subscribers and writers both via nginx, so spread over both nodes)
token=$(bench_token "$pn")
out=$("$build"/bench/ws_bench --port "$pn" --token "$token" --mode fanout --sockets 20 --seconds 3 --writers 2 --rate 50) ||
  bad "ws_bench through nginx: $out"
res=$(grep '^RESULT' <<<"$out")
events=$(sed 's/.*eps=\([0-9.]*\).*/\1/' <<<"$res"); closed=$(sed 's/.*closed=\([0-9]*\).*/\1/' <<<"$res")
writes=$(sed 's/.*writes=\([0-9]*\).*/\1/' <<<"$res")
if [ "$closed" = 0 ] && python3 -c "import sys; sys.exit(0 if float('$events') > 0 else 1)"; then
  ok "ws_bench via nginx: 20 sockets, $writes writes, $(grep -o 'events received: [0-9]*' <<<"$out"), latency $(grep -o 'p50 [0-9.]* ms, p99 [0-9.]* ms' <<<"$out"), none closed"
else
  bad "ws_bench via nginx: $out"
fi

# 4. SSE through nginx: each create arrives within a second
curl -s -N --max-time 20 "http://127.0.0.1:$pn/api/cars/events?brand=Sse" >"$work/sse.out" &
sse=$!
sleep 0.5
late=0
for i in 1 2 3; do
  curl -sf -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"brand\":\"Sse\",\"vin\":\"SSE$i\"}" "http://127.0.0.1:$pn/api/cars" >/dev/null
  for _ in $(seq 10); do [ "$(grep -c '^event: create' "$work/sse.out" || true)" -ge "$i" ] && break; sleep 0.1; done
  [ "$(grep -c '^event: create' "$work/sse.out" || true)" -ge "$i" ] || late=1
done
kill "$sse" 2>/dev/null || true; wait "$sse" 2>/dev/null || true
n=$(grep -c '^event: create' "$work/sse.out" || true)
[ "$late" = 0 ] && [ "$n" = 3 ] && ok "SSE through nginx: 3 creates -> 3 events, each within 1 s" ||
  bad "SSE through nginx: $n events (late=$late): $(head -c 300 "$work/sse.out")"

# 5. drain node A (SIGTERM); requests keep working through nginx
kill -TERM "$pid_a"
wait "$pid_a" 2>/dev/null || true
codes=$(for _ in $(seq 10); do
  curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $token" -d '{"brand":"AfterDrain"}' "http://127.0.0.1:$pn/api/cars"
done | sort | uniq -c | tr '\n' ' ')
[ "$(echo "$codes" | awk '{print $2}')" = 201 ] && [ "$(echo "$codes" | awk '{print $1}')" = 10 ] &&
  ok "node A stopped (SIGTERM): 10 creates through nginx -> $codes" || bad "after stopping A: $codes"

grep -v "worker_connections" "$work/error.log" | grep -E "\[(error|crit|alert|emerg)\]" | grep -v "connect() failed (111" | head -5 |
  sed 's/^/nginx error.log: /' || true
[ "$fail" = 0 ] && echo "nginx check passed" || { echo "nginx check FAILED"; exit 1; }
