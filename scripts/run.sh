#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts the local stack and every built
# service, prints where each listens and where the data lives, and stops everything
# cleanly on Ctrl-C. The data (databases, queues, objects) stays for the next start;
# `make reset` deletes it.
#
# A second `make run` while this checkout's stack runs leaves that one alone: it prints
# what is running and exits 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib/common.sh"
fm_data_dir_init
export FERMATA_BUILD_DIR=${FERMATA_BUILD_DIR:-$ROOT/build/release}
# two instances of each service behind the gateway: one dying is not an outage
export FERMATA_REPLICAS=${FERMATA_REPLICAS:-2}
# Prometheus scraping every instance (scripts/stack.d/55-prometheus.sh): cheap enough to be
# on by default (README, "Metrics"); FERMATA_PROMETHEUS=0 leaves it out
export FERMATA_PROMETHEUS=${FERMATA_PROMETHEUS:-1}

if "$ROOT/scripts/stack.sh" running || "$ROOT/scripts/services.sh" pids | grep -q .; then
  echo "run: Fermata from this checkout is already running (data $FERMATA_DATA_DIR):" >&2
  "$ROOT/scripts/stack.sh" status 2>&1 | grep -v ' down$' | sed 's/^/  /' >&2 || true
  "$ROOT/scripts/services.sh" status 2>&1 | grep -v ' down$' | sed 's/^/  /' >&2 || true
  echo "run: leaving it alone. Stop it with 'make stop' (or Ctrl-C in its terminal)." >&2
  exit 1
fi

echo "$FERMATA_REPLICAS" >"$FERMATA_DATA_DIR/replicas"

stopping=0
cleanup() {
  [ "$stopping" -eq 1 ] && return; stopping=1
  # Stopping must not depend on our output still being read (Ctrl-C may have ended a
  # pipe such as `make run | tee log`): no SIGPIPE, no exit on a failed echo.
  trap '' PIPE INT TERM
  set +e
  echo; echo "run: stopping services and stack..."
  "$ROOT/scripts/services.sh" stop || true
  "$ROOT/scripts/stack.sh" stop || true
  echo "run: stopped. The data stays in $FERMATA_DATA_DIR ('make reset' deletes it)."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/stack.sh" start
"$ROOT/scripts/services.sh" start
echo
echo "Fermata is running:"
"$ROOT/scripts/stack.sh" status | sed 's/^/  /' || true
"$ROOT/scripts/services.sh" status | sed 's/^/  /' || true
echo "API: http://127.0.0.1:${GATEWAY_PORT:-8080} (/resources, /songs, /storages)"
if [ "${FERMATA_TRACING:-0}" = 1 ]; then
  echo "Traces: http://127.0.0.1:${ZIPKIN_PORT:-9411}/zipkin/ (Zipkin; every request sampled)"
else
  echo "Traces: off ('FERMATA_TRACING=1 make run' starts Zipkin and exports every trace to it)"
fi
echo "Data: $FERMATA_DATA_DIR (kept across restarts; 'make reset' deletes it). Logs: $FERMATA_DATA_DIR/logs."
if [ "${FERMATA_AUTH:-}" = jwt ]; then
  echo "Authentication: ON. Every API call needs a Bearer token: curl -H \"Authorization: Bearer \$(scripts/token.sh fermata.read)\" ..."
else
  echo "WARNING: AUTHENTICATION IS OFF. Anyone who reaches the gateway can read, change and delete every file and storage. 'FERMATA_AUTH=jwt make run' turns it on."
fi
if [ "$FERMATA_PROMETHEUS" = 1 ]; then
  echo "Metrics: http://127.0.0.1:${PROMETHEUS_PORT:-9090} (Prometheus, every instance scraped every 5 s; try rate(http_server_requests_seconds_count[1m]))"
else
  echo "Metrics: Prometheus off (FERMATA_PROMETHEUS=0); each service has its own at /actuator/prometheus"
fi
echo "Press Ctrl-C to stop."
while true; do sleep 3600 & wait $!; done
