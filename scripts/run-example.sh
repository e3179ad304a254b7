#!/usr/bin/env bash
# Installs dependencies, builds, and runs the car factory example on embedded SQLite at
# http://127.0.0.1:8080 (data in ./data/cars.db). Extra arguments go to `cars serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVEBASE_TESTS=OFF -DLIVEBASE_BENCH=OFF
cmake --build build/release --target cars livebase_cli
# The console at /_/ (server.console_dir defaults to console/dist under the working directory).
(cd console && npm ci --no-audit --no-fund && npm run build)
exec build/release/examples/cars/cars serve --log-format text "$@"
