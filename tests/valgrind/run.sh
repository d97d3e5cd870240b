#!/usr/bin/env bash
# valgrind run of the four services (`make valgrind`): a non-sanitized debug build
# (build/valgrind), a private stack (own run directory and ports), every service under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
# a short load through the gateway and directly (tests/valgrind/load.py: every endpoint,
# uploads through the whole pipeline), then SIGTERM and a check of each exit code and log:
# no invalid access, no use of uninitialised values, no definite leak.
#
#   tests/valgrind/run.sh            (VALGRIND_ROUNDS=N repeats the load N times, default 1)
#
# Suppressions: tests/valgrind/fermata.supp (one-time initialisation of libraries, each
# entry explained). Logs: run/valgrind/valgrind/<service>.log. Exit status 0 = all clean.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${VALGRIND_BUILD_DIR:-$ROOT/build/valgrind}
export FERMATA_ROOT=$ROOT
. "$ROOT/scripts/lib/common.sh"
export FERMATA_DATA_DIR=${VALGRIND_RUN_DIR:-$(fm_data_dir_default valgrind)}
export PG_PORT=${PG_PORT:-26020} AMQP_PORT=${AMQP_PORT:-27420} S3_PORT=${S3_PORT:-29800}
export GATEWAY_PORT=${GATEWAY_PORT:-18780} RESOURCE_PORT=${RESOURCE_PORT:-18781} SONG_PORT=${SONG_PORT:-18782}
export STORAGE_PORT=${STORAGE_PORT:-18783} PROCESSOR_PORT=${PROCESSOR_PORT:-18784}
# valgrind slows the services 20-50x: give the calls between them room
export HTTP_TIMEOUT=${HTTP_TIMEOUT:-30s} HTTP_CONNECT_TIMEOUT=${HTTP_CONNECT_TIMEOUT:-5s}
export STORAGE_SERVICE_TIMEOUT=${STORAGE_SERVICE_TIMEOUT:-30s} STORAGE_SERVICE_CONNECT_TIMEOUT=${STORAGE_SERVICE_CONNECT_TIMEOUT:-5s}
export DB_POOL_SIZE=${DB_POOL_SIZE:-4} PROCESSOR_CONCURRENCY=${PROCESSOR_CONCURRENCY:-2}
SERVICES=(storage song resource processor)
VG_DIR="$FERMATA_DATA_DIR/valgrind"

echo "valgrind: building $BUILD (Debug, no sanitizers)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DFERMATA_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target fermata-storage fermata-song fermata-resource fermata-processor >/dev/null

# scripts/services.sh starts $FERMATA_BUILD_DIR/services/<s>/fermata-<s>: point it at
# wrappers that run the real binary under valgrind, pass SIGTERM on and keep the exit code.
rm -rf "$VG_DIR" "$FERMATA_DATA_DIR/logs"
mkdir -p "$VG_DIR"
export FERMATA_BUILD_DIR="$FERMATA_DATA_DIR/vgbin"
for s in "${SERVICES[@]}"; do
  mkdir -p "$FERMATA_BUILD_DIR/services/$s"
  cat >"$FERMATA_BUILD_DIR/services/$s/fermata-$s" <<WRAP
#!/usr/bin/env bash
valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
  --error-exitcode=99 --num-callers=40 --gen-suppressions=all \\
  --suppressions="$ROOT/tests/valgrind/fermata.supp" --log-file="$VG_DIR/$s.log" \\
  "$BUILD/services/$s/fermata-$s" &
child=\$!
trap 'kill -TERM \$child 2>/dev/null' TERM INT
while :; do wait \$child; rc=\$?; kill -0 \$child 2>/dev/null || break; done
echo \$rc >"$VG_DIR/$s.rc"
exit \$rc
WRAP
  chmod +x "$FERMATA_BUILD_DIR/services/$s/fermata-$s"
done

stop_services() {
  local s p i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    s=${SERVICES[i]}
    p=$(cat "$FERMATA_DATA_DIR/pids/$s.pid" 2>/dev/null) || continue
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done   # leak check takes a while
    kill -0 "$p" 2>/dev/null && { echo "valgrind: $s did not exit within 120 s of SIGTERM" >&2; kill -KILL "$p"; }
    rm -f "$FERMATA_DATA_DIR/pids/$s.pid"
  done
}
cleanup() {
  stop_services >/dev/null 2>&1 || true
  "$ROOT/scripts/stack.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$ROOT/scripts/stack.sh" start
eval "$("$ROOT/scripts/stack.sh" env)"
"$ROOT/scripts/services.sh" start "${SERVICES[@]}"
for ((round = 1; round <= ${VALGRIND_ROUNDS:-1}; round++)); do
  "$ROOT/.venv/bin/python" "$ROOT/tests/valgrind/load.py"
done
stop_services

status=0
printf '\n%-10s %-5s %-40s %s\n' service exit "errors (valgrind ERROR SUMMARY)" "definitely lost"
for s in "${SERVICES[@]}"; do
  rc=$(cat "$VG_DIR/$s.rc" 2>/dev/null || echo "?")
  summary=$(grep -o 'ERROR SUMMARY: [0-9]* errors from [0-9]* contexts' "$VG_DIR/$s.log" | tail -n 1 || true)
  lost=$(grep -o 'definitely lost: [0-9,]* bytes in [0-9,]* blocks' "$VG_DIR/$s.log" | tail -n 1 || true)
  printf '%-10s %-5s %-40s %s\n' "$s" "$rc" "${summary:-no summary}" "${lost:-definitely lost: 0 bytes}"
  if [ "$rc" != 0 ] || ! grep -q 'ERROR SUMMARY: 0 errors' "$VG_DIR/$s.log" ||
     grep -qE 'Invalid (read|write|free)|uninitialised|Mismatched free|definitely lost: [1-9]' "$VG_DIR/$s.log"; then
    status=1
    echo "valgrind: $s is not clean; see $VG_DIR/$s.log" >&2
  fi
done
exit $status
