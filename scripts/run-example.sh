#!/usr/bin/env bash
# Installs what building and running needs, builds the car factory example and the console,
# and serves them on embedded SQLite at http://127.0.0.1:8080 (the console at /_/, data in
# ./data/cars.db). Extra arguments go to `cars serve`. The tests' own dependencies are
# installed by scripts/test.sh, not here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --run

# The console (console/dist, served at /_/) builds in the background while the server compiles;
# it is rebuilt only when its sources or the client's changed.
console_log=build/console-build.log
mkdir -p build
console_pid=""
if [ ! -f console/dist/index.html ] || [ -n "$(find console/src console/index.html console/package.json \
     console/vite.config.ts clients/js/src -newer console/dist/index.html -print -quit)" ]; then
  echo "run-example: building the console in the background (log: $console_log)"
  (cd console && npm ci --no-audit --no-fund && npm run build) >"$console_log" 2>&1 &
  console_pid=$!
fi

# -O2 rather than CMake's Release -O3: about as fast to run, quicker to build.
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
  -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=OFF >/dev/null
cmake --build build/release --target cars

if [ -n "$console_pid" ]; then
  if ! wait "$console_pid"; then
    cat "$console_log" >&2
    echo "run-example: the console did not build (above); the server would answer 404 at /_/" >&2
    exit 1
  fi
  echo "run-example: console built (console/dist)"
fi
exec build/release/examples/cars/cars serve --log-format text "$@"
