#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time.
#
#   tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
#
# 1. Builds it: a CMake build of its own in $FUZZ_BUILD_DIR (default build/fuzz), clang,
#    FERMATA_FUZZ=ON (tests/fuzz/CMakeLists.txt; compiler: $FUZZ_CC, default clang).
# 2. Replays every input in tests/fuzz/regressions/TARGET/ (crashers found before): any
#    failure fails the run.
# 3. Fuzzes for SECONDS, starting from the committed seeds tests/fuzz/corpus/TARGET/ plus
#    the working corpus build/fuzz/corpus/TARGET/ (new inputs go there, not into git).
#    Crashes land in build/fuzz/artifacts/TARGET/; copy a crasher into
#    tests/fuzz/regressions/TARGET/ once it is fixed.
# Prints the number of executions; exits non-zero on any crash, leak or sanitizer report.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2; exit 2; }
target=$1 seconds=$2
shift 2
out=${FUZZ_BUILD_DIR:-$root/build/fuzz}
bin=$out/fuzz_$target
seeds=$root/tests/fuzz/corpus/$target
regressions=$root/tests/fuzz/regressions/$target
work=$out/corpus/$target
artifacts=$out/artifacts/$target
mkdir -p "$work" "$artifacts"

if [ ! -f "$out/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$out" -DCMAKE_C_COMPILER="${FUZZ_CC:-clang}" -DCMAKE_C_FLAGS="-g -O1" \
    -DFERMATA_FUZZ=ON -DFERMATA_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$out" --target "fuzz_$target" -j"${JOBS:-2}" >/dev/null

if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
  echo "run.sh: replaying $(ls -A "$regressions" | wc -l) regression inputs"
  "$bin" -runs=0 "$regressions"/* >"$out/$target.regressions.log" 2>&1 || {
    cat "$out/$target.regressions.log" >&2
    echo "run.sh: a regression input fails again" >&2
    exit 1
  }
fi

corpora=("$work")
[ -d "$seeds" ] && corpora+=("$seeds")
echo "run.sh: fuzzing $target for ${seconds}s"
log=$out/$target.log
set +e
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" "${corpora[@]}" >"$log" 2>&1
rc=$?
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
echo "run.sh: $target: ${execs:-?} executions in ${seconds}s, exit $rc (log: $log)"
if [ $rc -ne 0 ]; then
  grep -E "ERROR|SUMMARY|Test unit written" "$log" >&2 || tail -30 "$log" >&2
  exit $rc
fi
