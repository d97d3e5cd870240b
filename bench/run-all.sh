#!/usr/bin/env bash
# bench/run-all.sh: the whole benchmark suite (`make bench`, issue 9). Starts a private
# stack (PostgreSQL, RabbitMQ, versitygw, the four services; data dir <default>/bench, ports below,
# never the defaults of `make run`), measures every figure next to its ceiling in the same
# run, writes bench/results/<date>.md with PNG plots and prints the summary table.
#
#   bench/run-all.sh                         about 10-12 minutes on 2 cores
#   BENCH_DURATION=30s bench/run-all.sh      steadier figures, longer
#   BENCH_ONLY="get upload" bench/run-all.sh  some phases only
#   BENCH_REV=HEAD~3 bench/run-all.sh        benchmark a committed revision (git archive
#                                            into build/bench-<sha>/), for before/after
#
# Phases (BENCH_ONLY, default all, in this order): startup get upload download big tracing e2e
# failover ha. Memory is read around every phase. BENCH_PERF=1 adds profiled extra runs
# (perf record -a -e cpu-clock) of the GETs at 64 connections and of the smallest upload;
# the reports land in run/bench/results/perf-*.txt.
#
# Settings (environment): BENCH_DURATION (10s, each wrk point), BENCH_CONNECTIONS
# ("1 16 64 256 1024"), BENCH_WARMUP (3s), BENCH_RSS_REQUESTS (100000), BENCH_UPLOAD_CONNECTIONS
# (4), BENCH_UPLOAD_SIZES ("100K 1M 10M"), BENCH_E2E ("10:200 50:500" = rate/s:count),
# BENCH_FAILOVER ("10:15:20:25" = rate/s : seconds before the outage : outage seconds :
# seconds after), BENCH_NGINX_WORKERS (2), BENCH_NGINX_ACCESS_LOG (on),
# FERMATA_BUILD_DIR (build/release), BENCH_SKIP_BUILD=1, BENCH_RESULTS (bench/results),
# BENCH_PLOTS (1; 0 = no PNGs), BENCH_STORE_SYNC (1; 0 = no durability barrier), ports PG_PORT AMQP_PORT S3_PORT GATEWAY_PORT RESOURCE_PORT
# SONG_PORT STORAGE_PORT PROCESSOR_PORT BENCH_NGINX_PORT (25620 27220 29600 18680-18684
# 18690).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=lib/common.sh
. "$ROOT/bench/lib/common.sh"

COMMAND="bench/run-all.sh"
for v in BENCH_TRACING_ROUNDS BENCH_TRACING_CONNECTIONS BENCH_BIG_SIZES BENCH_BIG_REPS BENCH_BIG_CONCURRENT BENCH_DURATION BENCH_CONNECTIONS BENCH_WARMUP BENCH_RSS_REQUESTS BENCH_UPLOAD_CONNECTIONS \
         BENCH_UPLOAD_SIZES BENCH_E2E BENCH_FAILOVER BENCH_ONLY BENCH_REV BENCH_NGINX_WORKERS \
         BENCH_NGINX_ACCESS_LOG FERMATA_BUILD_DIR BENCH_SKIP_BUILD BENCH_STORE_SYNC; do
  val=$(printenv "$v") && COMMAND="$v='$val' $COMMAND"
done
export BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64 256 1024"}
BENCH_WARMUP=${BENCH_WARMUP:-3s}
BENCH_RSS_REQUESTS=${BENCH_RSS_REQUESTS:-100000}
BENCH_UPLOAD_CONNECTIONS=${BENCH_UPLOAD_CONNECTIONS:-4}
BENCH_UPLOAD_SIZES=${BENCH_UPLOAD_SIZES:-"100K 1M 10M"}
BENCH_E2E=${BENCH_E2E:-"10:200 50:500"}
BENCH_FAILOVER=${BENCH_FAILOVER:-"10:15:20:25"}
BENCH_HA=${BENCH_HA:-"10:2"}   # uploads/s : seconds each instance stays down
BENCH_ONLY=${BENCH_ONLY:-"startup get upload download big tracing e2e failover ha"}
BENCH_RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
BENCH_NGINX_PORT=${BENCH_NGINX_PORT:-18690}
export PG_PORT=${PG_PORT:-25620} AMQP_PORT=${AMQP_PORT:-27220} S3_PORT=${S3_PORT:-29600}
export GATEWAY_PORT=${GATEWAY_PORT:-18680} RESOURCE_PORT=${RESOURCE_PORT:-18681}
export SONG_PORT=${SONG_PORT:-18682} STORAGE_PORT=${STORAGE_PORT:-18683} PROCESSOR_PORT=${PROCESSOR_PORT:-18684}
export GATEWAY_INTERNAL_PORT=${GATEWAY_INTERNAL_PORT:-18689}
. "$ROOT/scripts/lib/common.sh"
export FERMATA_DATA_DIR=$(fm_data_dir_default bench)
# the services must talk to our private stack, whatever the caller's shell has
unset SONG_DB_URL STORAGE_DB_URL RESOURCE_DB_URL AMQP_URL S3_ENDPOINT STORAGE_SERVICE_URL \
      SONG_SERVICE_URL RESOURCE_SERVICE_URL
