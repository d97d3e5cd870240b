# RabbitMQ: one private node from Debian's rabbitmq-server, with its own node name, ports,
# Erlang cookie, data, logs and config under $FERMATA_DATA_DIR/rabbitmq (owned by rabbitmq,
# mode 700; the config holding the password is mode 600), so it never meets a system-wide
# node or another engineer's stack. Durable queues and persistent messages survive restarts
# in its mnesia directory there.
#
# Ports (all overridable; the defaults derive from AMQP_PORT so that two stacks started with
# different AMQP_PORTs do not share anything):
#   AMQP                 AMQP_PORT                 26720
#   Erlang distribution  RABBITMQ_DIST_PORT        AMQP_PORT+1
#   CLI tools' dist      RABBITMQ_CTL_PORT_MIN..+7 AMQP_PORT+2 .. AMQP_PORT+9
#   management (opt-in)  RABBITMQ_MGMT_PORT        AMQP_PORT+10 (enable: RABBITMQ_MGMT=1)
#   epmd                 RABBITMQ_EPMD_PORT        AMQP_PORT + 11
#   AMQP over TLS        RABBITMQ_TLS_PORT         AMQP_PORT + 12 (opt-in: RABBITMQ_TLS=1)
# Everything listens on 127.0.0.1 only.
#
# The TLS listener (amqps, what managed brokers offer) gets a certificate for "localhost"
# from a private CA, both made with openssl at the first start in this data directory
# (the CA's key is thrown away once it has signed). `stack.sh env` then exports AMQPS_URL
# and AMQPS_CA_FILE (the CA's certificate, readable by everyone) for the tests. The user fermata/fermata is created on first boot
# (default_user in the config); guest is removed by that same setting.
#
# Start-up is on the critical path of the fault tests (they SIGKILL and restart the node),
# so no plugin is enabled by default: the management plugin alone adds seconds.
COMPONENTS+=(rabbitmq)
AMQP_PORT=${AMQP_PORT:-26720}
RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-$((AMQP_PORT + 1))}
RABBITMQ_CTL_PORT_MIN=${RABBITMQ_CTL_PORT_MIN:-$((AMQP_PORT + 2))}
RABBITMQ_MGMT_PORT=${RABBITMQ_MGMT_PORT:-$((AMQP_PORT + 10))}
RABBITMQ_EPMD_PORT=${RABBITMQ_EPMD_PORT:-$((AMQP_PORT + 11))}
RABBITMQ_MGMT=${RABBITMQ_MGMT:-0}
RABBITMQ_TLS=${RABBITMQ_TLS:-0}
RABBITMQ_TLS_PORT=${RABBITMQ_TLS_PORT:-$((AMQP_PORT + 12))}
RMQ_CA="$FERMATA_DATA_DIR/tls/rabbitmq-ca.pem"
RMQ_DIR="$FERMATA_DATA_DIR/rabbitmq"
RMQ_NODE="fermata-$AMQP_PORT@localhost"
RMQ_SBIN=/usr/lib/rabbitmq/bin

# rmq_cmd_: sets RMQ_CMD to the prefix that runs a RabbitMQ script with this node's private
# environment, as the rabbitmq user when we are root (the files under $RMQ_DIR belong to it).
rmq_cmd_() {
  local envs=(
    HOME="$RMQ_DIR/home"
    RABBITMQ_NODENAME="$RMQ_NODE"
    RABBITMQ_USE_LONGNAME=false
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$AMQP_PORT"
    RABBITMQ_DIST_PORT="$RABBITMQ_DIST_PORT"
    RABBITMQ_CTL_DIST_PORT_MIN="$RABBITMQ_CTL_PORT_MIN"
    RABBITMQ_CTL_DIST_PORT_MAX="$((RABBITMQ_CTL_PORT_MIN + 7))"
    ERL_EPMD_PORT="$RABBITMQ_EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/etc/rabbitmq-env.conf"
    RABBITMQ_CONFIG_FILE="$RMQ_DIR/etc/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/etc/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/etc/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    RABBITMQ_LOG_BASE="$RMQ_DIR/log"
    RABBITMQ_PID_FILE="$RMQ_DIR/rabbitmq.pid"
    RABBITMQ_PLUGINS_EXPAND_DIR="$RMQ_DIR/plugins-expand"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    PATH=/usr/lib/rabbitmq/bin:/usr/bin:/bin
    LANG=C.UTF-8 LC_ALL=C.UTF-8
  )
  RMQ_CMD=(env -i "${envs[@]}")
  [ "$(id -u)" -eq 0 ] && RMQ_CMD=(runuser -u rabbitmq -- "${RMQ_CMD[@]}")
  return 0
}

