#!/usr/bin/env bash
# Offline validation of everything under deploy/ and of docs/openapi.yaml (what `make lint`
# and CI run). No Docker engine and no cluster needed. Runs every check, then exits 1 if
# any failed.
#
#   OpenAPI     openapi-spec-validator (document), deploy/lint/check_openapi_examples.py
#               (every example against its schema)
#   Compose     deploy/lint/compose-check: compose-go, the loader of `docker compose`
#               (Compose Specification schema, interpolation with .env.example and its
#               passwords filled in, consistency: depends_on targets, volumes, networks);
#               and that it refuses .env.example as it is (empty passwords), naming
#               deploy/.env
#   Dockerfile  hadolint (deploy/lint/hadolint.yaml) on every Dockerfile under deploy/
#   Kubernetes  kubernetes-validate --strict against the bundled OpenAPI schemas of the
#               Kubernetes versions in K8S_VERSIONS; the kustomization lists every file
#   nginx       `nginx -t` on the template rendered as the local stack does, and as the
#               gateway image does; every placeholder is filled by both renderers
#   shell       bash -n on the deploy scripts
#   Prometheus  `promtool check config` (Debian's prometheus package) on the configuration
#               the local stack writes (scripts/stack.d/55-prometheus.sh, two replicas) and
#               on Compose's (deploy/prometheus/prometheus.yml, and make containers' variant
#               deploy/containers/prometheus.here.yml)
#   Grafana     deploy/lint/check_dashboards.py: every dashboard's PromQL parses (promtool)
#               and uses only metrics the services write (deploy/grafana/metrics.txt,
#               generated from the C sources by deploy/lint/metric_names.py, which must
#               still match the code), datasources are the provisioned one, the adapted
#               Resilience4j dashboard is what deploy/grafana/adapt_resilience4j.py makes
#   C format    clang-format --dry-run --Werror (.clang-format) on every C file in git
#   C analysis  cppcheck (Debian's) on lib/ and services/: its "warning" and "portability"
#               classes (undefined or suspicious code: uninitialised use, null deref,
#               leaks on error paths, wrong printf formats, shifts, sizeof mistakes), never
#               "style"; a finding that is wrong is suppressed inline with its reason.
#               clang-format and cppcheck come from scripts/deps.sh.
#
# Tools: Python ones pinned in deploy/lint-requirements.txt, installed into .venv-lint
# (rebuilt only when that file changes); compose-check is built with Go from
# deploy/lint/compose-check (go.mod/go.sum pin compose-go) into .venv-lint/bin.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
VENV=${LINT_VENV:-$ROOT/.venv-lint}
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.37.0"}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}

# ---- tools ---------------------------------------------------------------------------
setup_python() {
  local req=deploy/lint-requirements.txt stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "lint: building $VENV from $req"
    python3 -m venv "$VENV" || return 1
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req" || return 1
    echo "$want" >"$stamp"
  fi
  # keep the venv out of git without touching the top-level .gitignore
  [ -f "$VENV/.gitignore" ] || echo '*' >"$VENV/.gitignore"
}

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else return 1; fi
}

setup_compose_check() {
  local src=deploy/lint/compose-check bin="$VENV/bin/compose-check" stamp="$VENV/.compose-check.sha256" want go
  want=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -d' ' -f1)
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  go=$(find_go) || { echo "lint: Go not found (needed to build compose-check; Debian golang-go >= 1.24 or /usr/local/go)" >&2; return 1; }
  echo "lint: building compose-check with $("$go" version | cut -d' ' -f3)"
  (cd "$src" && GOFLAGS=-mod=readonly "$go" build -trimpath -o "$bin" .) || return 1
  echo "$want" >"$stamp"
}

# ---- checks --------------------------------------------------------------------------
failed=()
run() {   # run NAME CMD...: runs one check, records a failure
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    printf 'lint: %-34s ok\n' "$name"
  else
    printf 'lint: %-34s FAILED\n' "$name"
    printf '%s\n' "$out" | sed 's/^/    /'
    failed+=("$name")
  fi
}

check_openapi() { "$VENV/bin/openapi-spec-validator" docs/openapi.yaml; }
check_openapi_examples() { "$VENV/bin/python" deploy/lint/check_openapi_examples.py docs/openapi.yaml; }

