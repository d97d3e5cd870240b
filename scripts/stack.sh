#!/usr/bin/env bash
# The local stack: the real servers Fermata runs on (PostgreSQL, RabbitMQ, the object store
# versitygw, nginx), each private to this checkout: own data directory under
# $FERMATA_DATA_DIR (see scripts/lib/common.sh for where that is), own ports, started and
# stopped here. Data is kept across stops and restarts; only `reset` deletes it.
#
#   scripts/stack.sh start                   start everything; refuses (exit 1, says what
#                                            runs) when a part of this stack already runs
#   scripts/stack.sh start COMPONENT...      start these unless already running (fault tests)
#   scripts/stack.sh stop [component...]     (default: all, in reverse order)
#   scripts/stack.sh kill COMPONENT          (SIGKILL, for fault tests)
#   scripts/stack.sh status [component...]   (exit 0 when all named are up)
#   scripts/stack.sh running                 (exit 0 when any part of the stack is up)
#   scripts/stack.sh pids [component...]     (every process of the stack, for fault tests)
#   scripts/stack.sh env                     (prints the exports services need)
#   scripts/stack.sh dir                     (prints the data directory)
#   scripts/stack.sh reset                   stop all, delete the data directory
#
# Each component is one file scripts/stack.d/NN-NAME.sh defining NAME_start, NAME_stop,
# NAME_kill, NAME_status, NAME_pids and NAME_env, and appending NAME to COMPONENTS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib/common.sh"
fm_data_dir_init
# The servers must not depend on the caller's directory (a checkout its users cannot enter).
cd /

# Runs a command as an unprivileged user when we are root (initdb, rabbitmq refuse root
# or should not run as root); as the caller otherwise.
as_service_user() {
  local user=$1; shift
  if fm_is_root; then runuser -u "$user" -- "$@"; else "$@"; fi
}

COMPONENTS=()
for f in "$ROOT"/scripts/stack.d/*.sh; do
  # shellcheck source=/dev/null
  . "$f"
done

has_component() { local c; for c in "${COMPONENTS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

# any_running: true when a component of this stack is up; prints "name: status" for each.
any_running() {
  local c up=1 st
  for c in "${COMPONENTS[@]}"; do
    if st=$("${c}_status" 2>/dev/null) && [ "${st#off}" = "$st" ]; then echo "  $c: $st"; up=0; fi
  done
  return $up
}

cmd=${1:-status}; shift || true
targets=("$@")
all=0
[ ${#targets[@]} -eq 0 ] && { targets=("${COMPONENTS[@]}"); all=1; }
for c in "${targets[@]}"; do has_component "$c" || { echo "stack: unknown component '$c' (have: ${COMPONENTS[*]})" >&2; exit 2; }; done

case "$cmd" in
  start)
    if [ "$all" -eq 1 ] && running=$(any_running); then
      echo "stack: a stack from this checkout is already running (data $FERMATA_DATA_DIR):" >&2
      echo "$running" >&2
      echo "stack: leaving it alone; stop it first with 'make stop' (or scripts/stack.sh stop)" >&2
      exit 1
    fi
    for c in "${targets[@]}"; do "${c}_start"; done ;;
  stop)   for ((i = ${#targets[@]} - 1; i >= 0; i--)); do "${targets[i]}_stop" || true; done ;;
  kill)   for c in "${targets[@]}"; do "${c}_kill"; done ;;
  status) rc=0
          for c in "${targets[@]}"; do
            if st=$("${c}_status" 2>&1); then printf '%-10s %s\n' "$c" "$st"; else printf '%-10s %s\n' "$c" "$st"; rc=1; fi
          done
          exit $rc ;;
  running) any_running >/dev/null ;;
  pids)   for c in "${targets[@]}"; do "${c}_pids"; done ;;
  env)    for c in "${targets[@]}"; do "${c}_env"; done ;;
  dir)    echo "$FERMATA_DATA_DIR" ;;
  reset)  [ "$all" -eq 1 ] || { echo "stack: reset takes no component" >&2; exit 2; }
          # stop, then delete everything this stack keeps: databases, broker state, objects,
          # configuration, logs. Only the stack's own directory is removed.
          for ((i = ${#targets[@]} - 1; i >= 0; i--)); do "${targets[i]}_stop" >/dev/null 2>&1 || true; done
          if [ -L "$FERMATA_DATA_DIR" ]; then fm_die "stack: refusing to reset $FERMATA_DATA_DIR: it is a symbolic link"; fi
          rm -rf --one-file-system "$FERMATA_DATA_DIR"
          echo "stack: removed $FERMATA_DATA_DIR" ;;
  *) echo "usage: $0 start|stop|kill|status|running|pids|env|dir|reset [component...]" >&2; exit 2 ;;
esac
