#!/usr/bin/env bash
# bench/song.sh: GET /songs/{id} of the Song Service against its ceiling, nginx serving a
# static file of the same bytes, side by side in one run; plus the service's RSS before
# and after 100k requests. Writes bench/results/song-<date>.md and prints it.
#
#   bench/song.sh                       (or BENCH_DURATION=30s bench/song.sh)
#
# Everything runs privately (run dir run/bench, ports below) and is stopped on exit, so it
# can run next to `make run` and colleagues' tests. Settings (environment):
#   BENCH_DURATION      per wrk run (10s)          BENCH_CONNECTIONS  ("1 16 64 256")
#   BENCH_THREADS       wrk threads (2; capped at the connection count)
#   BENCH_WARMUP        warm-up per target (3s)    BENCH_RSS_REQUESTS (100000)
#   BENCH_RSS_CONNECTIONS connections of the RSS run (64)
#   BENCH_NGINX_WORKERS (2)   BENCH_NGINX_ACCESS_LOG (on: nginx logs each request, as the
#                             service does; off: bare static-file ceiling)
#   PG_PORT (25620)  SONG_PORT (18282)  BENCH_NGINX_PORT (18290)
#   FERMATA_BUILD_DIR (build/release)  BENCH_CMAKE_ARGS (extra cmake -D flags, e.g. for a
#                     private build dir)  BENCH_SKIP_BUILD=1 (use the binary as it is)
#   BENCH_RESULTS (bench/results)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=lib/common.sh
. "$ROOT/bench/lib/common.sh"

COMMAND="bench/song.sh${*:+ $*}"
# The exact command for the report: the settings the caller gave, then argv.
for v in BENCH_DURATION BENCH_CONNECTIONS BENCH_THREADS BENCH_WARMUP BENCH_RSS_REQUESTS \
         BENCH_RSS_CONNECTIONS BENCH_NGINX_WORKERS BENCH_NGINX_ACCESS_LOG PG_PORT SONG_PORT \
         BENCH_NGINX_PORT FERMATA_BUILD_DIR BENCH_CMAKE_ARGS BENCH_SKIP_BUILD BENCH_SONG_ID; do
  val=$(printenv "$v") && COMMAND="$v='$val' $COMMAND"
done
BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64 256"}
BENCH_WARMUP=${BENCH_WARMUP:-3s}
BENCH_RSS_REQUESTS=${BENCH_RSS_REQUESTS:-100000}
BENCH_RSS_CONNECTIONS=${BENCH_RSS_CONNECTIONS:-64}
BENCH_NGINX_PORT=${BENCH_NGINX_PORT:-18290}
BENCH_RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
SONG_ID=${BENCH_SONG_ID:-1}
export PG_PORT=${PG_PORT:-25620}
export SONG_PORT=${SONG_PORT:-18282}
. "$ROOT/scripts/lib/common.sh"
export FERMATA_DATA_DIR=$(fm_data_dir_default bench)
BUILD_DIR=${FERMATA_BUILD_DIR:-build/release}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
export FERMATA_BUILD_DIR=$BUILD_DIR
# the service must talk to our private database, whatever the caller's shell has
unset SONG_DB_URL

for p in "$PG_PORT" "$SONG_PORT" "$BENCH_NGINX_PORT"; do
  bench_port_free "$p" || bench_die "port $p is in use (another bench run?); set PG_PORT/SONG_PORT/BENCH_NGINX_PORT"
done

# ---- build ---------------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  bench_log "building fermata-song (RelWithDebInfo) in $BUILD_DIR"
  # shellcheck disable=SC2086  # BENCH_CMAKE_ARGS is a list of flags
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${BENCH_CMAKE_ARGS:-} >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target fermata-song >"$BUILD_DIR.log" 2>&1 ||
    { tail -n 30 "$BUILD_DIR.log" >&2; bench_die "build failed (log: $BUILD_DIR.log)"; }
fi
[ -x "$BUILD_DIR/services/song/fermata-song" ] || bench_die "no binary $BUILD_DIR/services/song/fermata-song"