rmq_() { local RMQ_CMD; rmq_cmd_; "${RMQ_CMD[@]}" "$@"; }

rmq_pid_() { fm_pid_alive "$RMQ_DIR/rabbitmq.pid" beam; }

# rmq_tls_files_: the private CA's certificate ($RMQ_CA) and the broker's key and
# certificate for localhost ($RMQ_DIR/tls), made once.
rmq_tls_files_() {
  local dir="$RMQ_DIR/tls" tmp
  [ -s "$dir/server.pem" ] && [ -s "$dir/server.key" ] && [ -s "$RMQ_CA" ] && return 0
  command -v openssl >/dev/null || { echo "rabbitmq: openssl not found (RABBITMQ_TLS=1); run scripts/deps.sh" >&2; return 1; }
  mkdir -p "$dir" "$(dirname "$RMQ_CA")"
  chmod 755 "$(dirname "$RMQ_CA")"
  tmp=$(mktemp -d)
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Fermata test CA" \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 &&
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" \
    -out "$tmp/server.csr" >/dev/null 2>&1 &&
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tmp/ext" &&
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 3650 -extfile "$tmp/ext" -out "$dir/server.pem" >/dev/null 2>&1 ||
    { rm -rf "$tmp"; echo "rabbitmq: could not make the TLS certificates" >&2; return 1; }
  install -m 644 "$tmp/ca.pem" "$RMQ_CA"
  cp "$tmp/ca.pem" "$dir/ca.pem"
  rm -rf "$tmp"
  chmod 600 "$dir/server.key"
}

