# The trace collector of `FERMATA_TRACING=1 make run`: a real Zipkin server (its exec jar,
# io.zipkin:zipkin-server, fetched by scripts/deps.sh; Java 17 runs it) on
# 127.0.0.1:ZIPKIN_PORT (9411), keeping traces in memory (gone when it stops). Off unless
# FERMATA_TRACING=1; `scripts/stack.sh start zipkin` then starts it alone (the tests stop
# and start it to show that the services do not notice).
#
# With it on, `env` points the services at it (MANAGEMENT_ZIPKIN_TRACING_ENDPOINT) and
# samples every trace (MANAGEMENT_TRACING_SAMPLING_PROBABILITY=1.0, unless set), so one
# upload shows whole in its UI at http://127.0.0.1:ZIPKIN_PORT/zipkin/.
# Measured (README, "Tracing"): 3.4 s to healthy and 157 MB resident when idle with the
# flags below (5.1 s and 254 MB with the JVM's defaults), too much to be on by default.
COMPONENTS+=(zipkin)
ZIPKIN_PORT=${ZIPKIN_PORT:-9411}
ZK_DIR="$FERMATA_DATA_DIR/zipkin"
ZK_PID="$ZK_DIR/zipkin.pid"
ZK_LOG="$ZK_DIR/zipkin.log"
ZK_USER=fermata-zipkin

zipkin_on_() { [ "${FERMATA_TRACING:-0}" = 1 ]; }
zipkin_pid_() { fm_pid_alive "$ZK_PID" zipkin-server; }

zipkin_start() {
  zipkin_on_ || return 0
  if zipkin_pid_ >/dev/null; then echo "zipkin: already running on 127.0.0.1:$ZIPKIN_PORT"; return 0; fi
  local jar
  jar=$(fm_zipkin_jar)
  [ -f "$jar" ] || { echo "zipkin: $jar not found; run scripts/deps.sh" >&2; return 1; }
  command -v java >/dev/null || { echo "zipkin: no java; run scripts/deps.sh" >&2; return 1; }
  fm_need_user "$ZK_USER"
  fm_component_dir zipkin "$ZK_USER" 700 >/dev/null
  fm_port_check zipkin "$ZIPKIN_PORT" ZIPKIN_PORT || return 1
  local run=()
  if fm_is_root; then
    run=(setpriv --reuid="$ZK_USER" --regid="$(id -gn "$ZK_USER")" --clear-groups --no-new-privs --)
  fi
  # loopback only (the whole list of Armeria's ports is given: Spring binds a list from one
  # source); a small heap and the serial collector: it holds one developer's traces, the
  # last 100,000 spans (about 90 MB of heap; the default 500,000 would not fit)
  env -i PATH=/usr/bin:/bin HOME=/nonexistent STORAGE_TYPE=mem MEM_MAX_SPANS=100000 QUERY_PORT="$ZIPKIN_PORT" \
    setsid "${run[@]}" java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k \
    -jar "$jar" --armeria.ports[0].port="$ZIPKIN_PORT" --armeria.ports[0].ip=127.0.0.1 \
    --armeria.ports[0].protocols[0]=http >>"$ZK_LOG" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$ZK_PID"
  # alive by pid alone here: zipkin_pid_ matches the command line, which is still the
  # forked shell's until exec (a race that made a loaded machine give up at once)
  for ((i = 0; i < 1200; i++)); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$ZIPKIN_PORT/health" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$ZIPKIN_PORT/health" 2>/dev/null; then
    echo "zipkin: did not become healthy on port $ZIPKIN_PORT; log $ZK_LOG:" >&2
    tail -n 20 "$ZK_LOG" >&2
    return 1
  fi
  echo "zipkin: listening on http://127.0.0.1:$ZIPKIN_PORT/zipkin/ (Zipkin $ZIPKIN_VERSION, in memory; log $ZK_LOG)"
}

zipkin_stop() {
  local pid
  pid=$(zipkin_pid_) || { rm -f "$ZK_PID"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  fm_wait_gone 15 "$pid" || { kill -KILL "$pid" 2>/dev/null || true; fm_wait_gone 5 "$pid" || true; }
  rm -f "$ZK_PID"
}

zipkin_kill() {
  local pid
  pid=$(zipkin_pid_) || { rm -f "$ZK_PID"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  fm_wait_gone 5 "$pid" || true
  rm -f "$ZK_PID"
}

zipkin_pids() { zipkin_pid_ || true; }

zipkin_status() {
  local pid
  if pid=$(zipkin_pid_); then
    echo "up http://127.0.0.1:$ZIPKIN_PORT/zipkin/ (zipkin $ZIPKIN_VERSION, pid $pid)"
    return 0
  fi
  zipkin_on_ || { echo "off (FERMATA_TRACING=1 turns it on)"; return 0; }
  echo down
  return 1
}

zipkin_env() {
  zipkin_on_ || return 0
  echo "export MANAGEMENT_ZIPKIN_TRACING_ENDPOINT=http://127.0.0.1:$ZIPKIN_PORT/api/v2/spans"
  echo "export MANAGEMENT_TRACING_SAMPLING_PROBABILITY=${MANAGEMENT_TRACING_SAMPLING_PROBABILITY:-1.0}"
}