# ---- stack: private PostgreSQL, the Song Service, nginx -------------------------------------
"$ROOT/scripts/stack.sh" dir >/dev/null  # creates it safely
rm -f "$FERMATA_DATA_DIR/logs/song.log"
bench_on_exit "scripts/stack.sh stop postgres >/dev/null"
scripts/stack.sh start postgres >&2
bench_on_exit "scripts/services.sh stop song"
scripts/services.sh start song >&2
SONG_PID=$(cat "$FERMATA_DATA_DIR/pids/song.pid")
SVC=http://127.0.0.1:$SONG_PORT
NGX=http://127.0.0.1:$BENCH_NGINX_PORT

# seed (a 409 from an earlier run is as good), then the exact response bytes
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"id\":$SONG_ID,\"name\":\"We are the champions\",\"artist\":\"Queen\",\"album\":\"News of the world\",\"duration\":\"02:59\",\"year\":\"1977\"}" \
  "$SVC/songs")
[ "$code" = 200 ] || [ "$code" = 409 ] || bench_die "seeding POST /songs answered $code"
DOCROOT=$FERMATA_DATA_DIR/nginx/www
mkdir -p "$DOCROOT/songs"
code=$(curl -s -o "$DOCROOT/songs/$SONG_ID" -w '%{http_code}' "$SVC/songs/$SONG_ID")
[ "$code" = 200 ] || bench_die "GET /songs/$SONG_ID answered $code"
chmod -R a+rX "$FERMATA_DATA_DIR/nginx"
rm -f "$FERMATA_DATA_DIR/nginx/access.log"
bench_nginx_start "$ROOT/bench/nginx-static.conf.template" "$FERMATA_DATA_DIR/nginx" "$BENCH_NGINX_PORT" "$DOCROOT"
curl -s "$NGX/songs/$SONG_ID" | cmp -s - "$DOCROOT/songs/$SONG_ID" || bench_die "nginx does not answer the same bytes"
BODY_BYTES=$(stat -c %s "$DOCROOT/songs/$SONG_ID")
bench_log "service on $SVC (pid $SONG_PID), nginx on $NGX; body $BODY_BYTES bytes: $(cat "$DOCROOT/songs/$SONG_ID")"

# Requests the service counted for GET /songs/{id} (its /actuator/prometheus).
served() {
  curl -s "$SVC/actuator/prometheus" | python3 -c '
import re, sys
n = 0
for line in sys.stdin:
    if line.startswith("http_server_requests_seconds_count{") and "uri=\"/songs/{id}\"" in line and "method=\"GET\"" in line:
        n += int(float(line.rsplit(None, 1)[1]))
print(n)'
}

WORK=$FERMATA_DATA_DIR/results
rm -rf "$WORK"; mkdir -p "$WORK"

# ---- memory: idle, then 100k requests --------------------------------------------------------
RSS_IDLE=$(bench_rss_kb "$SONG_PID")
N0=$(served)
bench_log "RSS idle ${RSS_IDLE} kB; sending $BENCH_RSS_REQUESTS requests at $BENCH_RSS_CONNECTIONS connections"
# wrk cannot stop after N requests: run it until the service's own counter says N
bench_wrk "$SVC/songs/$SONG_ID" "$BENCH_RSS_CONNECTIONS" 900s '(( $(served) - N0 >= BENCH_RSS_REQUESTS ))' >"$WORK/rss-run.json"
N1=$(served)
((N1 - N0 >= BENCH_RSS_REQUESTS)) || bench_die "only $((N1 - N0)) requests served in 900 s"
sleep 1
RSS_100K=$(bench_rss_kb "$SONG_PID")
RSS_100K_N=$((N1 - N0))
bench_log "RSS after $RSS_100K_N requests: ${RSS_100K} kB"

# ---- throughput and latency, service and nginx alternating ------------------------------------
bench_log "warm-up $BENCH_WARMUP each"
bench_wrk "$SVC/songs/$SONG_ID" 16 "$BENCH_WARMUP" >/dev/null
bench_wrk "$NGX/songs/$SONG_ID" 16 "$BENCH_WARMUP" >/dev/null
first=service
for c in $BENCH_CONNECTIONS; do
  # alternate who goes first, so slow drifts in the machine's load do not favour one side
  if [ $first = service ]; then order="service nginx"; first=nginx; else order="nginx service"; first=service; fi
  for t in $order; do
    if [ "$t" = service ]; then url=$SVC/songs/$SONG_ID; else url=$NGX/songs/$SONG_ID; fi
    bench_log "$t c=$c $BENCH_DURATION (load $(bench_loadavg))"
    bench_wrk "$url" "$c" "$BENCH_DURATION" | python3 -c 'import json,sys; d=json.load(sys.stdin); d["target"]=sys.argv[1]; print(json.dumps(d))' "$t" >>"$WORK/matrix.jsonl"
  done
