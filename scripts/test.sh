#!/usr/bin/env bash
# Installs dependencies, builds and runs every test: the C++ suite plain (on SQLite, and the
# store-backed suites again on a private PostgreSQL 15), the C++ suite under ASan+UBSan, the JS
# client's suite, the API schema validation and the console's browser tests against the real
# server, and a short run of every fuzz target. Exits non-zero on any failure.
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

# A private PostgreSQL (never the system service) for the "pg." tests, stopped on exit.
pg_dir=$(mktemp -d /tmp/livebase-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'scripts/pg.sh stop "$pg_dir"' EXIT
LIVEBASE_TEST_PG_URL=$(scripts/pg.sh start "$pg_dir" "$pg_port")
export LIVEBASE_TEST_PG_URL
echo "=== PostgreSQL: $LIVEBASE_TEST_PG_URL"

total_all=0; failed_all=0
count() {  # passed failed
  total_all=$((total_all + $1 + $2)); failed_all=$((failed_all + $2))
}

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
  count $((total - failed)) "$failed"
}

# node --test prints "# pass N" and "# fail N"; a suite that failed without saying counts as one
# failure (the run goes on to the next suite and fails at the end).
run_node_suite() {  # name, command...
  local name=$1; shift
  echo "=== test: $name"
  local log="build/$name.log"
  set +e
  LIVEBASE_BIN="$PWD/build/test/examples/cars/cars" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local pass fail
  pass=$(grep -E "^# pass [0-9]+" "$log" | tail -1 | awk '{print $3}' || true)
  fail=$(grep -E "^# fail [0-9]+" "$log" | tail -1 | awk '{print $3}' || true)
  # The browser suite prints "browser tests: passed (N checks)".
  [ -n "$pass" ] || pass=$(grep -oE "passed \([0-9]+ checks\)" "$log" | tail -1 | grep -oE "[0-9]+" || true)
  pass=${pass:-0}; fail=${fail:-0}
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  count "$pass" "$fail"
}

run_suite test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIVEBASE_PG_TESTS=ON
run_node_suite js-client clients/js/test.sh
run_node_suite api-schema tests/schema/test.sh
run_node_suite browser tests/browser/run.sh
# Under the sanitizers the PostgreSQL pass covers the store and the task queue (the backend's
# own code); the rest of the PostgreSQL pass runs in the plain build above.
run_suite asan -DCMAKE_BUILD_TYPE=Debug -DLIVEBASE_SANITIZE=ON -DLIVEBASE_BENCH=OFF -DLIVEBASE_PG_TESTS=ON \
  "-DLIVEBASE_PG_TEST_BINARIES=unit_store;unit_tasks"

echo "=== fuzz"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
if [ "$failed_all" -ne 0 ]; then
  echo "$((total_all - failed_all)) passed, $failed_all failed"
  exit 1
fi
echo "=== all tests passed"
echo "$((total_all - failed_all)) passed, $failed_all failed"
