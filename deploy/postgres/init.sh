#!/usr/bin/env bash
# One role and one database per Fermata service, each owned by its role. Idempotent.
#
# Runs as a PostgreSQL image init script (/docker-entrypoint-initdb.d/, as the superuser
# over the local socket), or by hand / as a Kubernetes Job against a managed server with
# the usual libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE).
#
# Passwords come from the environment: SONG_DB_PASSWORD, STORAGE_DB_PASSWORD,
# RESOURCE_DB_PASSWORD (required; no defaults, so nothing weak is created by accident).
set -euo pipefail

admin=${POSTGRES_USER:-${PGUSER:-postgres}}
admin_db=${POSTGRES_DB:-postgres}

# create_db ROLE DATABASE PASSWORD
create_db() {
  local role=$1 db=$2 pass=$3
  if [ -z "$pass" ]; then echo "init.sh: password for role $role is empty" >&2; return 1; fi
  psql -v ON_ERROR_STOP=1 -X -q --username "$admin" --dbname "$admin_db" \
       --set=role="$role" --set=db="$db" --set=pass="$pass" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pass')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'pass') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L', :'db', :'role', 'UTF8')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
  echo "init.sh: database $db owned by role $role"
}

create_db song     songs     "${SONG_DB_PASSWORD:-}"
create_db storage  storages  "${STORAGE_DB_PASSWORD:-}"
create_db resource resources "${RESOURCE_DB_PASSWORD:-}"