SERVICES=(storage song resource processor)
declare -A PORT=([storage]=$STORAGE_PORT [song]=$SONG_PORT [resource]=$RESOURCE_PORT [processor]=$PROCESSOR_PORT)
only() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

for p in "$PG_PORT" "$AMQP_PORT" "$S3_PORT" "$RESOURCE_PORT" "$SONG_PORT" "$STORAGE_PORT" "$PROCESSOR_PORT" "$BENCH_NGINX_PORT"; do
  bench_port_free "$p" || bench_die "port $p is in use (another bench run?); see the port variables in $0"
done
for tool in wrk nginx curl psql sox lame python3; do
  command -v "$tool" >/dev/null || bench_die "$tool not found (scripts/deps.sh, apt-get install wrk nginx-light sox lame)"
done
if [ "${BENCH_PLOTS:-1}" = 1 ] && ! command -v gnuplot >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    bench_log "installing gnuplot-nox for the plots"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null; } ||
      bench_log "warning: gnuplot-nox not installed; no plots"
  else
    bench_log "warning: no gnuplot (sudo apt-get install gnuplot-nox); no plots"
  fi
fi

# ---- build -----------------------------------------------------------------------------------
if [ -n "${BENCH_REV:-}" ]; then
  SHA=$(git rev-parse --short "$BENCH_REV") || bench_die "unknown revision $BENCH_REV"
  SRC=$ROOT/build/bench-$SHA/src
  BUILD_DIR=$ROOT/build/bench-$SHA/build
  if [ ! -d "$SRC" ]; then mkdir -p "$SRC"; git archive "$SHA" | tar -x -C "$SRC"; fi
else
  SHA=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lib services || echo '+dirty')
  SRC=$ROOT
  BUILD_DIR=${FERMATA_BUILD_DIR:-build/release}
  case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
