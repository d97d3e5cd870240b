# scripts/lib/common.sh: what the stack, service and test scripts share (sourced, not run).
# The caller sets ROOT (the checkout) before sourcing.
#
# Where a stack keeps its data. One directory holds everything of one stack: databases,
# broker state, objects, configuration, logs, pids. It is, in this order:
#   1. $FERMATA_DATA_DIR when set (FERMATA_RUN_DIR, its old name, is still read);
#   2. $ROOT/run, when the users the servers run as can reach it: always when we are not
#      root (everything then runs as the caller), and as root when the checkout is
#      traversable by others (mode 755 up to /);
#   3. /var/lib/fermata/<checkout name>-<hash of its path>, when we are root and the
#      checkout is not reachable (a clone under /root or in a `mktemp -d` folder: 0700).
#      A proper place for data meant to last: /var/tmp would be cleaned by
#      systemd-tmpfiles after 30 days. /var/lib/fermata and the stack's own directory are
#      created by root with mkdir, never through a symlink, and an existing one must be a
#      real directory owned by root and writable only by it, or we refuse to use it (a
#      local user must not be able to plant a directory or a link there first).
# Nothing a server needs is reached through a path inside the checkout when the checkout
# is not reachable: binaries are copied into the data directory, configuration is written
# there.
#
# Test and benchmark stacks live in a subdirectory of the default one (test/, bench/, ...):
# fm_data_dir_default SUFFIX.

FM_VAR_LIB=${FM_VAR_LIB:-/var/lib/fermata}

fm_die() { echo "$*" >&2; exit 1; }

fm_is_root() { [ "$(id -u)" -eq 0 ]; }

# fm_reachable DIR: true when an unprivileged user with no groups can traverse to DIR (so
# postgres, rabbitmq, the service users and nginx's workers can).
fm_reachable() {
  fm_is_root || return 0
  setpriv --reuid=nobody --regid=nogroup --clear-groups -- test -x "$1" 2>/dev/null
}

# fm_data_dir_default [SUFFIX]: the default data directory of this checkout (see the top
# of this file), with /SUFFIX appended when given.
fm_data_dir_default() {
  local base
  if ! fm_is_root || fm_reachable "$ROOT"; then
    base="$ROOT/run"
  else
    base="$FM_VAR_LIB/$(basename "$ROOT")-$(printf '%s' "$ROOT" | sha256sum | cut -c1-8)"
  fi
  echo "$base${1:+/$1}"
}

