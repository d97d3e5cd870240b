#!/usr/bin/env bash
# Starts and stops Fermata's own services (the C binaries) against the local stack.
#
#   scripts/services.sh start [name...]      (default: every service that is built)
#   scripts/services.sh stop [name...]       (SIGTERM: in-flight requests finish)
#   scripts/services.sh kill NAME [SIG]      (default SIGKILL; SIGSTOP/SIGCONT for hangs)
#   scripts/services.sh rolling-restart [service...]   one instance at a time (see below)
#   scripts/services.sh status [name...]     (exit 0 when every instance named is up)
#   scripts/services.sh pids [name...]       (the pids of the running instances)
#
# Replicas: FERMATA_REPLICAS (1; `make run` sets 2) instances of each service. A NAME is a
# service ("song": all its instances) or one instance ("song@1", "song@2"; instance 1 is
# plain "song" in pid and log file names). Instance i listens on the service's port + (i-1)*100
# (scripts/lib/common.sh); the gateway balances across them. With more than one instance,
# the services reach each other through the gateway's internal listener
# (GATEWAY_INTERNAL_PORT, 8089, 127.0.0.1 only): it balances and retries like the public
# one, so a call from one service never depends on one instance of another.
#
# A rolling restart stops one instance with SIGTERM (it reports not-ready, stops accepting,
# finishes what is in flight: the gateway sends what it cannot connect there to the other
# instance), starts it again, waits until it is ready, and goes on to the next. The
# gateway's configuration is not reloaded for it: a reload closes the idle keep-alive
# connections of every client, and a client that sends a POST on one at that moment
# sees its connection fail (measured: bench/run-all.sh's ha phase).
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
auth_on() { [ "${FERMATA_AUTH:-}" = jwt ]; }

# The credentials each service may see; every other one is removed from its environment.
CREDENTIALS=(SONG_DB_URL STORAGE_DB_URL RESOURCE_DB_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AMQP_URL)
declare -A OWN_CREDENTIALS=(
  [song]="SONG_DB_URL"
  [storage]="STORAGE_DB_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
  [resource]="RESOURCE_DB_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AMQP_URL"
  [processor]="AMQP_URL"
)

svc_of() { echo "${1%@*}"; }
user_of() { echo "${FERMATA_SERVICE_USER:-fermata-$(svc_of "$1")}"; }
port_of() { fm_service_port "$1"; }
port_var_of() { local s; s=$(svc_of "$1"); echo "${FM_PORT_VAR[$s]}"; }
binary_of() { local s; s=$(svc_of "$1"); echo "$BUILD_DIR/services/$s/fermata-$s"; }
pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
# running NAME: its pid file names a live process that is that service (a pid file left by
# a machine that rebooted may name another program by now).
running() { fm_pid_alive "$PIDS/$1.pid" "fermata-$(svc_of "$1")" >/dev/null; }
# started NAME: the process started for NAME is alive (it may not have exec'd the binary yet).
started() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# runnable_binary NAME: a path to the service's binary that its user can execute.
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
  local out; out="$dir/$(basename "$bin")"
  # replaced (atomically) only when the build changed: a running instance keeps its file
  if ! cmp -s "$bin" "$out"; then
    install -m 755 "$bin" "$out.new"
    mv -f "$out.new" "$out"
  fi
  echo "$out"
}

# exec_as NAME CMD...: exec CMD as the service's user when we are root, else as is; with
# only the service's own credentials in its environment.
exec_as() {
  local svc v; svc=$(svc_of "$1"); shift
  for v in "${CREDENTIALS[@]}"; do
    case " ${OWN_CREDENTIALS[$svc]} " in *" $v "*) ;; *) unset "$v" ;; esac
  done
  if fm_is_root; then
    local user; user=$(user_of "$svc")
    exec setpriv --reuid="$user" --regid="$(id -gn "$user")" --clear-groups --no-new-privs -- "$@"
  fi
  exec "$@"
}

# service_url SVC: how the other services reach SVC.
service_url() {
  if [ "$(fm_replicas)" -gt 1 ]; then
    echo "http://127.0.0.1:${GATEWAY_INTERNAL_PORT:-8089}"     # every instance, balanced
  elif auth_on; then
    echo "http://127.0.0.1:$(fm_internal_port "$1")"
  else
    echo "http://127.0.0.1:$(fm_service_port "$1")"
  fi
}

