#!/usr/bin/env bash
# Starts and stops Fermata's own services (the C binaries) against the local stack.
#
#   scripts/services.sh start [service...]   (default: every service that is built)
#   scripts/services.sh stop [service...]    (SIGTERM: in-flight requests finish)
#   scripts/services.sh kill SERVICE [SIG]   (default SIGKILL; SIGSTOP/SIGCONT for hangs)
#   scripts/services.sh status               (exit 0 when every service named is up)
#   scripts/services.sh pids                 (the pids of the running services)
#
# Binaries come from $FERMATA_BUILD_DIR (default build/release); logs go to
# $FERMATA_DATA_DIR/logs/<service>.log, pids to $FERMATA_DATA_DIR/pids/. The environment the
# services need (database URLs, broker, object store) comes from `scripts/stack.sh env`;
# anything already set in the caller's environment wins. Each service gets only its own
# credentials: the database URL of its own database, the object store's keys only for
# resource and storage, the broker's URL only for resource and processor.
#
# Started by root, each service runs as its own unprivileged user, fermata-<service>
# (created by scripts/deps.sh; none is shared with nginx's workers or another server):
# setpriv switches user and group and execs the binary in the same process (so the pid
# file and kill -KILL reach the service itself, not a wrapper), with no_new_privs set. The
# log is opened by this script before the switch, so the service needs no write access
# anywhere. When that user cannot reach the build tree (a checkout under /root), the binary
# is copied to $FERMATA_DATA_DIR/bin first; it needs nothing else from the tree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib/common.sh"
fm_data_dir_init
# The servers must not depend on the caller's directory (a checkout its users cannot enter).
cd /
BUILD_DIR=${FERMATA_BUILD_DIR:-$ROOT/build/release}
LOGS="$FERMATA_DATA_DIR/logs"
PIDS="$FERMATA_DATA_DIR/pids"
mkdir -p "$LOGS" "$PIDS"
fm_is_root && chmod 750 "$LOGS"

ALL=(storage song resource processor)   # start order: what others call comes first
declare -A PORT_VAR=([resource]=RESOURCE_PORT [song]=SONG_PORT [storage]=STORAGE_PORT [processor]=PROCESSOR_PORT)
declare -A PORT_DEF=([resource]=8081 [song]=8082 [storage]=8083 [processor]=8084)
# With FERMATA_AUTH=jwt the public ports require Bearer tokens (lib/auth), and the services
# call each other on internal ports (127.0.0.1 only, never behind the gateway) that carry
# only the routes they call: GET /storages, POST and DELETE /songs, GET /resources/{id}.
declare -A IPORT_VAR=([resource]=RESOURCE_INTERNAL_PORT [song]=SONG_INTERNAL_PORT [storage]=STORAGE_INTERNAL_PORT)
declare -A IPORT_DEF=([resource]=9081 [song]=9082 [storage]=9083)
auth_on() { [ "${FERMATA_AUTH:-}" = jwt ]; }
iport_of() { local v=${IPORT_VAR[$1]:-}; [ -n "$v" ] && echo "${!v:-${IPORT_DEF[$1]}}"; }

# The credentials each service may see; every other one is removed from its environment.
CREDENTIALS=(SONG_DB_URL STORAGE_DB_URL RESOURCE_DB_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AMQP_URL)
declare -A OWN_CREDENTIALS=(
  [song]="SONG_DB_URL"
  [storage]="STORAGE_DB_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
  [resource]="RESOURCE_DB_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AMQP_URL"
  [processor]="AMQP_URL"
)

user_of() { echo "${FERMATA_SERVICE_USER:-fermata-$1}"; }

# runnable_binary SVC: a path to the service's binary that its user can execute.
runnable_binary() {
  local bin dir user
  bin=$(binary_of "$1")
  user=$(user_of "$1")
  if ! fm_is_root || setpriv --reuid="$user" --regid="$(id -gn "$user")" --clear-groups -- test -x "$bin"; then
    echo "$bin"
    return
  fi
  dir="$FERMATA_DATA_DIR/bin"
  mkdir -p "$dir"
  chmod 755 "$dir"
  install -m 755 "$bin" "$dir/"
  echo "$dir/$(basename "$bin")"
}

# exec_as SVC CMD...: exec CMD as the service's user when we are root, else as is; with only
# the service's own credentials in its environment.
exec_as() {
  local svc=$1 v; shift
  for v in "${CREDENTIALS[@]}"; do
    case " ${OWN_CREDENTIALS[$svc]} " in *" $v "*) ;; *) unset "$v" ;; esac
  done
  if fm_is_root; then
    local user; user=$(user_of "$svc")
    exec setpriv --reuid="$user" --regid="$(id -gn "$user")" --clear-groups --no-new-privs -- "$@"
  fi
  exec "$@"
}

port_of() { local v=${PORT_VAR[$1]}; echo "${!v:-${PORT_DEF[$1]}}"; }
binary_of() { echo "$BUILD_DIR/services/$1/fermata-$1"; }
pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
# running SVC: its pid file names a live process that is that service (a pid file left by
# a machine that rebooted may name another program by now).
running() { fm_pid_alive "$PIDS/$1.pid" "fermata-$1" >/dev/null; }
# started SVC: the process started for SVC is alive (it may not have exec'd the binary yet).
started() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

load_env() {
  # values from the stack, unless the caller set them
  local line name
  while IFS= read -r line; do
    name=${line#export }; name=${name%%=*}
    [ -z "${!name+set}" ] && eval "$line"   # set, even to "", wins
  done < <("$ROOT/scripts/stack.sh" env 2>/dev/null)
  local to=port_of
  auth_on && to=iport_of
  export STORAGE_SERVICE_URL=${STORAGE_SERVICE_URL:-http://127.0.0.1:$($to storage)}
  export SONG_SERVICE_URL=${SONG_SERVICE_URL:-http://127.0.0.1:$($to song)}
  export RESOURCE_SERVICE_URL=${RESOURCE_SERVICE_URL:-http://127.0.0.1:$($to resource)}
}

wait_healthy() {
  local svc=$1 port i
  port=$(port_of "$svc")
  for ((i = 0; i < 300; i++)); do
    started "$svc" || { echo "services: $svc exited during start; last log lines:" >&2; tail -n 20 "$LOGS/$svc.log" >&2; return 1; }
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
  fm_need_user "$(user_of "$svc")"
  fm_port_check "$svc" "$(port_of "$svc")" "${PORT_VAR[$svc]}" || return 1
  bin=$(runnable_binary "$svc")
  local iport=0
  if auth_on && [ -n "$(iport_of "$svc")" ]; then
    iport=$(iport_of "$svc")
    fm_port_check "$svc" "$iport" "${IPORT_VAR[$svc]}" || return 1
  fi
  (trap '' HUP; export SERVER_PORT FERMATA_INTERNAL_PORT=$iport; SERVER_PORT=$(port_of "$svc"); exec_as "$svc" "$bin") </dev/null >>"$LOGS/$svc.log" 2>&1 &
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
  status) rc=0
          for s in "${targets[@]}"; do
            if running "$s"; then echo "$s up pid $(pid_of "$s") port $(port_of "$s")"; else echo "$s down"; rc=1; fi; done
          exit $rc ;;
  pids) for s in "${targets[@]}"; do running "$s" && pid_of "$s"; done; true ;;
  *) echo "usage: $0 start|stop|kill|status|pids [service...]" >&2; exit 2 ;;
esac
