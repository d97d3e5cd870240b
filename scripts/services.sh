#!/usr/bin/env bash
# Starts and stops Fermata's own services (the C binaries) against the local stack.
#
#   scripts/services.sh start [service...]   (default: every service that is built)
#   scripts/services.sh stop [service...]    (SIGTERM: in-flight requests finish)
#   scripts/services.sh kill SERVICE [SIG]   (default SIGKILL; SIGSTOP/SIGCONT for hangs)
#   scripts/services.sh status
#
# Binaries come from $FERMATA_BUILD_DIR (default build/release); logs go to
# $FERMATA_RUN_DIR/logs/<service>.log, pids to $FERMATA_RUN_DIR/pids/. The environment the
# services need (database URLs, broker, object store) comes from `scripts/stack.sh env`;
# anything already set in the caller's environment wins.
#
# Started by root, the services run as an unprivileged user, FERMATA_SERVICE_USER (default
# nobody): setpriv switches user and group and execs the binary in the same process (so the
# pid file and kill -KILL reach the service itself, not a wrapper), with no_new_privs set.
# The log is opened by this script before the switch, so the service needs no write access
# anywhere. When that user cannot reach the build tree (a checkout under /root), the binary
# is copied to /var/tmp/fermata-<hash>/bin first; it needs nothing else from the tree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FERMATA_RUN_DIR=${FERMATA_RUN_DIR:-$ROOT/run}
BUILD_DIR=${FERMATA_BUILD_DIR:-$ROOT/build/release}
LOGS="$FERMATA_RUN_DIR/logs"
PIDS="$FERMATA_RUN_DIR/pids"
mkdir -p "$LOGS" "$PIDS"

ALL=(storage song resource processor)   # start order: what others call comes first
declare -A PORT_VAR=([resource]=RESOURCE_PORT [song]=SONG_PORT [storage]=STORAGE_PORT [processor]=PROCESSOR_PORT)
declare -A PORT_DEF=([resource]=8081 [song]=8082 [storage]=8083 [processor]=8084)

SERVICE_USER=${FERMATA_SERVICE_USER:-nobody}

# runnable_binary SVC: a path to the service's binary that SERVICE_USER can execute.
runnable_binary() {
  local bin key dir
  bin=$(binary_of "$1")
  if [ "$(id -u)" -ne 0 ] || setpriv --reuid="$SERVICE_USER" --regid="$(id -gn "$SERVICE_USER")" --clear-groups -- test -x "$bin"; then
    echo "$bin"
    return
  fi
  key=$(printf '%s' "$BUILD_DIR" | sha1sum | cut -c1-12)
  dir="/var/tmp/fermata-$key/bin"
  mkdir -p "$dir"
  chmod 755 "/var/tmp/fermata-$key" "$dir"
  install -m 755 "$bin" "$dir/"
  echo "$dir/$(basename "$bin")"
}

# as_service_user CMD...: exec CMD as SERVICE_USER when we are root, else as is.
as_service_user() {
  if [ "$(id -u)" -eq 0 ]; then
    exec setpriv --reuid="$SERVICE_USER" --regid="$(id -gn "$SERVICE_USER")" --clear-groups --no-new-privs -- "$@"
  fi
  exec "$@"
}

port_of() { local v=${PORT_VAR[$1]}; echo "${!v:-${PORT_DEF[$1]}}"; }
binary_of() { echo "$BUILD_DIR/services/$1/fermata-$1"; }
pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

load_env() {
  # values from the stack, unless the caller set them
  local line name
  while IFS= read -r line; do
    name=${line#export }; name=${name%%=*}
    [ -z "${!name:-}" ] && eval "$line"
  done < <("$ROOT/scripts/stack.sh" env 2>/dev/null)
  export STORAGE_SERVICE_URL=${STORAGE_SERVICE_URL:-http://127.0.0.1:$(port_of storage)}
  export SONG_SERVICE_URL=${SONG_SERVICE_URL:-http://127.0.0.1:$(port_of song)}
  export RESOURCE_SERVICE_URL=${RESOURCE_SERVICE_URL:-http://127.0.0.1:$(port_of resource)}
}

wait_healthy() {
  local svc=$1 port i
  port=$(port_of "$svc")
  for ((i = 0; i < 300; i++)); do
    running "$svc" || { echo "services: $svc exited during start; last log lines:" >&2; tail -n 20 "$LOGS/$svc.log" >&2; return 1; }
    curl -s -o /dev/null "http://127.0.0.1:$port/actuator/health" && return 0
    sleep 0.1
  done
  echo "services: $svc did not answer on port $port within 30 s" >&2
  return 1
}

start_one() {
  local svc=$1 bin
  bin=$(binary_of "$svc")
  [ -x "$bin" ] || { echo "services: $svc is not built ($bin)" >&2; return 1; }
  if running "$svc"; then echo "services: $svc already running (pid $(pid_of "$svc"))"; return 0; fi
  bin=$(runnable_binary "$svc")
  (trap '' HUP; export SERVER_PORT; SERVER_PORT=$(port_of "$svc"); as_service_user "$bin") </dev/null >>"$LOGS/$svc.log" 2>&1 &
  echo $! >"$PIDS/$svc.pid"
  wait_healthy "$svc"
  echo "services: $svc listening on http://127.0.0.1:$(port_of "$svc") (pid $(pid_of "$svc"), log $LOGS/$svc.log)"
}

stop_one() {
  local svc=$1 p i
  p=$(pid_of "$svc")
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -CONT "$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 400; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$p" 2>/dev/null && { echo "services: $svc ignored SIGTERM for 20 s; killing" >&2; kill -KILL "$p"; }
  fi
  rm -f "$PIDS/$svc.pid"
}

cmd=${1:-status}; shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for s in "${ALL[@]}"; do
    if [ "$cmd" = start ]; then [ -x "$(binary_of "$s")" ] && targets+=("$s"); else targets+=("$s"); fi
  done
fi
case "$cmd" in
  start) load_env; for s in "${targets[@]}"; do start_one "$s"; done ;;
  stop) for ((i = ${#targets[@]} - 1; i >= 0; i--)); do stop_one "${targets[i]}"; done ;;
  kill) p=$(pid_of "${targets[0]}"); [ -n "$p" ] && kill "-${targets[1]:-KILL}" "$p" 2>/dev/null || true
        [ "${targets[1]:-KILL}" = KILL ] && rm -f "$PIDS/${targets[0]}.pid"; true ;;
  status) for s in "${targets[@]}"; do
            if running "$s"; then echo "$s up pid $(pid_of "$s") port $(port_of "$s")"; else echo "$s down"; fi; done ;;
  *) echo "usage: $0 start|stop|kill|status [service...]" >&2; exit 2 ;;
esac
