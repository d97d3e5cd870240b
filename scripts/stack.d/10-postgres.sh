# PostgreSQL: one private server, one database and one role per service. Durable by
# default: fsync on, data under $FERMATA_DATA_DIR/postgres (owned by postgres, mode 700).
# PG_TLS=1 also offers TLS (a self-signed certificate made with openssl at the first start),
# for clients that ask for it (sslmode=require, as the Kubernetes example does); the others
# negotiate it too (libpq's default is sslmode=prefer).
COMPONENTS+=(postgres)
PG_PORT=${PG_PORT:-25432}
PG_TLS=${PG_TLS:-0}
PG_DIR="$FERMATA_DATA_DIR/postgres"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
# service role:database pairs; the password of each role is its name (a local dev stack).
PG_DATABASES=(song:songs storage:storages resource:resources)

pg_ctl_() { as_service_user postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"; }
pg_psql_() { as_service_user postgres psql -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

# pg_tls_files_: a self-signed certificate for localhost and its key, owned by postgres.
pg_tls_files_() {
  local dir="$PG_DIR/tls"
  [ -s "$dir/server.pem" ] && [ -s "$dir/server.key" ] && return 0
  command -v openssl >/dev/null || { echo "postgres: openssl not found (PG_TLS=1); run scripts/deps.sh" >&2; return 1; }
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" -addext subjectAltName=DNS:localhost \
    -keyout "$dir/server.key" -out "$dir/server.pem" >/dev/null 2>&1 ||
    { echo "postgres: could not make the TLS certificate" >&2; return 1; }
  chmod 600 "$dir/server.key"
  if fm_is_root; then chown -R postgres: "$dir"; fi
}

postgres_start() {
  [ -x "$PG_BIN/initdb" ] || { echo "postgres: server binaries not found; run scripts/deps.sh" >&2; return 1; }
  fm_need_user postgres
  fm_component_dir postgres postgres 700 >/dev/null
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    as_service_user postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
      { cat "$PG_DIR/initdb.log" >&2; return 1; }
  fi
  local tls_opts=""
  if [ "$PG_TLS" = 1 ]; then
    pg_tls_files_ || return 1
    tls_opts=" -c ssl=on -c ssl_cert_file='$PG_DIR/tls/server.pem' -c ssl_key_file='$PG_DIR/tls/server.key'"
  fi
  if ! pg_ctl_ status >/dev/null 2>&1; then
    fm_port_check postgres "$PG_PORT" PG_PORT || return 1
    pg_ctl_ start -w -t 120 -l "$PG_DIR/server.log" \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$PG_DIR' -c max_connections=200 -c fsync=on -c synchronous_commit=on$tls_opts" >/dev/null ||
      { echo "postgres: did not start; log $PG_DIR/server.log:" >&2; tail -n 20 "$PG_DIR/server.log" >&2; return 1; }
  fi
  local pair role db
  for pair in "${PG_DATABASES[@]}"; do
    role=${pair%%:*}; db=${pair#*:}
    pg_psql_ -tAc "SELECT 1 FROM pg_roles WHERE rolname='$role'" | grep -q 1 ||
      pg_psql_ -qc "CREATE ROLE \"$role\" LOGIN PASSWORD '$role'"
    pg_psql_ -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
      pg_psql_ -qc "CREATE DATABASE \"$db\" OWNER \"$role\""
  done
  echo "postgres: listening on 127.0.0.1:$PG_PORT (data $PG_DIR/data)"
}

postgres_stop() {
  [ -f "$PG_DIR/data/PG_VERSION" ] || return 0
  pg_ctl_ status >/dev/null 2>&1 && pg_ctl_ stop -m fast -w -t 120 >/dev/null
  return 0
}

postgres_kill() {
  local pid
  pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || return 0
  kill -KILL "$pid" 2>/dev/null || true
  # the postmaster's children exit when it dies; wait so the port is free again
  fm_wait_gone 5 "$pid" || true
  pkill -KILL -f -- "-D $PG_DIR/data" 2>/dev/null || true
  sleep 0.5
}

postgres_pids() {
  local pid
  pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || return 0
  kill -0 "$pid" 2>/dev/null && { echo "$pid"; pgrep -P "$pid" || true; }
  return 0
}

postgres_status() {
  if [ -f "$PG_DIR/data/PG_VERSION" ] && pg_ctl_ status >/dev/null 2>&1; then echo "up 127.0.0.1:$PG_PORT (pid $(postgres_pids | head -n 1))"; else echo down; return 1; fi
}

postgres_env() {
  echo "export SONG_DB_URL='postgresql://song:song@127.0.0.1:$PG_PORT/songs'"
  echo "export STORAGE_DB_URL='postgresql://storage:storage@127.0.0.1:$PG_PORT/storages'"
  echo "export RESOURCE_DB_URL='postgresql://resource:resource@127.0.0.1:$PG_PORT/resources'"
}