check_compose() {   # check_compose ENV_FILE
  "$VENV/bin/compose-check" -env-file "$1" deploy/compose.yaml 2>&1 | tee /dev/stderr | { ! grep -q 'level=warning'; }
}

# .env.example with every empty password filled in (what a user's deploy/.env looks like).
check_compose_filled() {
  local env rc
  env=$(mktemp)
  sed -E 's/^([A-Z_]*(PASSWORD|SECRET))=$/\1=lint-Pa55:w@rd\/%#/' deploy/.env.example >"$env"
  check_compose "$env"; rc=$?
  rm -f "$env"
  return $rc
}

# Without passwords (no deploy/.env, or .env.example copied as it is) Compose must stop
# and name the file to fix.
check_compose_refuses_empty() {
  local out
  if out=$("$VENV/bin/compose-check" -env-file deploy/.env.example deploy/compose.yaml 2>&1); then
    echo "compose accepted empty passwords:"; echo "$out"; return 1
  fi
  echo "$out" | grep -q 'in deploy/.env' || { echo "compose failed without naming deploy/.env:"; echo "$out"; return 1; }
}

check_dockerfiles() {
  local files
  mapfile -t files < <(find deploy -name Dockerfile -o -name '*.Dockerfile' | sort)
  [ ${#files[@]} -gt 0 ] || { echo "no Dockerfile under deploy/"; return 1; }
  "$VENV/bin/hadolint" --no-color --config deploy/lint/hadolint.yaml "${files[@]}"
}

k8s_files() { find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort; }

check_k8s() {   # check_k8s VERSION
  local files
  mapfile -t files < <(k8s_files)
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$1" "${files[@]}"
}

check_kustomization() {
  "$VENV/bin/python" - <<'EOF'
import os, sys, yaml
k = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
listed = set(k.get("resources", []))
present = {f for f in os.listdir("deploy/k8s") if f.endswith(".yaml")} - {"kustomization.yaml"}
# the Secret is a template: created by the operator, never applied from git
expected = present - {"secret.example.yaml"}
missing, unknown = expected - listed, listed - present
for f in sorted(missing): print(f"kustomization.yaml does not list {f}")
for f in sorted(unknown): print(f"kustomization.yaml lists {f}, which does not exist")
sys.exit(1 if missing or unknown else 0)
EOF
}

# The placeholders of the template, and the envsubst lists of the two renderers (the local
# stack's script, the gateway image's entry point, which Compose and Kubernetes run).
check_gateway_placeholders() {
  # both renderers (the local stack's and the gateway image's entry point) take the list of
  # placeholders from the template itself, so they cannot drift from it
  local f rc=0
  for f in scripts/stack.d/40-gateway.sh deploy/nginx/gateway-entrypoint.sh; do
    grep -Eq "^ *(GW_VARS|vars)=\\$\\(grep -o '" "$f" ||
      { echo "$f: the envsubst list is not read from the template"; rc=1; }
  done
  return $rc
}

render_gateway() {   # render_gateway OUT DIR LISTEN USER_DIRECTIVE
  GATEWAY_LISTEN=$3 GATEWAY_USER_DIRECTIVE=$4 GATEWAY_WORKERS=2 GATEWAY_RUN_DIR=$2 \
  GATEWAY_ACCESS_LOG=$2/access.log GATEWAY_ERROR_LOG=$2/error.log \
  RESOURCE_UPSTREAM=127.0.0.1:8081 SONG_UPSTREAM=127.0.0.1:8082 STORAGE_UPSTREAM=127.0.0.1:8083 \
  GATEWAY_MAX_BODY_SIZE=1025m GATEWAY_UPSTREAM_TIMEOUT=120s GATEWAY_EXPOSE_ACTUATOR=0 \
  GATEWAY_WRITE_RATE=100r/s GATEWAY_WRITE_BURST=200 GATEWAY_WRITE_CONNS=64 \
    envsubst "$(grep -o '\${[A-Z0-9_]*}' deploy/nginx/fermata.conf.template | sort -u | tr '\n' ' ')" \
    <deploy/nginx/fermata.conf.template >"$1"
}

check_nginx() {   # check_nginx VARIANT
  [ -x "$NGINX_BIN" ] || { echo "nginx not found at $NGINX_BIN (Debian nginx-light)"; return 1; }
  local dir rc user=""
  dir=$(mktemp -d)
  chmod 755 "$dir"
  case "$1" in
    stack) [ "$(id -u)" -eq 0 ] && user="user nobody nogroup;"
           render_gateway "$dir/fermata.conf" "$dir" 127.0.0.1:8080 "$user" ;;
    container) render_gateway "$dir/fermata.conf" "$dir" 8080 "" ;;
  esac
  if grep -n '\${' "$dir/fermata.conf"; then echo "placeholders left after rendering"; rm -rf "$dir"; return 1; fi
  "$NGINX_BIN" -t -q -e "$dir/error.log" -c "$dir/fermata.conf"
  rc=$?
  rm -rf "$dir"
  return $rc
}

