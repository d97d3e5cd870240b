#!/usr/bin/env bash
# System tests: starts the whole local stack in its own run directory, then runs pytest
# against the ASan/UBSan build of the services. The tests start, stop and kill services
# and stack components themselves (through scripts/services.sh and scripts/stack.sh).
# Extra arguments go to pytest (e.g. -k song).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FERMATA_RUN_DIR=${FERMATA_RUN_DIR:-$ROOT/run/test}
export FERMATA_BUILD_DIR=${FERMATA_BUILD_DIR:-$ROOT/build/debug}
export FERMATA_ROOT=$ROOT
# ASan: no leak check noise from the Python side; services report their own.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cleanup() {
  "$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
  "$ROOT/scripts/stack.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
# every run starts from empty databases and queues: rows or messages left by an earlier run
# would point at objects the in-memory object store no longer has
"$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
"$ROOT/scripts/stack.sh" wipe
"$ROOT/scripts/stack.sh" start
eval "$("$ROOT/scripts/stack.sh" env)"
cd "$ROOT"
"$ROOT/.venv/bin/python" -m pytest tests/system -p no:cacheprovider -q "$@"
