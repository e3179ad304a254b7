#!/usr/bin/env bash
# End-to-end browser tests of the console (/_/) against the real cars example server.
#
#   tests/browser/run.sh
#
# Environment:
#   LIVEBASE_BIN   the cars binary (default build/test/examples/cars/cars, relative to the repo root)
#   CHROMIUM       the browser (default /usr/bin/chromium; Debian: apt-get install -y chromium)
#   CARS_STEP_MS   duration of each of the build task's three steps (default 1500)
#   SHOT_DIR       where the screenshots go (default build/browser-shots under the repo root;
#                  emptied first): one per step and viewport width, and the failures'
#   WIDTHS         viewport widths (default "1280 800")
#   KEEP_TMP=1     keep the temp dir (config, database, server log)
#
# It builds the console when its sources are newer than console/dist, starts the server on a
# free 127.0.0.1 port with a temp database (throttling off, console_dir = console/dist),
# creates a user with `cars users create`, and runs console.test.mjs in headless Chromium.
# Exit status: 0 when every check passed. The server and the browser are always stopped.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="${LIVEBASE_BIN:-build/test/examples/cars/cars}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
# The server refuses unknown LIVEBASE_* variables: ours must not reach it.
unset LIVEBASE_BIN
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { printf '[browser-tests] %s\n' "$*" >&2; }

[ -x "$BIN" ] || { log "no cars binary at $BIN (build it, or set LIVEBASE_BIN)"; exit 2; }
[ -x "$CHROMIUM" ] || { log "no Chromium at $CHROMIUM (Debian: apt-get install -y chromium)"; exit 2; }
command -v node >/dev/null || { log "node is required"; exit 2; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/lb-browser.XXXXXX")"
SHOTS="${SHOT_DIR:-$ROOT/build/browser-shots}"
SERVER_PID=""
TEST_PID=""
cleanup() {
  local rc=$?
  if [ -n "$TEST_PID" ] && kill -0 "$TEST_PID" 2>/dev/null; then
    # The test closes its browser on SIGTERM; if it does not end, kill it (Chromium exits
    # when its control pipe to the test closes).
    kill -TERM "$TEST_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$TEST_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$TEST_PID" 2>/dev/null || true
    wait "$TEST_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    log "failed (exit $rc); server log: $TMP/server.log; screenshots: $SHOTS"
    [ -f "$TMP/server.log" ] && tail -n 20 "$TMP/server.log" >&2 || true
  elif [ "${KEEP_TMP:-0}" != 1 ]; then
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the console ---------------------------------------------------------------------------
CONSOLE="$ROOT/console"
DIST_INDEX="$CONSOLE/dist/index.html"
needs_build=0
if [ ! -f "$DIST_INDEX" ]; then
  needs_build=1
elif [ -n "$(find "$CONSOLE/src" "$CONSOLE/index.html" "$CONSOLE/vite.config.ts" "$CONSOLE/package.json" \
              "$ROOT/clients/js/src" -newer "$DIST_INDEX" -print -quit 2>/dev/null)" ]; then
  needs_build=1
fi
if [ "$needs_build" = 1 ]; then
  log "building the console"
  if [ ! -d "$CONSOLE/node_modules" ]; then (cd "$CONSOLE" && npm ci --no-audit --no-fund >&2); fi
  (cd "$CONSOLE" && npm run build >&2)
fi
[ -f "$DIST_INDEX" ] || { log "console build produced no $DIST_INDEX"; exit 1; }

if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -d "$HERE/node_modules/axe-core" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund >&2)
fi

# ---- the server ----------------------------------------------------------------------------
rm -rf "$SHOTS" && mkdir -p "$SHOTS"
PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();})')"
# The example's own file with the address, a temp database, the console and no throttling.
sed -e "s|^listen = .*|listen = \"127.0.0.1:$PORT\"\nconsole_dir = \"$ROOT/console/dist\"|" \
    -e "s|^url = .*|url = \"sqlite:$TMP/cars.db\"|" \
    -e 's|^signup = .*|signup = true\nthrottle.anonymous = "unlimited"\nthrottle.user = "unlimited"|' \
    "$ROOT/examples/cars/cars.toml" > "$TMP/cars.toml"

USER_NAME="e2e-user"
USER_PASS="e2e-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
(cd "$TMP" && printf '%s\n' "$USER_PASS" | "$BIN" -c "$TMP/cars.toml" users create "$USER_NAME" --password-stdin >"$TMP/users.log" 2>&1) \
  || { cat "$TMP/users.log" >&2; log "could not create the test user"; exit 1; }

log "starting $BIN on 127.0.0.1:$PORT"
(cd "$TMP" && exec env CARS_STEP_MS="${CARS_STEP_MS:-1500}" "$BIN" serve -c "$TMP/cars.toml" >"$TMP/server.log" 2>&1) &
SERVER_PID=$!

node -e '
  const url = process.argv[1], deadline = Date.now() + 20000;
  (async () => {
    for (;;) {
      try { const r = await fetch(url); if (r.ok) process.exit(0); } catch {}
      if (Date.now() > deadline) { console.error("server not healthy at " + url); process.exit(1); }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();' "http://127.0.0.1:$PORT/api/health"
kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited"; exit 1; }

# The console must be served by the server itself.
node -e '
  (async () => {
    const r = await fetch(process.argv[1]);
    const t = await r.text();
    if (!r.ok || !t.includes("/_/assets/")) { console.error(`GET ${process.argv[1]} -> ${r.status}; not the console build (server.console_dir support missing?)`); process.exit(1); }
  })();' "http://127.0.0.1:$PORT/_/"

# ---- the browser ---------------------------------------------------------------------------
log "running console.test.mjs in $CHROMIUM"
CONSOLE_URL="http://127.0.0.1:$PORT/_/" LB_USER="$USER_NAME" LB_PASS="$USER_PASS" SHOT_DIR="$SHOTS" CHROMIUM="$CHROMIUM" \
  timeout --kill-after=10 600 node "$HERE/console.test.mjs" &  # bounded: a hung browser fails the run
TEST_PID=$!
wait "$TEST_PID"
TEST_PID=""