# fm_owned_dir DIR MODE: DIR exists as a real directory (not a symlink) owned by us with
# MODE, creating it (its parent must exist) if needed. Refuses a symlink, a non-directory,
# a directory owned by someone else, or one that others may write to.
fm_owned_dir() {
  local dir=$1 mode=$2 uid perm
  if [ -L "$dir" ]; then fm_die "refusing $dir: it is a symbolic link"; fi
  if [ ! -e "$dir" ]; then
    mkdir -m "$mode" "$dir" 2>/dev/null || [ -d "$dir" ] || fm_die "cannot create $dir"
    [ -L "$dir" ] && fm_die "refusing $dir: it is a symbolic link"
  fi
  [ -d "$dir" ] || fm_die "refusing $dir: not a directory"
  uid=$(stat -c %u "$dir")
  [ "$uid" = "$(id -u)" ] || fm_die "refusing $dir: owned by uid $uid, not by $(id -un); remove it or set FERMATA_DATA_DIR"
  perm=$(stat -c %a "$dir")
  (( (8#$perm & 8#022) == 0 )) || fm_die "refusing $dir: writable by group or others (mode $perm)"
  chmod "$mode" "$dir"
}

# fm_data_dir_init: sets and exports FERMATA_DATA_DIR, creating it safely.
fm_data_dir_init() {
  export FERMATA_DATA_DIR=${FERMATA_DATA_DIR:-${FERMATA_RUN_DIR:-$(fm_data_dir_default)}}
  local d=$FERMATA_DATA_DIR
  case "$d" in /*) ;; *) d="$PWD/$d"; FERMATA_DATA_DIR=$d ;; esac
  case "$d" in
    "$FM_VAR_LIB"/*)
      fm_is_root || fm_die "$d: only root keeps data under $FM_VAR_LIB; set FERMATA_DATA_DIR"
      fm_owned_dir "$FM_VAR_LIB" 755
      local rel=${d#"$FM_VAR_LIB"/} cur=$FM_VAR_LIB part
      local IFS=/
      for part in $rel; do
        [ -n "$part" ] || continue
        cur="$cur/$part"
        fm_owned_dir "$cur" 755
      done
      ;;
    *)
      mkdir -p "$d"
      fm_is_root && chmod 755 "$d"
      ;;
  esac
  if fm_is_root && ! fm_reachable "$d"; then
    fm_die "FERMATA_DATA_DIR=$d cannot be reached by the unprivileged users the servers run as (postgres, rabbitmq, fermata-*); choose a directory they can traverse, or leave it unset"
  fi
  export FERMATA_RUN_DIR=$FERMATA_DATA_DIR   # old name, for tools that still read it
}

# fm_component_dir NAME USER MODE: prints $FERMATA_DATA_DIR/NAME, a real directory owned by
# USER (when we are root; by us otherwise) with MODE. Created when missing; an existing
# symlink is refused, so a server never writes through a link planted in its place.
fm_component_dir() {
  local dir="$FERMATA_DATA_DIR/$1" user=$2 mode=$3
  [ -L "$dir" ] && fm_die "refusing $dir: it is a symbolic link"
  mkdir -p "$dir"
  if fm_is_root; then chown "$user:" "$dir"; fi
  chmod "$mode" "$dir"
  echo "$dir"
}

# fm_user_exists USER
fm_user_exists() { id -u "$1" >/dev/null 2>&1; }

# fm_need_user USER: as root, the server user must exist (scripts/deps.sh creates ours).
fm_need_user() {
  fm_is_root || return 0
  fm_user_exists "$1" || fm_die "user $1 does not exist; run scripts/deps.sh (as root) first"
}

# fm_port_in_use PORT: true when something accepts TCP on 127.0.0.1:PORT.
fm_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# fm_port_holder PORT: "pid 123 (nginx)" of the listener on PORT when ss can tell, else "".
fm_port_holder() {
  command -v ss >/dev/null || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/pid \2 (\1)/p' | head -n 1
}

# fm_port_check NAME PORT VAR: fails with a message naming the port and the variable that
# moves it when something else listens there already.
fm_port_check() {
  local name=$1 port=$2 var=$3 who
  fm_port_in_use "$port" || return 0
  who=$(fm_port_holder "$port")
  echo "$name: port $port is already in use${who:+ by $who}; set $var to use another port" >&2
  return 1
}

# wait_for_port PORT SECONDS: true once something accepts TCP on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    fm_port_in_use "$port" && return 0
    sleep 0.1
  done
  return 1
}

# fm_pid_alive PIDFILE PATTERN: prints the pid in PIDFILE when that process is alive and its
# command line contains PATTERN (a stale pid reused by another program does not count).
fm_pid_alive() {
  local pid
  pid=$(head -n 1 "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  echo "$pid"
}

# fm_wait_gone SECONDS PID...: waits for the processes to exit; false if one is still alive.
fm_wait_gone() {
  local secs=$1 i p alive; shift
  for ((i = 0; i < secs * 10; i++)); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# fm_tools_dir: where scripts/deps.sh installs the tools Debian lacks (versitygw, a Go
# toolchain to build it): /usr/local/lib/fermata as root (reachable by the server users
# whatever the checkout's mode), $ROOT/.tools otherwise.
fm_tools_dir() {
  if fm_is_root; then echo "${FERMATA_TOOLS_DIR:-/usr/local/lib/fermata}"; else echo "${FERMATA_TOOLS_DIR:-$ROOT/.tools}"; fi
}

# The pinned versitygw release and where deps.sh puts it.
VERSITYGW_VERSION=v1.8.0
fm_versitygw_bin() { echo "$(fm_tools_dir)/versitygw-$VERSITYGW_VERSION/versitygw"; }
# The pinned Zipkin server (the exec jar from Maven Central; Java 17 runs it) and where
# deps.sh puts it. Its SHA-256 is pinned here; deps.sh also checks Maven's .sha1 file.
ZIPKIN_VERSION=3.6.1
ZIPKIN_JAR_SHA256=d8326e0ed4f43855dba81228f688554706e52578a7c782d9a90b73f8680654a1
fm_zipkin_jar() { echo "$(fm_tools_dir)/zipkin-$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar"; }

# fm_fetch_zipkin: downloads the jar (135 MB) unless it is there, checked against Maven
# Central's .sha1 and the pinned SHA-256; the jar lands in place only when both match.
fm_fetch_zipkin() {
  local jar dir base tmp sha1 got
  jar=$(fm_zipkin_jar)
  [ -f "$jar" ] && return 0
  dir=$(dirname "$jar")
  base=${ZIPKIN_MAVEN:-https://repo.maven.apache.org/maven2}/io/zipkin/zipkin-server/$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar
  echo "deps: fetching Zipkin $ZIPKIN_VERSION ($base, 135 MB)"
  mkdir -p "$dir"
  tmp="$dir/.download.$$"
  curl -fsS --retry 3 -o "$tmp" "$base" || { rm -f "$tmp"; fm_die "deps: could not fetch $base"; }
  sha1=$(curl -fsS --retry 3 "$base.sha1" | cut -c1-40) || { rm -f "$tmp"; fm_die "deps: could not fetch $base.sha1"; }
  got=$(sha1sum "$tmp" | cut -d' ' -f1)
  [ "$got" = "$sha1" ] || { rm -f "$tmp"; fm_die "deps: Zipkin jar SHA-1 $got, Maven says $sha1"; }
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  [ "$got" = "$ZIPKIN_JAR_SHA256" ] || { rm -f "$tmp"; fm_die "deps: Zipkin jar SHA-256 $got, pinned $ZIPKIN_JAR_SHA256"; }
  chmod 644 "$tmp"
  mv "$tmp" "$jar"
  chmod 755 "$(fm_tools_dir)" "$dir"
}

# The pinned kustomize (renders deploy/k8s for tests/system/test_deploy_config.py).
KUSTOMIZE_VERSION=v5.5.0
fm_kustomize_bin() { echo "$(fm_tools_dir)/kustomize-$KUSTOMIZE_VERSION/kustomize"; }

# ---- the services' ports, shared by scripts/services.sh and the gateway ------------------
# FERMATA_REPLICAS (1 here; `make run` makes it 2) instances of each service; instance i
# (1-based; "song" is instance 1, "song@2" instance 2) listens on the service's port plus
# (i-1) * FERMATA_REPLICA_PORT_STEP (100): song 8082, 8182, 8282...
declare -A FM_PORT_VAR=([resource]=RESOURCE_PORT [song]=SONG_PORT [storage]=STORAGE_PORT [processor]=PROCESSOR_PORT)
declare -A FM_PORT_DEF=([resource]=8081 [song]=8082 [storage]=8083 [processor]=8084)
declare -A FM_IPORT_VAR=([resource]=RESOURCE_INTERNAL_PORT [song]=SONG_INTERNAL_PORT [storage]=STORAGE_INTERNAL_PORT)
declare -A FM_IPORT_DEF=([resource]=9081 [song]=9082 [storage]=9083)

# The number of instances: FERMATA_REPLICAS, else what the running stack was started with
# (scripts/run.sh writes it into the data directory, so `scripts/services.sh kill song`
# reaches every instance without the caller exporting it again), else 1.
fm_replicas() {
  if [ -n "${FERMATA_REPLICAS:-}" ]; then echo "$FERMATA_REPLICAS"
  elif [ -s "${FERMATA_DATA_DIR:-/nonexistent}/replicas" ]; then cat "$FERMATA_DATA_DIR/replicas"
  else echo 1; fi
}
fm_replica_step() { echo "${FERMATA_REPLICA_PORT_STEP:-100}"; }

# fm_instance NAME: "SVC I" for "svc" (instance 1) or "svc@I".
fm_instance() { local n=$1; case "$n" in *@*) echo "${n%@*} ${n#*@}" ;; *) echo "$n 1" ;; esac; }
# fm_instances SVC: the names of every instance of SVC.
fm_instances() {
  local i n; n=$(fm_replicas)
  echo "$1"
  for ((i = 2; i <= n; i++)); do echo "$1@$i"; done
}
# fm_service_port NAME: the public port of an instance.
fm_service_port() {
  local s i v; read -r s i <<<"$(fm_instance "$1")"
  v=${FM_PORT_VAR[$s]}
  echo $(( ${!v:-${FM_PORT_DEF[$s]}} + (i - 1) * $(fm_replica_step) ))
}
# fm_internal_port NAME: the internal port of an instance ("" for the processor: none).
fm_internal_port() {
  local s i v; read -r s i <<<"$(fm_instance "$1")"
  v=${FM_IPORT_VAR[$s]:-}
  [ -n "$v" ] || return 0
  echo $(( ${!v:-${FM_IPORT_DEF[$s]}} + (i - 1) * $(fm_replica_step) ))
}
