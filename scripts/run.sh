#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts the local stack and every built
# service, prints where each listens, and stops everything cleanly on Ctrl-C.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FERMATA_BUILD_DIR=${FERMATA_BUILD_DIR:-$ROOT/build/release}
stopping=0
cleanup() {
  [ "$stopping" -eq 1 ] && return; stopping=1
  # Stopping must not depend on our output still being read (Ctrl-C may have ended a
  # pipe such as `make run | tee log`): no SIGPIPE, no exit on a failed echo.
  trap '' PIPE INT TERM
  set +e
  echo; echo "run: stopping services and stack..."
  "$ROOT/scripts/services.sh" stop || true
  "$ROOT/scripts/stack.sh" stop || true
  echo "run: stopped."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The S3 emulator keeps objects in memory only, so every start finds it empty: start the
# databases and queues empty too, or their rows would name files that are gone.
# FERMATA_KEEP_DATA=1 keeps them (song metadata survives; resources whose file is gone
# then answer 500 on download).
if [ "${FERMATA_KEEP_DATA:-0}" != 1 ]; then
  "$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
  "$ROOT/scripts/stack.sh" wipe
fi
"$ROOT/scripts/stack.sh" start
"$ROOT/scripts/services.sh" start
echo
echo "Fermata is running:"
"$ROOT/scripts/stack.sh" status | sed 's/^/  /'
"$ROOT/scripts/services.sh" status | sed 's/^/  /'
echo "Logs: ${FERMATA_RUN_DIR:-$ROOT/run}/logs. Press Ctrl-C to stop."
while true; do sleep 3600 & wait $!; done
