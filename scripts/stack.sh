#!/usr/bin/env bash
# The local stack: the real servers Fermata runs on (PostgreSQL, RabbitMQ, the S3
# emulator, nginx), each private to this project: own data directory under $FERMATA_RUN_DIR,
# own ports, started and stopped here.
#
#   scripts/stack.sh start [component...]    (default: all, in file order)
#   scripts/stack.sh stop [component...]     (default: all, in reverse order)
#   scripts/stack.sh kill COMPONENT          (SIGKILL, for fault tests)
#   scripts/stack.sh status
#   scripts/stack.sh env                     (prints the exports services need)
#   scripts/stack.sh wipe                    (stop all, delete the run directory and its data)
#
# Each component is one file scripts/stack.d/NN-NAME.sh defining NAME_start, NAME_stop,
# NAME_kill, NAME_status and NAME_env, and appending NAME to COMPONENTS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FERMATA_RUN_DIR=${FERMATA_RUN_DIR:-$ROOT/run}
mkdir -p "$FERMATA_RUN_DIR"
chmod 755 "$FERMATA_RUN_DIR"

# Runs a command as an unprivileged user when we are root (initdb, rabbitmq refuse root
# or should not run as root); as the caller otherwise.
as_service_user() {
  local user=$1; shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# wait_for_port PORT SECONDS: true once something accepts TCP on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# private_dir NAME USER: the directory where component NAME keeps its data, usable by USER
# (the unprivileged user the server runs as when we are root). Normally
# $FERMATA_RUN_DIR/NAME. When USER cannot reach the run directory (a checkout under /root,
# say), the data goes to /var/tmp/fermata-<hash of the run dir>/NAME instead and
# $FERMATA_RUN_DIR/NAME becomes a link to it, so it is still found from the project.
private_dir() {
  local name=$1 user=$2 want="$FERMATA_RUN_DIR/$1"
  if [ "$(id -u)" -ne 0 ] || runuser -u "$user" -- test -x "$FERMATA_RUN_DIR" 2>/dev/null; then
    echo "$want"
    return
  fi
  local key alt
  key=$(printf '%s' "$FERMATA_RUN_DIR" | sha1sum | cut -c1-12)
  alt="/var/tmp/fermata-$key/$name"
  mkdir -p "$alt"
  chmod 755 "/var/tmp/fermata-$key"
  [ -e "$want" ] || ln -sfn "$alt" "$want"
  echo "$alt"
}

COMPONENTS=()
for f in "$ROOT"/scripts/stack.d/*.sh; do
  # shellcheck source=/dev/null
  . "$f"
done

has_component() { local c; for c in "${COMPONENTS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

cmd=${1:-status}; shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${COMPONENTS[@]}")
for c in "${targets[@]}"; do has_component "$c" || { echo "stack: unknown component '$c' (have: ${COMPONENTS[*]})" >&2; exit 2; }; done

case "$cmd" in
  start)  for c in "${targets[@]}"; do "${c}_start"; done ;;
  stop)   for ((i = ${#targets[@]} - 1; i >= 0; i--)); do "${targets[i]}_stop" || true; done ;;
  kill)   for c in "${targets[@]}"; do "${c}_kill"; done ;;
  status) for c in "${targets[@]}"; do printf '%-10s %s\n' "$c" "$("${c}_status" 2>&1 || true)"; done ;;
  env)    for c in "${targets[@]}"; do "${c}_env"; done ;;
  wipe)   [ $# -eq 0 ] || { echo "stack: wipe takes no component" >&2; exit 2; }
          # stop, then delete everything the stack keeps in this run directory (databases,
          # broker state, logs), also the /var/tmp copies private_dir made: a fresh start
    for ((i = ${#targets[@]} - 1; i >= 0; i--)); do "${targets[i]}_stop" >/dev/null 2>&1 || true; done
    if [ -d "$FERMATA_RUN_DIR" ]; then
      for l in "$FERMATA_RUN_DIR"/*; do
        if [ -L "$l" ]; then
          case $(readlink "$l") in /var/tmp/fermata-*) rm -rf "$(readlink "$l")" ;; esac
        fi
      done
      rm -rf "$FERMATA_RUN_DIR"
    fi ;;
  *) echo "usage: $0 start|stop|kill|status|env|wipe [component...]" >&2; exit 2 ;;
esac
