# Object store: moto's S3-compatible server (pinned in tests/requirements.txt, installed
# into .venv by scripts/deps.sh) on loopback.
#
# Why moto and not LocalStack: LocalStack needs a Docker engine, which these machines do
# not have; moto's server is a plain Python process.
#
# Limitation: moto keeps every bucket and object in memory. moto 5.0.x has no
# persistence option (no state file, no --persist flag; upstream getmoto/moto#1069 was
# closed as "would need to change almost all of moto"). So `stop`, `kill` or a crash lose
# all buckets and objects. Services must therefore (re)create their buckets on start and
# keep retrying while the store is unreachable; fault tests that kill the store must expect
# an empty store after the restart.
#
# Runs as the calling user (root is acceptable: it only binds a high loopback port and
# writes under $FERMATA_RUN_DIR/s3).
COMPONENTS+=(s3)
S3_PORT=${S3_PORT:-29000}
S3_DIR="$FERMATA_RUN_DIR/s3"
S3_PID="$S3_DIR/moto.pid"
S3_LOG="$S3_DIR/moto.log"
S3_BIN="$ROOT/.venv/bin/moto_server"

# s3_pid_: prints the pid of our running server, fails when there is none (or the pid
# file is stale, e.g. after a reboot reused the pid for another program).
s3_pid_() {
  local pid
  pid=$(cat "$S3_PID" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -q moto_server "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

s3_start() {
  [ -x "$S3_BIN" ] || { echo "s3: $S3_BIN not found; run scripts/deps.sh" >&2; return 1; }
  mkdir -p "$S3_DIR"
  if s3_pid_ >/dev/null; then
    echo "s3: already running on 127.0.0.1:$S3_PORT"
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
    echo "s3: port $S3_PORT is taken by another program" >&2
    return 1
  fi
  # setsid: the server must outlive this script and not get the terminal's signals.
  # PYTHONUNBUFFERED so the log shows requests as they happen.
  PYTHONUNBUFFERED=1 setsid "$S3_BIN" -H 127.0.0.1 -p "$S3_PORT" >>"$S3_LOG" 2>&1 </dev/null &
  echo $! >"$S3_PID"
  if ! wait_for_port "$S3_PORT" 30; then
    echo "s3: moto_server did not open port $S3_PORT; log $S3_LOG:" >&2
    tail -n 20 "$S3_LOG" >&2
    return 1
  fi
  echo "s3: listening on 127.0.0.1:$S3_PORT (moto, in memory; log $S3_LOG)"
}

# s3_wait_gone_ PID: waits up to 5 s for the process to exit so the port is free again.
s3_wait_gone_() {
  local i
  for ((i = 0; i < 50; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

s3_stop() {
  local pid
  pid=$(s3_pid_) || { rm -f "$S3_PID"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  s3_wait_gone_ "$pid" || { kill -KILL "$pid" 2>/dev/null || true; s3_wait_gone_ "$pid" || true; }
  rm -f "$S3_PID"
}

s3_kill() {
  local pid
  pid=$(s3_pid_) || { rm -f "$S3_PID"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  s3_wait_gone_ "$pid" || true
  rm -f "$S3_PID"
}

s3_status() {
  if s3_pid_ >/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
    echo "up 127.0.0.1:$S3_PORT"
  else
    echo down
    return 1
  fi
}

s3_env() {
  echo "export S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
  echo "export S3_REGION=us-east-1"
  echo "export AWS_ACCESS_KEY_ID=test"
  echo "export AWS_SECRET_ACCESS_KEY=test"
}
