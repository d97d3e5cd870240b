# Metrics: Prometheus from Debian's package (`prometheus`, installed by scripts/deps.sh)
# on 127.0.0.1:PROMETHEUS_PORT (9090), scraping /actuator/prometheus of every instance of
# every service (FERMATA_REPLICAS of each, ports from scripts/lib/common.sh) every 5 s.
# On when FERMATA_PROMETHEUS=1, which `make run` sets unless told otherwise (measured in
# the README, "Metrics": about a second to ready and 40-50 MB resident); off in the test
# and benchmark stacks unless asked for.
#
# The configuration is written at each start into $FERMATA_DATA_DIR/prometheus/prometheus.yml
# (prometheus_config_ prints it; `make lint` checks it with promtool), the samples are kept
# in $FERMATA_DATA_DIR/prometheus/data (7 days) across stops like the other servers' data.
# Started by root it runs as Debian's `prometheus` user.
#
# Each target is labelled like the Compose configuration's (deploy/prometheus/prometheus.yml):
# job = the service (resource, song, storage, processor), application = its Spring name
# (resource-service, ...: the dashboards' `application` variable), fermata_instance = the
# instance name of scripts/services.sh (song, song@2). Not scraped: the gateway (nginx's
# stub_status is not in Prometheus' format and an exporter would be one more program) and
# RabbitMQ (its rabbitmq_prometheus plugin is not enabled in the local stack, where every
# plugin costs start-up time; Compose scrapes it).
COMPONENTS+=(prometheus)
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
PROM_DIR="$FERMATA_DATA_DIR/prometheus"
PROM_PID="$PROM_DIR/prometheus.pid"
PROM_LOG="$PROM_DIR/prometheus.log"
PROM_BIN=${PROMETHEUS_BIN:-/usr/bin/prometheus}
PROM_USER=${PROMETHEUS_USER:-prometheus}
PROM_URL="http://127.0.0.1:$PROMETHEUS_PORT"

prometheus_on_() { [ "${FERMATA_PROMETHEUS:-0}" = 1 ]; }
prometheus_pid_() { fm_pid_alive "$PROM_PID" "config.file=$PROM_DIR/"; }

# prometheus_config_: the configuration for the instances of this stack, on stdout.
prometheus_config_() {
  local s n
  cat <<CONF
# written by scripts/stack.d/55-prometheus.sh: every instance of every service
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
scrape_configs:
CONF
  for s in resource song storage processor; do
    cat <<CONF
  - job_name: $s
    metrics_path: /actuator/prometheus
    static_configs:
CONF
    for n in $(fm_instances "$s"); do
      cat <<CONF
      - targets: ["127.0.0.1:$(fm_service_port "$n")"]
        labels: {application: "$s-service", fermata_instance: "$n"}
CONF
    done
  done
}

prometheus_start() {
  prometheus_on_ || return 0
  if prometheus_pid_ >/dev/null; then echo "prometheus: already running on $PROM_URL"; return 0; fi
  [ -x "$PROM_BIN" ] || { echo "prometheus: $PROM_BIN not found; run scripts/deps.sh (Debian's prometheus)" >&2; return 1; }
  fm_need_user "$PROM_USER"
  fm_component_dir prometheus "$PROM_USER" 700 >/dev/null
  fm_port_check prometheus "$PROMETHEUS_PORT" PROMETHEUS_PORT || return 1
  prometheus_config_ >"$PROM_DIR/prometheus.yml.new"
  if fm_is_root; then chown "$PROM_USER:" "$PROM_DIR/prometheus.yml.new"; fi
  mv "$PROM_DIR/prometheus.yml.new" "$PROM_DIR/prometheus.yml"
  if [ ! -d "$PROM_DIR/data" ]; then
    mkdir -p "$PROM_DIR/data"
    if fm_is_root; then chown "$PROM_USER:" "$PROM_DIR/data"; fi
  fi
  local run=()
  if fm_is_root; then
    run=(setpriv --reuid="$PROM_USER" --regid="$(id -gn "$PROM_USER")" --clear-groups --no-new-privs --)
  fi
  env -i PATH=/usr/bin:/bin HOME=/nonexistent \
    setsid "${run[@]}" "$PROM_BIN" --config.file="$PROM_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROM_DIR/data" --storage.tsdb.retention.time=7d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >>"$PROM_LOG" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$PROM_PID"
  # alive by pid alone here: prometheus_pid_ matches the command line, which is still the
  # forked shell's until exec (a race that made a loaded machine give up at once)
  for ((i = 0; i < 300; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$PROM_URL/-/ready" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! curl -fsS -o /dev/null --max-time 1 "$PROM_URL/-/ready" 2>/dev/null; then
    echo "prometheus: not ready on port $PROMETHEUS_PORT; log $PROM_LOG:" >&2
    tail -n 20 "$PROM_LOG" >&2
    return 1
  fi
  echo "prometheus: listening on $PROM_URL (scraping $(($(fm_replicas) * 4)) service instances; data $PROM_DIR/data; log $PROM_LOG)"
}

prometheus_stop() {
  local pid
  pid=$(prometheus_pid_) || { rm -f "$PROM_PID"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  fm_wait_gone 15 "$pid" || { kill -KILL "$pid" 2>/dev/null || true; fm_wait_gone 5 "$pid" || true; }
  rm -f "$PROM_PID"
}

prometheus_kill() {
  local pid
  pid=$(prometheus_pid_) || { rm -f "$PROM_PID"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  fm_wait_gone 5 "$pid" || true
  rm -f "$PROM_PID"
}

prometheus_pids() { prometheus_pid_ || true; }

prometheus_status() {
  local pid
  if pid=$(prometheus_pid_); then echo "up $PROM_URL (prometheus, pid $pid)"; return 0; fi
  prometheus_on_ || { echo "off (FERMATA_PROMETHEUS=1 turns it on; make run does)"; return 0; }
  echo down
  return 1
}

# Nothing for the services: Prometheus pulls.
prometheus_env() { :; }
