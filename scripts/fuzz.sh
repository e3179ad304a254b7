#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for FUZZ_SECONDS seconds
# (default 20) from the committed seeds in fuzz/seeds/<target>/. Exits non-zero when a target
# fails to build or a fuzzer finds a crash; the reproducer is left in the build dir.
#
#   scripts/fuzz.sh [target...]        # default: every target
#   FUZZ_SECONDS=60 FUZZ_BUILD_DIR=build/fuzz scripts/fuzz.sh config_fuzz
#
# Writes only under the build dir: the seeds are copied to a scratch corpus there.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
build_dir=${FUZZ_BUILD_DIR:-build/fuzz}
cc=${FUZZ_CC:-clang-14}
cxx=${FUZZ_CXX:-clang++-14}
jobs=${FUZZ_JOBS:-$(nproc)}
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(config_fuzz query_params_fuzz record_fuzz ws_frame_fuzz credentials_fuzz http_request_fuzz ws_wire_fuzz cron_fuzz)
fi

echo "=== fuzz: configure $build_dir"
CC=$cc CXX=$cxx cmake -S fuzz -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
echo "=== fuzz: build ${targets[*]}"
cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1

failed=()
for t in "${targets[@]}"; do
  work="$build_dir/run/$t"
  corpus="$work/corpus"
  artifacts="$work/artifacts"
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "fuzz/seeds/$t" ]; then
    cp fuzz/seeds/"$t"/* "$corpus"/
  fi
  echo "=== fuzz: $t for ${seconds}s"
  if "$build_dir/$t" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$work/log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done" "$work/log" | tr '\n' ' '
    echo
  else
    echo "!!! $t failed; last lines of $work/log:"
    tail -40 "$work/log"
    ls "$artifacts" || true
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "=== fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "=== fuzz: all targets ran ${seconds}s without a crash"
