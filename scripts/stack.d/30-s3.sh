# Object store: the Versity S3 Gateway (versitygw, pinned in scripts/lib/common.sh and
# built by scripts/deps.sh), an S3 server over a POSIX directory, on loopback.
#
# Every bucket is a directory and every object a plain file under $S3_DATA_DIR (default
# $FERMATA_DATA_DIR/s3/data, owned by the store's own user fermata-s3, mode 700), so the
# objects survive restarts and crashes of the store like the databases do. It validates
# SigV4 signatures with the root credentials given here (AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY, the variables the services read too; passed in its environment,
# not on its command line). How it differs from AWS S3: docs/DEVELOPING.md.
#
# A new object is written to an unnamed temporary file (O_TMPFILE) and linked into place
# only when the whole body arrived, so a crash mid-upload leaves no partial object. It does
# not fsync: S3_SYNC_DIR (in `env`) lets the Resource Service make an object durable before
# it acknowledges the upload (lib/syncbar).
#
# versitygw works relative to its data directory, entered once at start: if that directory
# is removed while it runs, it goes on in the deleted one and fails every request. `status`
# says so, and `start s3` then restarts it (after the directory is back, or creating it).
COMPONENTS+=(s3)
S3_PORT=${S3_PORT:-29000}
S3_REGION=${S3_REGION:-us-east-1}
S3_ACCESS_KEY=${AWS_ACCESS_KEY_ID:-test}
S3_SECRET_KEY=${AWS_SECRET_ACCESS_KEY:-test}
S3_DIR="$FERMATA_DATA_DIR/s3"
S3_DATA=${S3_DATA_DIR:-$S3_DIR/data}
S3_PID="$S3_DIR/versitygw.pid"
S3_LOG="$S3_DIR/versitygw.log"
S3_USER=fermata-s3

s3_pid_() { fm_pid_alive "$S3_PID" versitygw; }

# s3_orphaned_ PID: true when the store's data directory was removed under it.
s3_orphaned_() { case "$(readlink "/proc/$1/cwd" 2>/dev/null)" in *" (deleted)") return 0 ;; esac; return 1; }

s3_start() {
  local bin
  bin=$(fm_versitygw_bin)
  [ -x "$bin" ] || { echo "s3: versitygw not found at $bin; run scripts/deps.sh" >&2; return 1; }
  fm_need_user "$S3_USER"
  fm_component_dir s3 "$S3_USER" 700 >/dev/null
  local pid
  if pid=$(s3_pid_); then
    if ! s3_orphaned_ "$pid"; then
      echo "s3: already running on 127.0.0.1:$S3_PORT"
      return 0
    fi
    echo "s3: its data directory $S3_DATA was removed while it ran; restarting it" >&2
    s3_stop
  fi
  fm_port_check s3 "$S3_PORT" S3_PORT || return 1
  if [ ! -d "$S3_DATA" ]; then
    mkdir -p "$S3_DATA"
    chmod 700 "$S3_DATA"
    if fm_is_root; then chown "$S3_USER:" "$S3_DATA"; fi
  fi
  local run=()
  if fm_is_root; then
    run=(setpriv --reuid="$S3_USER" --regid="$(id -gn "$S3_USER")" --clear-groups --no-new-privs --)
  fi
  # setsid: the server must outlive this script and not get the terminal's signals. The
  # log is opened here (as root, when we are): the store needs no write access outside
  # its data directory.
  env -i PATH=/usr/bin:/bin HOME=/nonexistent \
    ROOT_ACCESS_KEY_ID="$S3_ACCESS_KEY" ROOT_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
    setsid "${run[@]}" "$bin" --port "127.0.0.1:$S3_PORT" --region "$S3_REGION" --keep-alive --quiet \
    posix "$S3_DATA" >>"$S3_LOG" 2>&1 </dev/null &
  echo $! >"$S3_PID"
  if ! wait_for_port "$S3_PORT" 30; then
    echo "s3: versitygw did not open port $S3_PORT; log $S3_LOG:" >&2
    tail -n 20 "$S3_LOG" >&2
    return 1
  fi
  echo "s3: listening on 127.0.0.1:$S3_PORT (versitygw $VERSITYGW_VERSION; objects in $S3_DATA; log $S3_LOG)"
}

s3_stop() {
  local pid
  pid=$(s3_pid_) || { rm -f "$S3_PID"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  fm_wait_gone 10 "$pid" || { kill -KILL "$pid" 2>/dev/null || true; fm_wait_gone 5 "$pid" || true; }
  rm -f "$S3_PID"
}

s3_kill() {
  local pid
  pid=$(s3_pid_) || { rm -f "$S3_PID"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  fm_wait_gone 5 "$pid" || true
  rm -f "$S3_PID"
}

s3_pids() { s3_pid_ || true; }

s3_status() {
  local pid
  if pid=$(s3_pid_) && s3_orphaned_ "$pid"; then
    echo "broken: its data directory $S3_DATA was removed while it ran (pid $pid); 'scripts/stack.sh start s3' restarts it"
    return 1
  elif pid=$(s3_pid_) && fm_port_in_use "$S3_PORT"; then
    echo "up 127.0.0.1:$S3_PORT (versitygw, pid $pid)"
  else
    echo down
    return 1
  fi
}

s3_env() {
  echo "export S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
  # a directory on the store's filesystem that the Resource Service may open: it syncs that
  # filesystem before it commits a row naming a new object (versitygw does not fsync)
  local sync_dir=$FERMATA_DATA_DIR
  [ -n "${S3_DATA_DIR:-}" ] && sync_dir=$(dirname "$S3_DATA_DIR")
  echo "export S3_SYNC_DIR=$sync_dir"
  echo "export S3_REGION=$S3_REGION"
  echo "export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY"
  echo "export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY"
}
