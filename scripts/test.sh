#!/usr/bin/env bash
# Installs dependencies, builds and runs every test: the suite plain, the suite under
# ASan+UBSan, and a short run of every fuzz target. Exits non-zero on any failure.
set -euo pipefail
set -o pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
# ccache hits across clones at other paths (CI builds a fresh clone).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
export CTEST_OUTPUT_ON_FAILURE=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_suite() {  # name, extra cmake args...
  local name=$1; shift
  echo "=== build: $name"
  cmake -S . -B "build/$name" -G Ninja -DLIVEBASE_BENCH=ON "$@" >/dev/null
  cmake --build "build/$name" -j "$jobs"
  echo "=== test: $name"
  (cd "build/$name" && ctest -j "$jobs" --timeout 300) 2>&1 | tee "build/$name/ctest.log"
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of" "build/$name/ctest.log" | tail -1)
  local total failed
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  failed=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  total_all=$((total_all + total)); failed_all=$((failed_all + failed))
}
total_all=0; failed_all=0

run_suite test -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite asan -DCMAKE_BUILD_TYPE=Debug -DLIVEBASE_SANITIZE=ON -DLIVEBASE_BENCH=OFF

echo "=== fuzz"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
echo "=== all tests passed"
echo "$((total_all - failed_all)) passed, $failed_all failed"