load_env() {
  # values from the stack, unless the caller set them
  local line name
  while IFS= read -r line; do
    name=${line#export }; name=${name%%=*}
    [ -z "${!name+set}" ] && eval "$line"   # set, even to "", wins
  done < <("$ROOT/scripts/stack.sh" env 2>/dev/null)
  export STORAGE_SERVICE_URL=${STORAGE_SERVICE_URL:-$(service_url storage)}
  export SONG_SERVICE_URL=${SONG_SERVICE_URL:-$(service_url song)}
  export RESOURCE_SERVICE_URL=${RESOURCE_SERVICE_URL:-$(service_url resource)}
}

# ready NAME: the instance answers 200 on its readiness endpoint (health: all components UP).
ready() { curl -s -o /dev/null -f --max-time 2 "http://127.0.0.1:$(port_of "$1")/actuator/health"; }

wait_healthy() {
  local name=$1 port i
  port=$(port_of "$name")
  for ((i = 0; i < 300; i++)); do
    started "$name" || { echo "services: $name exited during start; last log lines:" >&2; tail -n 20 "$LOGS/$name.log" >&2; return 1; }
    curl -s -o /dev/null "http://127.0.0.1:$port/actuator/health" && return 0
    sleep 0.1
  done
  echo "services: $name did not answer on port $port within 30 s" >&2
  return 1
}

start_one() {
  local name=$1 bin
  bin=$(binary_of "$name")
  [ -x "$bin" ] || { echo "services: $name is not built ($bin)" >&2; return 1; }
  if running "$name"; then echo "services: $name already running (pid $(pid_of "$name"))"; return 0; fi
  fm_need_user "$(user_of "$name")"
  fm_port_check "$name" "$(port_of "$name")" "$(port_var_of "$name")" || return 1
  bin=$(runnable_binary "$name")
  local iport=0
  if auth_on && [ -n "$(fm_internal_port "$name")" ]; then
    iport=$(fm_internal_port "$name")
    fm_port_check "$name" "$iport" "${FM_IPORT_VAR[$(svc_of "$name")]}" || return 1
  fi
  (trap '' HUP; export SERVER_PORT FERMATA_INTERNAL_PORT=$iport FERMATA_INSTANCE=$name; SERVER_PORT=$(port_of "$name")
   exec_as "$name" "$bin") </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  wait_healthy "$name"
  echo "services: $name listening on http://127.0.0.1:$(port_of "$name") (pid $(pid_of "$name"), log $LOGS/$name.log)"
}

stop_one() {
  local name=$1 p i
  p=$(pid_of "$name")
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -CONT "$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 800; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$p" 2>/dev/null && { echo "services: $name ignored SIGTERM for 40 s; killing" >&2; kill -KILL "$p"; }
  fi
  rm -f "$PIDS/$name.pid"
}

rolling_restart() {
  local svc=$1 name i
  for name in $(fm_instances "$svc"); do
    echo "services: rolling restart of $name"
    stop_one "$name"
    start_one "$name" >/dev/null
    for ((i = 0; i < 300; i++)); do ready "$name" && break; sleep 0.1; done
    ready "$name" || { echo "services: $name not ready 30 s after its restart" >&2; return 1; }
    # the gateway may have marked it failed while it was down (fail_timeout 1 s): only once
    # that has passed will it send requests there when the next instance stops
    [ "$(fm_replicas)" -gt 1 ] && sleep "${FERMATA_ROLLING_SETTLE:-1.5}"
  done
  return 0
}

# expand NAME...: instance names (a service name stands for all its instances).
expand() {
  local n
  for n in "$@"; do
    case "$n" in
      *@1) echo "${n%@1}" ;;   # instance 1 is the service's own name in pid and log files
      *@*) echo "$n" ;;
      storage | song | resource | processor) fm_instances "$n" ;;
      *) echo "services: unknown service '$n' (have: ${ALL[*]})" >&2; return 2 ;;
    esac
  done
}

cmd=${1:-status}; shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for s in "${ALL[@]}"; do
    if [ "$cmd" = start ]; then [ -x "$(binary_of "$s")" ] && targets+=("$s"); else targets+=("$s"); fi
  done
fi
case "$cmd" in
  rolling-restart)
    load_env
    for s in "${targets[@]}"; do rolling_restart "$s" || exit 1; done ;;
  kill)
    sig=KILL
    [ ${#targets[@]} -ge 2 ] && sig=${targets[1]}
    out=$(expand "${targets[0]}") || exit 2
    for n in $out; do
      p=$(pid_of "$n"); [ -n "$p" ] && kill "-$sig" "$p" 2>/dev/null || true
      [ "$sig" = KILL ] && rm -f "$PIDS/$n.pid"
    done; true ;;
  *)
    out=$(expand "${targets[@]}") || exit 2
    mapfile -t names <<<"$out"
    case "$cmd" in
      start) load_env; for n in "${names[@]}"; do start_one "$n"; done ;;
      stop) for ((i = ${#names[@]} - 1; i >= 0; i--)); do stop_one "${names[i]}"; done ;;
      status) rc=0
              for n in "${names[@]}"; do
                if running "$n"; then echo "$n up pid $(pid_of "$n") port $(port_of "$n")"; else echo "$n down"; rc=1; fi; done
              exit $rc ;;
      pids) for n in "${names[@]}"; do running "$n" && pid_of "$n"; done; true ;;
      *) echo "usage: $0 start|stop|kill|rolling-restart|status|pids [name...]" >&2; exit 2 ;;
    esac ;;
esac