fi
export FERMATA_BUILD_DIR=$BUILD_DIR
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  bench_log "building the services (RelWithDebInfo) from $SRC in $BUILD_DIR"
  mkdir -p "$ROOT/run"
  { cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$BUILD_DIR" -j2 --target fermata-storage fermata-song fermata-resource fermata-processor; } \
    >"$BUILD_DIR.log" 2>&1 ||
    { tail -n 30 "$BUILD_DIR.log" >&2; bench_die "build failed (log: $BUILD_DIR.log)"; }
fi
for s in "${SERVICES[@]}"; do
  [ -x "$BUILD_DIR/services/$s/fermata-$s" ] || bench_die "no binary $BUILD_DIR/services/$s/fermata-$s"
done

# ---- stack -----------------------------------------------------------------------------------
# A fresh data directory each time: ids start at 1, the store and the queues are empty.
scripts/stack.sh reset >/dev/null
scripts/stack.sh dir >/dev/null  # creates it (safely, under /var/lib/fermata when it must)
WORK=$FERMATA_DATA_DIR/results
mkdir -p "$WORK"
bench_on_exit "scripts/stack.sh stop postgres rabbitmq s3 >/dev/null 2>&1"
bench_log "starting PostgreSQL, RabbitMQ, versitygw on $PG_PORT/$AMQP_PORT/$S3_PORT"
scripts/stack.sh start postgres rabbitmq s3 >&2
eval "$(scripts/stack.sh env postgres rabbitmq s3)"
# BENCH_STORE_SYNC=0: uploads do not wait for the store's disk (what the barrier costs)
[ "${BENCH_STORE_SYNC:-1}" = 0 ] && export S3_SYNC_DIR=
bench_on_exit "scripts/services.sh stop >/dev/null 2>&1"
T_START=$(date +%s)

# rss_all POINT: one line per service "POINT svc rss_kB hwm_kB threads" into rss.tsv.
rss_all() {
  local s pid
  for s in "${SERVICES[@]}"; do
    pid=$(cat "$FERMATA_DATA_DIR/pids/$s.pid" 2>/dev/null) || continue
    [ -r "/proc/$pid/status" ] || continue
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$s" "$(bench_rss_kb "$pid")" "$(bench_hwm_kb "$pid")" "$(bench_threads "$pid")" >>"$WORK/rss.tsv"
  done
}
now_ms() { date +%s%3N; }

# start_timed SVC: starts one service and records the time from its fork (the process's
# start time in /proc, 10 ms resolution; the exec follows at once) to the first 200 on
# /actuator/health (polled every 5 ms) in startup.tsv.
start_timed() {
  local s=$1 pid t1 st btime tck code
  scripts/services.sh start "$s" >"$WORK/start-$s.log" 2>&1 &
  local sp=$!
  for ((i = 0; i < 6000; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:${PORT[$s]}/actuator/health" || true)
    [ "$code" = 200 ] && break
    sleep 0.005
  done
  # seconds since boot, the clock of /proc/PID/stat's start time (btime + start time is
  # not: the realtime clock of a VM drifts from it by hundreds of ms)
  t1=$(cut -d' ' -f1 /proc/uptime)
  wait "$sp" || { cat "$WORK/start-$s.log" >&2; bench_die "$s did not start"; }
  [ "$code" = 200 ] || bench_die "$s never answered 200 on /actuator/health"
  pid=$(cat "$FERMATA_DATA_DIR/pids/$s.pid")
  st=$(awk '{print $22}' "/proc/$pid/stat")
  tck=$(getconf CLK_TCK)
  printf '%s\t%s\t%s\n' "$s" "$(python3 -c "print(round(($t1 - $st / $tck) * 1000))")" "$(bench_loadavg)" >>"$WORK/startup.tsv"
}

bench_log "starting the services (start-up time to the first 200 on /actuator/health)"
for s in "${SERVICES[@]}"; do start_timed "$s"; done
sleep 2
rss_all idle

# served PORT URI METHOD: requests the service counted (its /actuator/prometheus).
served() {
  curl -s "http://127.0.0.1:$1/actuator/prometheus" | python3 -c '
import sys
n = 0
for line in sys.stdin:
    if line.startswith("http_server_requests_seconds_count{") and ("uri=\"%s\"" % sys.argv[1]) in line and ("method=\"%s\"" % sys.argv[2]) in line:
        n += int(float(line.rsplit(None, 1)[1]))
print(n)' "$2" "$3"
}

# perf_run NAME SECONDS: with BENCH_PERF=1, a system-wide cpu-clock profile (perf record -a,
# no call graph: cheap) over SECONDS into $WORK/perf-NAME.data; the reports are made at the
# end of the run (perf report is CPU-heavy). Runs in the background: start the load right
# after. Profiled runs are extra runs, never the measured ones.
PERF_PIDS=()
perf_run() {
  [ "${BENCH_PERF:-0}" = 1 ] || return 0
  command -v perf >/dev/null || { bench_log "warning: no perf; BENCH_PERF ignored"; return 0; }
  perf record -q -e cpu-clock -F 499 -a -o "$WORK/perf-$1.data" -- sleep "$2" >/dev/null 2>&1 &
  PERF_PIDS+=($!)
}
perf_wait() { local p; for p in "${PERF_PIDS[@]}"; do wait "$p" || true; done; PERF_PIDS=(); }

# ---- test files: real MP3s of the configured sizes ------------------------------------------
# CBR 128 kbit/s stereo = 16000 bytes/s: the duration gives the size (within a frame).
FILES=$FERMATA_DATA_DIR/files
mkdir -p "$FILES"
declare -A SIZE_FILE SIZE_BYTES
for sz in $BENCH_UPLOAD_SIZES 100K; do
  [ -n "${SIZE_FILE[$sz]:-}" ] && continue
  n=$(numfmt --from=iec "$sz")
  secs=$(python3 -c "print('%.3f' % ($n / 16000.0))")
  sox -n -r 44100 -c 2 "$FILES/$sz.wav" synth "$secs" sine 440 sine 660 2>/dev/null
  lame --quiet -b 128 --cbr --tt "Bench $sz" --ta Fermata --tl Bench --ty 2026 "$FILES/$sz.wav" "$FILES/$sz.mp3"
  rm -f "$FILES/$sz.wav"
  SIZE_FILE[$sz]=$FILES/$sz.mp3
  SIZE_BYTES[$sz]=$(stat -c %s "$FILES/$sz.mp3")
done

RES=http://127.0.0.1:$RESOURCE_PORT
S3=$S3_ENDPOINT
rdb() { psql "$RESOURCE_DB_URL" -tAq -c "$1"; }
# wait_drained SECONDS: until no resource is left in STAGING (the processor is done);
# prints the seconds it took.
wait_drained() {
  local t0 left
  t0=$(now_ms)
  for ((i = 0; i < $1 * 5; i++)); do
    left=$(rdb "SELECT count(*) FROM resources WHERE state <> 'PERMANENT'")
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  [ "$left" = 0 ] || bench_log "warning: $left resources still in STAGING after $1 s"
  python3 -c "print('%.1f' % (($(now_ms) - $t0) / 1000.0))"
}

# ---- GET /songs/{id} and GET /storages vs nginx -----------------------------------------------
if only get; then
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"id":1000000,"name":"We are the champions","artist":"Queen","album":"News of the world","duration":"02:59","year":"1977"}' \
    "http://127.0.0.1:$SONG_PORT/songs")
  [ "$code" = 200 ] || bench_die "seeding POST /songs answered $code"
  DOCROOT=$FERMATA_DATA_DIR/nginx-static/www
  mkdir -p "$DOCROOT/songs"
  curl -sf -o "$DOCROOT/songs/1000000" "http://127.0.0.1:$SONG_PORT/songs/1000000" || bench_die "GET /songs/1000000 failed"
  curl -sf -o "$DOCROOT/storages" "http://127.0.0.1:$STORAGE_PORT/storages" || bench_die "GET /storages failed"
  chmod -R a+rX "$FERMATA_DATA_DIR/nginx-static"
  bench_nginx_start "$ROOT/bench/nginx-static.conf.template" "$FERMATA_DATA_DIR/nginx-static" "$BENCH_NGINX_PORT" "$DOCROOT"
  NGX=http://127.0.0.1:$BENCH_NGINX_PORT
  for ep in songs/1000000 storages; do
    curl -s "$NGX/$ep" | cmp -s - "$DOCROOT/$ep" || bench_die "nginx does not answer the bytes of /$ep"
  done
  for pair in "song:songs/1000000:/songs/{id}" "storage:storages:/storages"; do
    IFS=: read -r svc ep uri <<<"$pair"
    SVC=http://127.0.0.1:${PORT[$svc]}
    # two rounds of BENCH_RSS_REQUESTS: the first one grows RSS by what 64 connection
    # threads touch once (stacks, malloc arenas); the second must not grow it further
    pid=$(cat "$FERMATA_DATA_DIR/pids/$svc.pid")
    for round in 1 2; do
      bench_log "GET /$ep: RSS run $round, $BENCH_RSS_REQUESTS requests at 64 connections"
      rss0=$(bench_rss_kb "$pid"); n0=$(served "${PORT[$svc]}" "$uri" GET)
      bench_wrk "$SVC/$ep" 64 900s '(( $(served "${PORT[$svc]}" "$uri" GET) - n0 >= BENCH_RSS_REQUESTS ))' >/dev/null
      n1=$(served "${PORT[$svc]}" "$uri" GET); sleep 1
      printf '%s\t%s\t%s\t%s\t%s\n' "$svc" "$rss0" "$(bench_rss_kb "$pid")" "$((n1 - n0))" "$round" >>"$WORK/rss100k.tsv"
    done
    bench_wrk "$SVC/$ep" 16 "$BENCH_WARMUP" >/dev/null
    bench_wrk "$NGX/$ep" 16 "$BENCH_WARMUP" >/dev/null
    first=service
    for c in $BENCH_CONNECTIONS; do
      if [ $first = service ]; then order="service nginx"; first=nginx; else order="nginx service"; first=service; fi
      for t in $order; do
        if [ "$t" = service ]; then url=$SVC/$ep; else url=$NGX/$ep; fi
        bench_log "GET /$ep $t c=$c $BENCH_DURATION (load $(bench_loadavg))"
        # the service's RSS and threads, sampled every 0.2 s while the run lasts
        sampler=
        if [ "$t" = service ]; then
          ( while :; do echo "$(bench_rss_kb "$pid") $(bench_threads "$pid")"; sleep 0.2; done ) >"$WORK/sample-$svc-$c.txt" &
          sampler=$!
        fi
        bench_wrk "$url" "$c" "$BENCH_DURATION" |
          python3 -c 'import json,sys; d=json.load(sys.stdin); d["target"]=sys.argv[1]; d["endpoint"]=sys.argv[2]; print(json.dumps(d))' "$t" "$uri" >>"$WORK/get.jsonl"
        if [ -n "$sampler" ]; then
          kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
          # svc connections peak_rss_kB peak_threads
          printf '%s\t%s\t%s\t%s\n' "$svc" "$c" "$(sort -n -k1,1 "$WORK/sample-$svc-$c.txt" | tail -n 1 | cut -d' ' -f1)" \
            "$(sort -n -k2,2 "$WORK/sample-$svc-$c.txt" | tail -n 1 | cut -d' ' -f2)" >>"$WORK/get-rss.tsv"
        fi
      done
    done
    if [ "${BENCH_PERF:-0}" = 1 ]; then
      bench_log "GET /$ep: profiled extra run, 64 connections, 10 s"
      perf_run "get-$svc" 10
      bench_wrk "$SVC/$ep" 64 10s >"$WORK/perf-get-$svc.wrk.json"
      perf_wait
    fi
  done
  bench_nginx_stop "$FERMATA_DATA_DIR/nginx-static"
  rss_all after-get
fi

# ---- POST /resources vs raw PUT to the object store -------------------------------------------
# Same client (wrk, bench/lib/wrk-body.lua), same bytes, same connections. The raw PUTs go
# to a bucket of their own, signed with SigV4 like lib/s3 signs (versitygw checks the
# signature and the payload hash), every request to the same key (versitygw replaces an
# object atomically, so concurrent PUTs of one key are fine). The service's uploads also
# wait for the store's disk (S3_SYNC_DIR: one syncfs shared by the uploads in flight); the
# raw PUTs do not, so the ratio includes what durability costs.
declare -A DL_ID
if only upload || only download; then
  H=$(python3 bench/lib/s3sign.py PUT "$S3/fermata-bench")
  args=(); while IFS= read -r l; do args+=(-H "$l"); done <<<"$H"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT "${args[@]}" "$S3/fermata-bench")
  [ "$code" = 200 ] || [ "$code" = 409 ] || bench_die "cannot create bucket fermata-bench on the object store ($code)"
fi
wrk_body() { # METHOD FILE URL CONNS DURATION [HEADERS] [UNIQUE]
  BENCH_WRK_SCRIPT=$ROOT/bench/lib/wrk-body.lua WRK_METHOD=$1 WRK_BODY_FILE=$2 WRK_HEADERS=${6:-} WRK_UNIQUE=${7:-0} \
    bench_wrk "$3" "$4" "$5"
}
if only upload; then
  c=$BENCH_UPLOAD_CONNECTIONS
  first=service
  for sz in $BENCH_UPLOAD_SIZES; do
    f=${SIZE_FILE[$sz]}
    H=$(python3 bench/lib/s3sign.py PUT "$S3/fermata-bench/u-$sz.mp3" "$f")
    id0=$(rdb "SELECT coalesce(max(id), 0) FROM resources")
    if [ $first = service ]; then order="service s3"; first=s3; else order="s3 service"; first=service; fi
    for t in $order; do
      bench_log "upload $sz ($t) c=$c $BENCH_DURATION (load $(bench_loadavg))"
      if [ "$t" = service ]; then
        wrk_body POST "$f" "$RES/resources" "$c" "$BENCH_DURATION"
      else
        wrk_body PUT "$f" "$S3/fermata-bench/u-$sz.mp3" "$c" "$BENCH_DURATION" "$H" 0
      fi | python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(target=sys.argv[1], size=sys.argv[2], body_bytes=int(sys.argv[3])); print(json.dumps(d))' \
        "$t" "$sz" "${SIZE_BYTES[$sz]}" >>"$WORK/upload.jsonl"
      if [ "$t" = service ]; then
        # the pipeline works through the backlog before the next measurement
        rss_all "upload-$sz"
        d=$(wait_drained 300)
        n=$(rdb "SELECT count(*) FROM resources WHERE id > $id0")
        printf '%s\t%s\t%s\n' "$sz" "$n" "$d" >>"$WORK/drain.tsv"
        bench_log "upload $sz: $n uploads processed to PERMANENT $d s after the run"
      fi
    done
    DL_ID[$sz]=$(rdb "SELECT max(id) FROM resources WHERE size = ${SIZE_BYTES[$sz]} AND state = 'PERMANENT'")
    if [ "${BENCH_PERF:-0}" = 1 ] && [ "$sz" = "$(echo $BENCH_UPLOAD_SIZES | cut -d' ' -f1)" ]; then
      bench_log "upload $sz: profiled extra run, $c connections, 10 s"
      perf_run "upload-$sz" 10
      wrk_body POST "$f" "$RES/resources" "$c" 10s >"$WORK/perf-upload-$sz.wrk.json"
      perf_wait
      wait_drained 300 >/dev/null
    fi
  done
fi

# ---- GET /resources/{id} vs raw GET from the object store -------------------------------------
if only download; then
  c=$BENCH_UPLOAD_CONNECTIONS
  first=s3
  for sz in $BENCH_UPLOAD_SIZES; do
    id=${DL_ID[$sz]:-}
    if [ -z "$id" ]; then
      id=$(curl -s -X POST -H 'Content-Type: audio/mpeg' --data-binary @"${SIZE_FILE[$sz]}" "$RES/resources" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
      wait_drained 60 >/dev/null
    fi
    IFS='|' read -r bucket key < <(rdb "SELECT bucket, s3_key FROM resources WHERE id = $id")
    H=$(python3 bench/lib/s3sign.py GET "$S3/$bucket/$key")
    if [ $first = service ]; then order="service s3"; first=s3; else order="s3 service"; first=service; fi
    for t in $order; do
      bench_log "download $sz ($t) c=$c $BENCH_DURATION (load $(bench_loadavg))"
      if [ "$t" = service ]; then
        wrk_body GET "" "$RES/resources/$id" "$c" "$BENCH_DURATION"
      else
        wrk_body GET "" "$S3/$bucket/$key" "$c" "$BENCH_DURATION" "$H"
      fi | python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(target=sys.argv[1], size=sys.argv[2], body_bytes=int(sys.argv[3])); print(json.dumps(d))' \
        "$t" "$sz" "${SIZE_BYTES[$sz]}" >>"$WORK/download.jsonl"
    done
  done
  rss_all after-download
fi
if only upload || only download; then
  # delete what the upload runs created (through the API, 200 ids a call): bounded disk use
  ids=$(rdb "SELECT id FROM resources ORDER BY id")
  if [ -n "$ids" ]; then
    xargs -n 200 <<<"$ids" | tr ' ' ',' | while read -r csv; do
      curl -s -o /dev/null -X DELETE "$RES/resources?id=$csv"
    done
  fi
fi

# ---- big uploads, streamed (issue 13) -------------------------------------------------------------
# Per size: BENCH_BIG_REPS uploads each of POST /resources and of a raw streaming PUT
# (UNSIGNED-PAYLOAD) of the same file to the same store, alternating; then
# BENCH_BIG_CONCURRENT uploads at once, with the resource's and the processor's peak RSS
# (VmHWM, reset first) until all are PERMANENT, and the bytes the processor fetched per file
# (BENCH_BIG_CONCURRENT=0: no such run).
BENCH_BIG_SIZES=${BENCH_BIG_SIZES:-"1M 10M 100M 1G"}
BENCH_BIG_REPS=${BENCH_BIG_REPS:-3}
BENCH_BIG_CONCURRENT=${BENCH_BIG_CONCURRENT:-8}
if only big; then
  H=$(python3 bench/lib/s3sign.py PUT "$S3/fermata-bench")
  args=(); while IFS= read -r l; do args+=(-H "$l"); done <<<"$H"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT "${args[@]}" "$S3/fermata-bench")
  [ "$code" = 200 ] || [ "$code" = 409 ] || bench_die "cannot create bucket fermata-bench on the object store ($code)"
  for sz in $BENCH_BIG_SIZES; do
    f=$(python3 bench/lib/bigupload.py make "$FILES" "$sz")
    id0=$(rdb "SELECT coalesce(max(id), 0) FROM resources")
    bench_log "big upload $sz: $BENCH_BIG_REPS each of service and raw PUT (load $(bench_loadavg))"
    python3 bench/lib/bigupload.py speed "$RES" "$S3" "$f" "$BENCH_BIG_REPS" "$WORK/big-speed.jsonl"
    wait_drained 600 >/dev/null
    if [ "$BENCH_BIG_CONCURRENT" -gt 0 ]; then
      bench_log "big upload $sz: $BENCH_BIG_CONCURRENT at once, peak RSS (load $(bench_loadavg))"
      python3 bench/lib/bigupload.py rss "$RES" "$f" "$BENCH_BIG_CONCURRENT" "$FERMATA_DATA_DIR/pids" \
        "http://127.0.0.1:$PROCESSOR_PORT/actuator/prometheus" "$WORK/big-rss.jsonl" >&2
    fi
    ids=$(rdb "SELECT string_agg(id::text, ',') FROM resources WHERE id > $id0")
    [ -n "$ids" ] && curl -s -o /dev/null -X DELETE "$RES/resources?id=$ids"
    rm -f "$f"
  done
fi

# ---- tracing's cost (issue 15) ------------------------------------------------------------------
# GET /songs/{id} at BENCH_TRACING_CONNECTIONS and open-loop 100K uploads (latency), with
# tracing off (MANAGEMENT_TRACING_ENABLED=false), then sampling 0.1 and 1.0 exported to a
# real Zipkin (started for this phase on ZIPKIN_PORT), the Song and Resource Services
# restarted with each setting; BENCH_TRACING_ROUNDS rounds, the settings in turn, so a
# drift of the machine spreads over all three.
BENCH_TRACING_ROUNDS=${BENCH_TRACING_ROUNDS:-2}
BENCH_TRACING_CONNECTIONS=${BENCH_TRACING_CONNECTIONS:-64}
if only tracing; then
  export ZIPKIN_PORT=${ZIPKIN_PORT:-29411}
  FERMATA_TRACING=1 scripts/stack.sh start zipkin >&2 || bench_die "cannot start Zipkin"
  bench_on_exit "FERMATA_TRACING=1 scripts/stack.sh stop zipkin >/dev/null 2>&1"
  curl -s -o /dev/null -H 'Content-Type: application/json' \
    -d '{"id":1000000,"name":"We are the champions","artist":"Queen","album":"News of the world","duration":"02:59","year":"1977"}' \
    "http://127.0.0.1:$SONG_PORT/songs"
  for ((round = 1; round <= BENCH_TRACING_ROUNDS; round++)); do
    for setting in off 0.1 1.0; do
      scripts/services.sh stop song resource >/dev/null
      if [ "$setting" = off ]; then
        MANAGEMENT_TRACING_ENABLED=false scripts/services.sh start song resource >/dev/null
      else
        MANAGEMENT_TRACING_SAMPLING_PROBABILITY=$setting \
          MANAGEMENT_ZIPKIN_TRACING_ENDPOINT=http://127.0.0.1:$ZIPKIN_PORT/api/v2/spans \
          scripts/services.sh start song resource >/dev/null
      fi
      bench_wrk "http://127.0.0.1:$SONG_PORT/songs/1000000" "$BENCH_TRACING_CONNECTIONS" "$BENCH_WARMUP" >/dev/null
      bench_log "tracing $setting (round $round): GET /songs/{id} c=$BENCH_TRACING_CONNECTIONS $BENCH_DURATION (load $(bench_loadavg))"
      bench_wrk "http://127.0.0.1:$SONG_PORT/songs/1000000" "$BENCH_TRACING_CONNECTIONS" "$BENCH_DURATION" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(setting=sys.argv[1], round=int(sys.argv[2])); print(json.dumps(d))' \
          "$setting" "$round" >>"$WORK/tracing-get.jsonl"
      bench_log "tracing $setting (round $round): 200 uploads of 100K at 20/s"
      python3 bench/lib/loadgen.py upload "$RES/resources" "${SIZE_FILE[100K]}" 20 200 "$WORK/tracing-up-$setting-$round.jsonl"
    done
  done
  scripts/services.sh stop song resource >/dev/null
  scripts/services.sh start song resource >/dev/null
  FERMATA_TRACING=1 scripts/stack.sh stop zipkin >/dev/null 2>&1 || true
fi

# ---- end to end: upload -> PERMANENT at a fixed rate -----------------------------------------
# Open loop (bench/lib/loadgen.py). The end is the row's updated_at when it turned
# PERMANENT (same machine clock as the client), so no polling error.
if only e2e; then
  for spec in $BENCH_E2E; do
    rate=${spec%%:*}; count=${spec#*:}
    bench_log "end to end: $count uploads of 100K at $rate/s (load $(bench_loadavg))"
    echo "$(bench_loadavg)" >"$WORK/e2e-$rate.load"
    python3 bench/lib/loadgen.py upload "$RES/resources" "${SIZE_FILE[100K]}" "$rate" "$count" "$WORK/e2e-$rate.jsonl"
    rss_all "e2e-$rate"
    d=$(wait_drained 300)
    ids=$(python3 -c 'import json,sys; print(",".join(str(json.loads(l)["id"]) for l in open(sys.argv[1]) if json.loads(l)["id"]))' "$WORK/e2e-$rate.jsonl")
    [ -n "$ids" ] || bench_die "no upload succeeded at $rate/s"
    rdb "SELECT r.id, extract(epoch FROM r.created_at), extract(epoch FROM r.updated_at), r.state FROM resources r WHERE r.id IN ($ids)" |
      tr '|' '\t' >"$WORK/e2e-$rate-db.tsv"
    echo "$(psql "$SONG_DB_URL" -tAq -c "SELECT count(*) FROM songs WHERE id IN ($ids)")" >"$WORK/e2e-$rate-songs"
    bench_log "end to end at $rate/s: drained $d s after the last upload"
  done
fi

# ---- failover: uploads through a Storage Service outage --------------------------------------
if only failover; then
  IFS=: read -r rate before outage after <<<"$BENCH_FAILOVER"
  count=$(((before + outage + after) * rate))
  bench_log "failover: $count uploads at $rate/s; Storage Service killed at ${before}s for ${outage}s (load $(bench_loadavg))"
  echo "$(bench_loadavg)" >"$WORK/failover.load"
  python3 bench/lib/loadgen.py upload "$RES/resources" "${SIZE_FILE[100K]}" "$rate" "$count" "$WORK/failover.jsonl" \
    --poll "$RES/actuator/circuitbreakers" --poll-out "$WORK/failover-breaker.jsonl" &
  lg=$!
  bench_on_exit "kill $lg 2>/dev/null"
  sleep "$((before))"
  echo "kill $(date +%s.%N)" >"$WORK/failover-events.txt"
  scripts/services.sh kill storage
  sleep "$outage"
  echo "start $(date +%s.%N)" >>"$WORK/failover-events.txt"
  scripts/services.sh start storage >/dev/null
  echo "up $(date +%s.%N)" >>"$WORK/failover-events.txt"
  wait "$lg"
  # the exact transitions (the 0.25 s polling can miss a short HALF_OPEN)
  curl -s --max-time 5 "$RES/actuator/circuitbreakerevents/storageService/STATE_TRANSITION" >"$WORK/failover-transitions.json" || true
  rss_all after-failover
  wait_drained 120 >/dev/null || true
fi

# ---- high availability: uploads through the gateway while each instance dies ------------------
# Two instances of each service behind the gateway (FERMATA_REPLICAS=2); open-loop uploads
# through it at BENCH_HA rate while every instance of every service is SIGKILLed and
# started again in turn, then every service restarted one instance at a time
# (services.sh rolling-restart). The report plots errors and latency per second with the
# kills marked.
if only ha; then
  IFS=: read -r rate down <<<"$BENCH_HA"
  bench_log "high availability: two instances each, uploads at $rate/s through the gateway, every instance killed in turn"
  scripts/services.sh stop >/dev/null 2>&1
  export FERMATA_REPLICAS=2
  scripts/stack.sh start gateway >&2
  bench_on_exit "scripts/stack.sh stop gateway >/dev/null 2>&1"
  scripts/services.sh start >/dev/null
  GW=http://127.0.0.1:$GATEWAY_PORT
  echo "$(bench_loadavg)" >"$WORK/ha.load"
  count=$(( (8 * (down + 2) + 60) * rate ))
  python3 bench/lib/loadgen.py upload "$GW/resources" "${SIZE_FILE[100K]}" "$rate" "$count" "$WORK/ha.jsonl" &
  lg=$!
  bench_on_exit "kill $lg 2>/dev/null"
  : >"$WORK/ha-events.txt"
  sleep 10
  for s in storage song resource processor; do
    for n in "$s@1" "$s@2"; do
      echo "kill $n $(date +%s.%N)" >>"$WORK/ha-events.txt"
      scripts/services.sh kill "$n"
      sleep "$down"
      scripts/services.sh start "$n" >/dev/null
      echo "up $n $(date +%s.%N)" >>"$WORK/ha-events.txt"
      sleep 2
    done
  done
  echo "rolling-start all $(date +%s.%N)" >>"$WORK/ha-events.txt"
  for s in storage song resource processor; do scripts/services.sh rolling-restart "$s" >/dev/null; done
  echo "rolling-end all $(date +%s.%N)" >>"$WORK/ha-events.txt"
  kill "$lg" 2>/dev/null || true; wait "$lg" 2>/dev/null || true
  rss_all after-ha
  wait_drained 120 >/dev/null || true
  scripts/services.sh stop >/dev/null 2>&1
  export FERMATA_REPLICAS=1
fi
rss_all end

# ---- profiles (BENCH_PERF=1): CPU share per process, then the hottest symbols ---------------
for d in "$WORK"/perf-*.data; do
  [ -e "$d" ] || continue
  n=$(basename "$d" .data)
  {
    echo "== $n: CPU samples per command (all CPUs)"
    perf report -q -i "$d" --no-children --sort comm --stdio 2>/dev/null | head -n 12 || true
    echo "== $n: hottest symbols (command, shared object, symbol)"
    perf report -q -i "$d" --no-children --sort comm,dso,sym --stdio 2>/dev/null | head -n 40 || true
  } >"$WORK/$n.txt" || true
  rm -f "$d"
done

# ---- report ------------------------------------------------------------------------------------
mkdir -p "$BENCH_RESULTS"
STAMP=$(date +%Y-%m-%d-%H%M)
OUT=$BENCH_RESULTS/$STAMP.md
{
  echo "COMMAND=$(printf '%q' "$COMMAND")"
  echo "REV=$(printf '%q' "$SHA")"
  echo "ELAPSED=$(( $(date +%s) - T_START ))"
  echo "DURATION=$BENCH_DURATION"
  echo "UPLOAD_CONNECTIONS=$BENCH_UPLOAD_CONNECTIONS"
  echo "FAILOVER=$BENCH_FAILOVER"
  echo "HA=$BENCH_HA"
  echo "NGINX_WORKERS=${BENCH_NGINX_WORKERS:-2}"
  echo "NGINX_ACCESS_LOG=${BENCH_NGINX_ACCESS_LOG:-on}"
} >"$WORK/meta.env"
bench_machine_md >"$WORK/machine.md"
python3 bench/lib/report.py "$WORK" "$OUT" "$STAMP" "${BENCH_PLOTS:-1}"
bench_log "written $OUT (raw data in $WORK)"