check_shell() {
  local f rc=0
  for f in scripts/lint.sh scripts/stack.d/40-gateway.sh scripts/stack.d/55-prometheus.sh scripts/containers.sh deploy/postgres/init.sh; do
    bash -n "$f" || rc=1
  done
  sh -n deploy/nginx/gateway-entrypoint.sh || rc=1
  return $rc
}

# The local stack's Prometheus configuration, as 55-prometheus.sh writes it for two replicas.
check_prometheus_stack() {
  command -v promtool >/dev/null || { echo "promtool missing: run make deps (Debian's prometheus)"; return 1; }
  local dir rc
  dir=$(mktemp -d)
  (
    set -e
    . scripts/lib/common.sh
    FERMATA_DATA_DIR=$dir FERMATA_REPLICAS=2 COMPONENTS=()
    . scripts/stack.d/55-prometheus.sh
    prometheus_config_
  ) >"$dir/prometheus.yml" && grep -q '127.0.0.1:' "$dir/prometheus.yml" && promtool check config "$dir/prometheus.yml"
  rc=$?
  rm -rf "$dir"
  return $rc
}

check_prometheus_compose() {
  command -v promtool >/dev/null || { echo "promtool missing: run make deps (Debian's prometheus)"; return 1; }
  promtool check config deploy/prometheus/prometheus.yml deploy/containers/prometheus.here.yml
}

check_dashboards() { "$VENV/bin/python" deploy/lint/check_dashboards.py; }

c_files() { git ls-files '*.c' '*.h'; }

check_c_format() {
  command -v clang-format >/dev/null || { echo "clang-format missing: run make deps"; return 1; }
  c_files | xargs clang-format --dry-run --Werror
}

check_c_cppcheck() {
  command -v cppcheck >/dev/null || { echo "cppcheck missing: run make deps"; return 1; }
  local incs=() d
  for d in services/*/; do incs+=(-I "$d"); done
  cppcheck -q --std=c11 -D_GNU_SOURCE --enable=warning,portability --inline-suppr \
    --error-exitcode=1 --suppress=missingIncludeSystem -I lib "${incs[@]}" \
    -j "$(nproc)" lib services
}

# ---- main ----------------------------------------------------------------------------
setup_python || { echo "lint: could not install the Python tools" >&2; exit 1; }
setup_compose_check || { echo "lint: could not build compose-check" >&2; exit 1; }

run "openapi: spec" check_openapi
run "openapi: examples" check_openapi_examples
run "compose: .env.example, passwords set" check_compose_filled
run "compose: refuses empty passwords" check_compose_refuses_empty
run "dockerfile: hadolint" check_dockerfiles
for v in $K8S_VERSIONS; do run "k8s: schemas $v" check_k8s "$v"; done
run "k8s: kustomization" check_kustomization
run "gateway: placeholders" check_gateway_placeholders
run "gateway: nginx -t (stack)" check_nginx stack
run "gateway: nginx -t (container)" check_nginx container
run "shell: bash -n" check_shell
run "prometheus: promtool (stack)" check_prometheus_stack
run "prometheus: promtool (compose)" check_prometheus_compose
run "grafana: dashboards" check_dashboards
run "C: clang-format" check_c_format
run "C: cppcheck" check_c_cppcheck

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint: all checks passed"
