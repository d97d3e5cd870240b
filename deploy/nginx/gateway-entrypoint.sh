#!/bin/sh
# fermata-gateway: the gateway image's entry point (deploy/nginx/Dockerfile). Renders
# fermata.conf.template with envsubst (the same template as the local stack), runs nginx in
# the foreground, and follows the upstreams' addresses.
#
# Why the following: nginx 1.22 (Debian's) resolves the host names of an `upstream` block
# once, when it loads its configuration. In Compose a recreated service container comes
# back with a new address, and the gateway would send every request to the old one (502)
# until restarted. nginx 1.22 has no `resolve` parameter for upstream servers; its other
# pattern, `proxy_pass http://$variable` with a `resolver`, bypasses the upstream blocks
# (their keepalive pools, max_fails=0, and the replicas a block will list) and needs a DNS
# server's address, which host networking and /etc/hosts do not have. So this script keeps
# the upstream blocks and asks the system's resolver (getent: /etc/hosts, Docker's or
# Kubernetes' DNS alike) for the upstream names every GATEWAY_RESOLVE_INTERVAL seconds;
# when the answer changes it reloads nginx, which resolves them again. A reload is
# graceful: requests in flight finish on the old workers. A name that does not resolve at
# that moment (a container being recreated) reloads nothing until it does.
#
# Environment (the image sets the defaults):
#   the template's placeholders (see deploy/nginx/fermata.conf.template)
#   GATEWAY_TEMPLATE            the template (/etc/fermata/fermata.conf.template)
#   GATEWAY_RESOLVE_INTERVAL    seconds between lookups (5); 0: resolve once, nginx only
#   GATEWAY_RESOLVE_WAIT        seconds to wait at start for every name to resolve (60)
set -eu

template=${GATEWAY_TEMPLATE:-/etc/fermata/fermata.conf.template}
run=${GATEWAY_RUN_DIR:?GATEWAY_RUN_DIR must be set}
interval=${GATEWAY_RESOLVE_INTERVAL:-5}
wait_s=${GATEWAY_RESOLVE_WAIT:-60}
conf=$run/fermata.conf
# every placeholder of the template (the same list the local stack derives)
vars=$(grep -o '\${[A-Z0-9_]*}' "$template" | sort -u | tr '\n' ' ')

say() { echo "fermata-gateway: $*" >&2; }

# the placeholders that have a sensible default when the deployment does not set them
: "${GATEWAY_WRITE_RATE:=20r/s}" "${GATEWAY_WRITE_BURST:=40}" "${GATEWAY_WRITE_CONNS:=16}"
: "${RESOURCE_UPSTREAM_PARAMS:=max_fails=0}" "${SONG_UPSTREAM_PARAMS:=max_fails=0}" "${STORAGE_UPSTREAM_PARAMS:=max_fails=0}"
export GATEWAY_WRITE_RATE GATEWAY_WRITE_BURST GATEWAY_WRITE_CONNS RESOURCE_UPSTREAM_PARAMS SONG_UPSTREAM_PARAMS STORAGE_UPSTREAM_PARAMS

mkdir -p "$run"
envsubst "$vars" <"$template" >"$conf"

# The host part of each upstream (host:port), once each.
names() {
  for u in "$RESOURCE_UPSTREAM" "$SONG_UPSTREAM" "$STORAGE_UPSTREAM"; do echo "${u%:*}"; done | sort -u
}

# One line per name: "name addr addr ..."; fails when a name does not resolve.
addresses() {
  rc=0
  for n in $(names); do
    a=$(getent ahosts "$n" | awk '{print $1}' | sort -u | tr '\n' ' ') || a=
    [ -n "$a" ] || rc=1
    echo "$n $a"
  done
  return $rc
}

waited=0
until last=$(addresses); do
  [ "$waited" -eq 0 ] && say "waiting for the upstream names to resolve: $(names | tr '\n' ' ')"
  if [ "$waited" -ge "$wait_s" ]; then say "still unresolved after ${wait_s}s; starting nginx anyway"; break; fi
  sleep 1
  waited=$((waited + 1))
done

[ "$interval" = 0 ] && exec nginx -e stderr -c "$conf" -g 'daemon off;'

nginx -e stderr -c "$conf" -g 'daemon off;' &
pid=$!
# SIGTERM/SIGINT: fast stop; SIGQUIT (the image's STOPSIGNAL): graceful. Passed to nginx,
# whose exit ends this script with its status.
stopping=
trap 'stopping=TERM' TERM INT
trap 'stopping=QUIT' QUIT

while kill -0 "$pid" 2>/dev/null; do
  sleep "$interval" &
  wait $! 2>/dev/null || true
  if [ -n "$stopping" ]; then
    kill "-$stopping" "$pid" 2>/dev/null || true
    break
  fi
  now=$(addresses) || continue
  if [ "$now" != "$last" ]; then
    say "upstream addresses changed: $(echo "$now" | tr '\n' ';'); reloading"
    if nginx -e stderr -c "$conf" -s reload; then last=$now; fi
  fi
done
rc=0
wait "$pid" || rc=$?
exit "$rc"
