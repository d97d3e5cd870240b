# bench/lib/common.sh: helpers shared by the benchmarks under bench/ (sourced, not run).
#
# Conventions every benchmark follows:
#  - everything it starts is private: run directory $FERMATA_DATA_DIR (bench uses
#    run/bench), ports away from the defaults of `make run`, and it stops what it started
#    (bench_on_exit registers cleanups run in reverse order from one EXIT trap);
#  - every figure is measured next to its ceiling in the same run, alternating, so the
#    ratio is meaningful on a noisy shared machine even when the absolute numbers are not;
#  - wrk runs go through bench_wrk, which prints one JSON object per run (wrk-report.lua).
#
# Requires bash 4+, wrk (with its Lua scripting), curl, python3.

BENCH_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---- cleanup -----------------------------------------------------------------------------
BENCH_CLEANUPS=()
# bench_on_exit CMD...: run CMD (one string, eval'd) when the script exits, last one first.
bench_on_exit() { BENCH_CLEANUPS+=("$*"); }
bench_run_cleanups() {
  local i
  for ((i = ${#BENCH_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${BENCH_CLEANUPS[i]}" || true; done
  BENCH_CLEANUPS=()
}
trap bench_run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
bench_die() { bench_log "error: $*"; exit 1; }

# ---- machine -----------------------------------------------------------------------------
bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Markdown bullet list describing the machine the figures come from.
bench_machine_md() {
  local cpu mem
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  echo "- host: $(hostname), nproc $(nproc), CPU: ${cpu:-unknown}, memory $mem"
  echo "- kernel: $(uname -srm)"
  echo "- OS: $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
  echo "- wrk: $(wrk --version 2>&1 | head -n 1 | awk '{print $2}'), nginx: $(nginx -v 2>&1 | cut -d/ -f2)"
  echo "- git: $(git -C "$BENCH_LIB/../.." rev-parse --short HEAD 2>/dev/null)$(git -C "$BENCH_LIB/../.." diff --quiet HEAD -- lib services 2>/dev/null || echo ' (lib/ or services/ modified)')"
}

# ---- processes ---------------------------------------------------------------------------
# bench_rss_kb PID: resident set size in kB (VmRSS); bench_hwm_kb PID: peak (VmHWM).
bench_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
bench_hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
bench_threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

# bench_port_free PORT: true when nothing listens on 127.0.0.1:PORT.
bench_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# bench_wait_http URL SECONDS: true once URL answers at all.
bench_wait_http() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

# ---- nginx as the static-file ceiling ------------------------------------------------------
# bench_nginx_start TEMPLATE DIR PORT DOCROOT: renders TEMPLATE into DIR/nginx.conf and
# starts a private nginx (its pid file, logs and temp dirs all in DIR). Stopped at exit.
# BENCH_NGINX_WORKERS (default 2) and BENCH_NGINX_ACCESS_LOG ("on" = log every request to
# DIR/access.log like the services do, "off") shape the ceiling; say which in reports.
bench_nginx_start() {
  local tpl=$1 dir=$2 port=$3 docroot=$4 access
  mkdir -p "$dir/tmp"
  if [ "${BENCH_NGINX_ACCESS_LOG:-on}" = on ]; then access="$dir/access.log"; else access=off; fi
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@DOCROOT@|$docroot|g" \
      -e "s|@WORKERS@|${BENCH_NGINX_WORKERS:-2}|g" -e "s|@ACCESS_LOG@|$access|g" "$tpl" >"$dir/nginx.conf"
  nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" || bench_die "nginx config invalid ($dir/nginx.conf)"
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" || bench_die "nginx did not start; see $dir/error.log"
  bench_on_exit "bench_nginx_stop '$dir'"
  bench_wait_http "http://127.0.0.1:$port/" 10 || bench_die "nginx not answering on $port"
}

bench_nginx_stop() {
  local dir=$1 pid i
  pid=$(cat "$dir/nginx.pid" 2>/dev/null) || return 0
  kill -QUIT "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  return 0
}

# ---- wrk ---------------------------------------------------------------------------------
# bench_wrk URL CONNECTIONS DURATION [UNTIL_CMD]: one wrk run; prints its JSON summary
# (requests, duration_us, rps, p50_us, p90_us, p99_us, max_us, errors_*, load, threads,
# connections, url) on stdout. Threads: BENCH_THREADS (default 2), capped at CONNECTIONS
# (wrk needs connections >= threads). "load" is the load average just before the run.
# With UNTIL_CMD (a command, eval'd every 0.5 s), the run ends as soon as UNTIL_CMD
# succeeds (wrk gets SIGINT and still prints its summary) and DURATION is only an upper
# bound: wrk itself cannot stop after N requests (a Lua thread:stop() ends the thread's
# loop, but wrk's main thread still sleeps the whole duration).
# BENCH_WRK_SCRIPT (default wrk-report.lua) swaps the Lua script, e.g. wrk-body.lua for
# uploads and signed object-store requests (it reads WRK_METHOD, WRK_BODY_FILE, WRK_HEADERS).
bench_wrk() {
  local url=$1 conns=$2 dur=$3 until=${4:-} threads=${BENCH_THREADS:-2} load out pid tmp rc=0
  ((threads > conns)) && threads=$conns
  load=$(bench_loadavg)
  tmp=$(mktemp)
  WRK_LIB=$BENCH_LIB wrk -t"$threads" -c"$conns" -d"$dur" --timeout 10s -s "${BENCH_WRK_SCRIPT:-$BENCH_LIB/wrk-report.lua}" "$url" >"$tmp" 2>&1 &
  pid=$!
  if [ -n "$until" ]; then
    while kill -0 "$pid" 2>/dev/null; do
      if eval "$until"; then kill -INT "$pid" 2>/dev/null; break; fi
      sleep 0.5
    done
  fi
  wait "$pid" || rc=$?
  out=$(cat "$tmp"); rm -f "$tmp"
  ((rc == 0)) || bench_die "wrk failed ($rc): $out"
  local json
  json=$(grep '^WRKJSON ' <<<"$out" | cut -d' ' -f2-)
  [ -n "$json" ] || bench_die "no summary from wrk: $out"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(load=sys.argv[2], threads=int(sys.argv[3]), connections=int(sys.argv[4]), url=sys.argv[5]); print(json.dumps(d))' \
    "$json" "$load" "$threads" "$conns" "$url"
}
