# Gateway: nginx (Debian nginx-light) in front of the services, on GATEWAY_PORT (8080).
#
# The configuration is rendered from deploy/nginx/fermata.conf.template (the same file
# Docker Compose and Kubernetes use) into $FERMATA_DATA_DIR/nginx/fermata.conf; pid, logs and
# temp files live in that directory too. Started as root, the master keeps root only to
# bind and open logs; workers run as www-data (Debian's nginx user, shared with no Fermata
# service). Started as a user, everything runs as that user.
#
# Configuration (environment):
#   GATEWAY_PORT (8080), GATEWAY_HOST (127.0.0.1; 0.0.0.0 to serve other machines)
#   RESOURCE_PORT (8081), SONG_PORT (8082), STORAGE_PORT (8083): where the services listen
#   GATEWAY_MAX_BODY_SIZE (1025m: 1 GiB + 1 MiB, at or above RESOURCE_MAX_UPLOAD_BYTES), GATEWAY_UPSTREAM_TIMEOUT (120s), GATEWAY_WORKERS (2)
#   GATEWAY_EXPOSE_ACTUATOR (0): 1/true/yes routes /actuator/* to the Resource Service
#   GATEWAY_WRITE_RATE (100r/s), GATEWAY_WRITE_BURST (200), GATEWAY_WRITE_CONNS (64): abuse
#     limits on writes (every method but GET/HEAD) per client address; over them, 429
COMPONENTS+=(gateway)
GATEWAY_PORT=${GATEWAY_PORT:-8080}
GATEWAY_HOST=${GATEWAY_HOST:-127.0.0.1}
GW_DIR="$FERMATA_DATA_DIR/nginx"
GW_USER=${GATEWAY_USER:-www-data}
GW_CONF="$GW_DIR/fermata.conf"
GW_PID="$GW_DIR/nginx.pid"
GW_BIN=${NGINX_BIN:-/usr/sbin/nginx}
GW_TEMPLATE="$ROOT/deploy/nginx/fermata.conf.template"
# The variables envsubst may replace: nginx's own $variables must stay as they are.
GW_VARS=$(grep -o '\${[A-Z0-9_]*}' "$GW_TEMPLATE" | sort -u | tr '\n' ' ')
GATEWAY_INTERNAL_PORT=${GATEWAY_INTERNAL_PORT:-8089}

# gateway_params_ NAME: the upstream server parameters of a service instance: passive
# health with replicas (see the template).
gateway_params_() {
  if [ "$(fm_replicas)" -gt 1 ]; then echo "max_fails=1 fail_timeout=1s"; else echo "max_fails=0"; fi
}

# gateway_more_ SVC [internal]: "server ...;" lines of the instances after the first.
gateway_more_() {
  local n out="" port
  for n in $(fm_instances "$1" | tail -n +2); do
    port=$(fm_service_port "$n")
    [ "${2:-}" = internal ] && [ "${FERMATA_AUTH:-}" = jwt ] && port=$(fm_internal_port "$n")
    out+="server 127.0.0.1:$port $(gateway_params_ "$n"); "
  done
  echo "$out"
}

