#!/bin/sh
# postgres.Dockerfile's entry point: the official image's start-up, in short. On an empty
# PGDATA: initdb with POSTGRES_USER and POSTGRES_PASSWORD (scram-sha-256 over TCP), then the
# /docker-entrypoint-initdb.d scripts against a server reachable only on its socket; then
# the server itself, in the foreground, on PGPORT, listening on POSTGRES_LISTEN (*).
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
user=${POSTGRES_USER:-postgres}
sock=/tmp
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pw"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$sock" start >/dev/null
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    echo "postgres-entrypoint: running $f" >&2
    case "$f" in
      *.sh) PGHOST=$sock POSTGRES_USER=$user bash "$f" ;;
      *.sql) psql -v ON_ERROR_STOP=1 -h "$sock" -U "$user" -d "${POSTGRES_DB:-postgres}" -f "$f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses="${POSTGRES_LISTEN:-*}" -c unix_socket_directories=$sock -p "$PGPORT"
