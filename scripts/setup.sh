#!/usr/bin/env bash
# Installs livebase's dependencies from Debian 12 packages (idempotent: does nothing when
# everything is already installed).
#
#   scripts/setup.sh --run    what building and running needs (scripts/run-example.sh)
#   scripts/setup.sh          that, plus what the tests need (scripts/test.sh): GoogleTest,
#                             Google Benchmark, clang for the fuzz targets, wrk, PostgreSQL 15
#                             and Chromium
set -euo pipefail

mode=all
case "${1:-}" in
  --run) mode=run ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--run]" >&2; exit 2 ;;
esac

# Building and running: the compiler and build tools, the libraries livebase links, and the
# tools the README's tour uses (curl, python3).
run_packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  libsqlite3-dev libtoml11-dev libcli11-dev libsodium-dev libpq-dev
  zlib1g-dev        # permessage-deflate (realtime.deflate)
  libjemalloc-dev   # the server's allocator (a third less CPU per task than glibc's malloc)
  libhowardhinnant-date-dev tzdata   # schedules' time zones
  curl python3
)
test_packages=(
  ccache git
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev   # the fuzz targets (libFuzzer)
  wrk
  postgresql-15   # the tests start a private server (scripts/pg.sh); the system service is not used
  chromium        # the console's browser tests (playwright-core drives Debian's Chromium)
)
packages=("${run_packages[@]}")
if [ "$mode" = all ]; then packages+=("${test_packages[@]}"); fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node.js and npm build the console (and run the JS client's and the browser tests). The
# machine image provides Node 20; Debian's own package is the fallback when none is installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