# gateway_internal_ FILE: with replicas, the listener the services call each other through
# (127.0.0.1:GATEWAY_INTERNAL_PORT only: the API without the client-facing limits, to the
# instances' internal ports when authentication is on); none with one instance.
gateway_internal_() {
  rm -f "$1"
  [ "$(fm_replicas)" -gt 1 ] || return 0
  local s first port
  {
    echo "# written by scripts/stack.d/40-gateway.sh: the services' calls to each other"
    for s in resource song storage; do
      first=$(fm_service_port "$s")
      [ "${FERMATA_AUTH:-}" = jwt ] && first=$(fm_internal_port "$s")
      echo "upstream fm_${s}_internal { server 127.0.0.1:$first $(gateway_params_ "$s"); $(gateway_more_ "$s" internal) keepalive 16; }"
      echo "upstream fm_${s}_internal_fresh { server 127.0.0.1:$first $(gateway_params_ "$s"); $(gateway_more_ "$s" internal) }"
    done
    cat <<CONF
server {
    listen 127.0.0.1:$GATEWAY_INTERNAL_PORT;
    access_log $GW_DIR/internal-access.log fermata;
    client_max_body_size 1m;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_set_header X-Request-Id \$fm_request_id;
    proxy_connect_timeout 2s;
    proxy_read_timeout ${GATEWAY_UPSTREAM_TIMEOUT:-120s};
    proxy_next_upstream error timeout http_502 http_503 http_504;
    proxy_next_upstream_tries 3;
    # the processor's ranged reads of a resource: passed on as they come, no temp file
    location /resources { proxy_buffering off; proxy_pass http://fm_resource_internal\$fm_conn; }
    location /songs     { proxy_pass http://fm_song_internal\$fm_conn; }
    location /storages  { proxy_pass http://fm_storage_internal\$fm_conn; }
    location /          { return 404 '{"errorMessage":"Not found","errorCode":"404"}'; }
}
CONF
  } >"$1"
}

# gateway_render_ OUT: writes the configuration for this machine to OUT.
gateway_render_() {
  local dir expose user_directive=""
  dir=$(cd "$GW_DIR" && pwd)
  mkdir -p "$dir/conf.d"
  gateway_internal_ "$dir/conf.d/internal.conf"
  case "${GATEWAY_EXPOSE_ACTUATOR:-0}" in 1 | true | TRUE | yes | on) expose=1 ;; *) expose=0 ;; esac
  fm_is_root && user_directive="user $GW_USER $(id -gn "$GW_USER");"
  GATEWAY_LISTEN="$GATEWAY_HOST:$GATEWAY_PORT" \
  GATEWAY_USER_DIRECTIVE="$user_directive" \
  GATEWAY_WORKERS="${GATEWAY_WORKERS:-2}" \
  GATEWAY_RUN_DIR="$dir" \
  GATEWAY_ACCESS_LOG="$dir/access.log" \
  GATEWAY_ERROR_LOG="$dir/error.log" \
  RESOURCE_UPSTREAM="127.0.0.1:$(fm_service_port resource)" \
  SONG_UPSTREAM="127.0.0.1:$(fm_service_port song)" \
  STORAGE_UPSTREAM="127.0.0.1:$(fm_service_port storage)" \
  RESOURCE_UPSTREAM_PARAMS="$(gateway_params_ resource)" RESOURCE_UPSTREAM_MORE="$(gateway_more_ resource)" \
  SONG_UPSTREAM_PARAMS="$(gateway_params_ song)" SONG_UPSTREAM_MORE="$(gateway_more_ song)" \
  STORAGE_UPSTREAM_PARAMS="$(gateway_params_ storage)" STORAGE_UPSTREAM_MORE="$(gateway_more_ storage)" \
  GATEWAY_MAX_BODY_SIZE="${GATEWAY_MAX_BODY_SIZE:-1025m}" \
  GATEWAY_UPSTREAM_TIMEOUT="${GATEWAY_UPSTREAM_TIMEOUT:-120s}" \
  GATEWAY_EXPOSE_ACTUATOR="$expose" \
  GATEWAY_WRITE_RATE="${GATEWAY_WRITE_RATE:-100r/s}" \
  GATEWAY_WRITE_BURST="${GATEWAY_WRITE_BURST:-200}" \
  GATEWAY_WRITE_CONNS="${GATEWAY_WRITE_CONNS:-64}" \
    envsubst "$GW_VARS" <"$GW_TEMPLATE" >"$1"
}

# gateway_pid_: prints the pid of our running master, fails when there is none (or the
# pid file is stale).
gateway_pid_() { fm_pid_alive "$GW_PID" nginx; }

gateway_start() {
  [ -x "$GW_BIN" ] || { echo "gateway: $GW_BIN not found; run scripts/deps.sh" >&2; return 1; }
  command -v envsubst >/dev/null || { echo "gateway: envsubst not found (Debian gettext-base)" >&2; return 1; }
  fm_need_user "$GW_USER"
  fm_component_dir nginx "$(id -un)" 755 >/dev/null
  gateway_render_ "$GW_CONF.new"
  if gateway_pid_ >/dev/null; then
    # Running: load the (possibly changed) configuration without dropping connections.
    if ! "$GW_BIN" -t -q -e "$GW_DIR/error.log" -c "$GW_CONF.new" 2>"$GW_DIR/check.log"; then
      cat "$GW_DIR/check.log" >&2; rm -f "$GW_CONF.new"; return 1
    fi
    mv "$GW_CONF.new" "$GW_CONF"
    "$GW_BIN" -q -e "$GW_DIR/error.log" -c "$GW_CONF" -s reload
    echo "gateway: already running on $GATEWAY_HOST:$GATEWAY_PORT (configuration reloaded)"
    return 0
  fi
  mv "$GW_CONF.new" "$GW_CONF"
  fm_port_check gateway "$GATEWAY_PORT" GATEWAY_PORT || return 1
  if [ "$(fm_replicas)" -gt 1 ]; then fm_port_check gateway "$GATEWAY_INTERNAL_PORT" GATEWAY_INTERNAL_PORT || return 1; fi
  if ! "$GW_BIN" -t -q -e "$GW_DIR/error.log" -c "$GW_CONF" 2>"$GW_DIR/check.log"; then
    echo "gateway: invalid configuration $GW_CONF:" >&2; cat "$GW_DIR/check.log" >&2; return 1
  fi
  # nginx daemonizes itself; the master writes $GW_PID.
  "$GW_BIN" -e "$GW_DIR/error.log" -c "$GW_CONF" </dev/null >>"$GW_DIR/error.log" 2>&1 || {
    echo "gateway: nginx did not start; log $GW_DIR/error.log:" >&2; tail -n 20 "$GW_DIR/error.log" >&2; return 1
  }
  if ! wait_for_port "$GATEWAY_PORT" 10; then
    echo "gateway: nginx did not open port $GATEWAY_PORT; log $GW_DIR/error.log:" >&2
    tail -n 20 "$GW_DIR/error.log" >&2
    return 1
  fi
  local ports s
  ports=$(for s in resource song storage; do printf '%s :%s ' "$s" "$(for n in $(fm_instances "$s"); do fm_service_port "$n"; done | paste -sd,)"; done)
  echo "gateway: listening on $GATEWAY_HOST:$GATEWAY_PORT -> ${ports% }$([ "$(fm_replicas)" -gt 1 ] && echo "; the services' calls through 127.0.0.1:$GATEWAY_INTERNAL_PORT") (nginx; log $GW_DIR)"
}

gateway_stop() {
  local pid workers
  pid=$(gateway_pid_) || return 0
  workers=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -QUIT "$pid" 2>/dev/null || true   # graceful: finish requests in flight
  # shellcheck disable=SC2086
  fm_wait_gone 5 "$pid" $workers || { kill -TERM "$pid" $workers 2>/dev/null || true; fm_wait_gone 5 "$pid" $workers; }
  rm -f "$GW_PID"
  return 0
}

gateway_kill() {
  local pid workers
  pid=$(gateway_pid_) || return 0
  # The workers hold the listening socket too: kill them with the master.
  workers=$(pgrep -P "$pid" 2>/dev/null || true)
  # shellcheck disable=SC2086
  kill -KILL "$pid" $workers 2>/dev/null || true
  # shellcheck disable=SC2086
  fm_wait_gone 5 "$pid" $workers || true
  rm -f "$GW_PID"
}

gateway_pids() { local pid; pid=$(gateway_pid_) || return 0; echo "$pid"; pgrep -P "$pid" || true; }

gateway_status() {
  local pid
  if pid=$(gateway_pid_); then echo "up $GATEWAY_HOST:$GATEWAY_PORT (nginx, pid $pid)"; else echo down; return 1; fi
}

gateway_env() {
  local host=$GATEWAY_HOST
  case "$host" in 0.0.0.0 | "" | "*") host=127.0.0.1 ;; esac
  echo "export GATEWAY_URL=http://$host:$GATEWAY_PORT"
}