rmq_write_config_() {
  fm_component_dir rabbitmq rabbitmq 700 >/dev/null
  mkdir -p "$RMQ_DIR"/{etc,home,mnesia,log,plugins-expand}
  if [ "$RABBITMQ_TLS" = 1 ]; then rmq_tls_files_ || return 1; fi
  local um; um=$(umask); umask 077
  : >"$RMQ_DIR/etc/rabbitmq-env.conf"
  echo '[].' >"$RMQ_DIR/etc/advanced.config"
  if [ "$RABBITMQ_MGMT" = 1 ]; then
    echo '[rabbitmq_management].' >"$RMQ_DIR/etc/enabled_plugins"
  else
    echo '[].' >"$RMQ_DIR/etc/enabled_plugins"
  fi
  cat >"$RMQ_DIR/etc/rabbitmq.conf" <<EOF
# written by scripts/stack.d/20-rabbitmq.sh; regenerated on every start
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
default_user = fermata
default_pass = fermata
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
log.console = false
log.file.level = ${RABBITMQ_LOG_LEVEL:-info}
# a shared dev machine: don't block publishers because a disk is nearly full
disk_free_limit.absolute = 50MB
management.tcp.port = $RABBITMQ_MGMT_PORT
management.tcp.ip = 127.0.0.1
EOF
  if [ "$RABBITMQ_TLS" = 1 ]; then
    cat >>"$RMQ_DIR/etc/rabbitmq.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$RABBITMQ_TLS_PORT
ssl_options.cacertfile = $RMQ_DIR/tls/ca.pem
ssl_options.certfile = $RMQ_DIR/tls/server.pem
ssl_options.keyfile = $RMQ_DIR/tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOF
  fi
  umask "$um"
  chmod 600 "$RMQ_DIR"/etc/*
  if fm_is_root; then chown -R rabbitmq:rabbitmq "$RMQ_DIR"; fi
  return 0
}

rabbitmq_start() {
  [ -x "$RMQ_SBIN/rabbitmq-server" ] || { echo "rabbitmq: rabbitmq-server not found; run scripts/deps.sh" >&2; return 1; }
  fm_need_user rabbitmq
  if rmq_pid_ >/dev/null; then
    echo "rabbitmq: already running (node $RMQ_NODE, 127.0.0.1:$AMQP_PORT)"
    return 0
  fi
  fm_port_check rabbitmq "$AMQP_PORT" AMQP_PORT || return 1
  fm_port_check rabbitmq "$RABBITMQ_DIST_PORT" RABBITMQ_DIST_PORT || return 1
  if [ "$RABBITMQ_TLS" = 1 ]; then fm_port_check rabbitmq "$RABBITMQ_TLS_PORT" RABBITMQ_TLS_PORT || return 1; fi
  local t0=$SECONDS attempt
  # Two attempts: a node can fail at once when our private epmd is in a bad state (left by
  # a stack that was killed, or still shutting down when we start): then clean up and retry.
  for attempt in 1 2; do
    rmq_write_config_ || return 1
    rm -f "$RMQ_DIR/rabbitmq.pid"
    # setsid: the node must outlive the caller's session and ignore its Ctrl-C.
    local RMQ_CMD; rmq_cmd_
    setsid "${RMQ_CMD[@]}" "$RMQ_SBIN/rabbitmq-server" </dev/null >>"$RMQ_DIR/log/stdout.log" 2>&1 &
    if rmq_wait_started_ $!; then
      echo "rabbitmq: listening on 127.0.0.1:$AMQP_PORT (node $RMQ_NODE, started in $((SECONDS - t0))s)"
      return 0
    fi
    echo "rabbitmq: start attempt $attempt failed; cleaning up" >&2
    rabbitmq_kill
    rmq_epmd_stop_
  done
  echo "rabbitmq: did not start; see $RMQ_DIR/log" >&2
  tail -n 20 "$RMQ_DIR/log/stdout.log" >&2
  return 1
}

# rmq_wait_started_ LAUNCHER_PID: true once the node accepts AMQP and has booted; false
# as soon as the launcher exits (the node died) or after 60 s.
rmq_wait_started_() {
  local launcher=$1 i
  for ((i = 0; i < 600; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$AMQP_PORT") 2>/dev/null; then
      # AMQP is the last listener to open: once it accepts, await_startup returns at once.
      rmq_ "$RMQ_SBIN/rabbitmqctl" -q await_startup --timeout 60 >/dev/null 2>&1
      return
    fi
    kill -0 "$launcher" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

rabbitmq_stop() {
  local pid
  pid=$(rmq_pid_) || { rmq_epmd_stop_; return 0; }
  rmq_ "$RMQ_SBIN/rabbitmqctl" -q shutdown --timeout 30 >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$RMQ_DIR/rabbitmq.pid"
  rmq_epmd_stop_
  return 0
}

# Our private epmd is started by the first Erlang VM that uses its port and outlives it;
# stop it once no node is registered any more.
rmq_epmd_stop_() {
  command -v epmd >/dev/null || return 0
  local names
  names=$(epmd -port "$RABBITMQ_EPMD_PORT" -names 2>/dev/null) || return 0
  echo "$names" | grep -q '^name ' || epmd -port "$RABBITMQ_EPMD_PORT" -kill >/dev/null 2>&1 || true
}

# SIGKILL the beam process (the fault tests' "broker crashed"); wait until the port is free.
rabbitmq_kill() {
  local pid
  pid=$(rmq_pid_) || return 0
  kill -KILL "$pid" 2>/dev/null || true
  fm_wait_gone 5 "$pid" || true
  rm -f "$RMQ_DIR/rabbitmq.pid"
}

# rabbitmq_pids: the node, its helper processes, its launcher and our private epmd.
rabbitmq_pids() {
  local pid
  if pid=$(rmq_pid_); then echo "$pid"; pgrep -P "$pid" || true; fi
  pgrep -f -- "RABBITMQ_NODENAME=$RMQ_NODE" || true
  command -v ss >/dev/null || return 0
  ss -Hltnp "sport = :$RABBITMQ_EPMD_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

rabbitmq_status() {
  local pid
  if pid=$(rmq_pid_) && (exec 3<>"/dev/tcp/127.0.0.1/$AMQP_PORT") 2>/dev/null; then
    echo "up 127.0.0.1:$AMQP_PORT (node $RMQ_NODE, pid $pid)"
  else
    echo down; return 1
  fi
}

rabbitmq_env() {
  echo "export AMQP_URL='amqp://fermata:fermata@127.0.0.1:$AMQP_PORT/'"
  if [ "$RABBITMQ_TLS" = 1 ]; then
    echo "export AMQPS_URL='amqps://fermata:fermata@localhost:$RABBITMQ_TLS_PORT/'"
    echo "export AMQPS_CA_FILE='$RMQ_CA'"
  fi
}