done
N2=$(served)
sleep 1
RSS_END=$(bench_rss_kb "$SONG_PID")
HWM_END=$(bench_hwm_kb "$SONG_PID")
THREADS_END=$(bench_threads "$SONG_PID")

# ---- report ------------------------------------------------------------------------------------
mkdir -p "$BENCH_RESULTS"
STAMP=$(date +%Y-%m-%d-%H%M)
OUT=$BENCH_RESULTS/song-$STAMP.md
{
  echo "# Song Service benchmark, $(date '+%Y-%m-%d %H:%M %Z')"
  echo
  echo "\`GET /songs/$SONG_ID\` ($BODY_BYTES-byte JSON body) on the Song Service (release build,"
  echo "default configuration: thread per connection, DB_POOL_SIZE 16, LOG_LEVEL info with one access-log"
  echo "line per request) against nginx ${BENCH_NGINX_WORKERS:-2} workers serving a static file of the same"
  echo "bytes (keep-alive, access log ${BENCH_NGINX_ACCESS_LOG:-on}). wrk, ${BENCH_THREADS:-2} threads (1 at 1 connection), $BENCH_DURATION per"
  echo "run, the two targets alternating at each connection count. ratio = service / nginx: for"
  echo "req/s higher is better, for latency lower is better (1.00 = as fast as nginx)."
  echo
  python3 - "$WORK/matrix.jsonl" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows.setdefault(d["connections"], {})[d["target"]] = d
ms = lambda us: "%.2f" % (us / 1000.0)
def errs(d):
    n = d["errors_connect"] + d["errors_read"] + d["errors_write"] + d["errors_status"] + d["errors_timeout"]
    return str(n)
print("| connections | service req/s | nginx req/s | req/s ratio | service p50 ms | nginx p50 ms | p50 ratio | service p99 ms | nginx p99 ms | p99 ratio | errors svc/nginx | load before svc / nginx |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for c in sorted(rows):
    s, n = rows[c]["service"], rows[c]["nginx"]
    r = lambda a, b: "%.2f" % (a / b) if b else "n/a"
    print("| %d | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s/%s | %s / %s |" % (
        c, s["rps"], n["rps"], r(s["rps"], n["rps"]),
        ms(s["p50_us"]), ms(n["p50_us"]), r(s["p50_us"], n["p50_us"]),
        ms(s["p99_us"]), ms(n["p99_us"]), r(s["p99_us"], n["p99_us"]),
        errs(s), errs(n), s["load"], n["load"]))
EOF
  echo
  echo "Memory of the service (VmRSS from /proc/$SONG_PID/status):"
  echo
  echo "| point | RSS kB | requests served so far |"
  echo "|---|---:|---:|"
  echo "| idle (after start, seeding, one GET) | $RSS_IDLE | 0 |"
  echo "| after $RSS_100K_N requests ($BENCH_RSS_CONNECTIONS connections) | $RSS_100K | $RSS_100K_N |"
  echo "| growth over those requests | $((RSS_100K - RSS_IDLE)) | |"
  echo "| after the whole run (all connection counts) | $RSS_END | $((N2 - N0)) |"
  echo "| peak (VmHWM) over the run | $HWM_END | |"
  echo
  echo "Service threads at the end: $THREADS_END. Requests counted by the service's"
  echo "http_server_requests_seconds_count for GET /songs/{id}, not by the client."
  echo
  echo "Command: \`$COMMAND\`"
  echo
  echo "Machine (2 cores shared with wrk itself and with other work; compare ratios, not absolute figures):"
  echo
  bench_machine_md
} >"$OUT"
cat "$OUT"
bench_log "written $OUT"
