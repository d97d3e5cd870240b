#!/usr/bin/env bash
# Long API fuzz run (`make apifuzz`): schemathesis against docs/openapi.yaml through the
# gateway of a private stack (own run directory and ports, so nothing a developer keeps in
# `make run` is touched: the run creates and deletes storages, songs and resources at will),
# then the Resource Service's actuator directly (state-changing POST left out).
#
#   tests/apifuzz/run.sh [EXAMPLES] [extra schemathesis args...]
#
# EXAMPLES per operation (default 1000). APIFUZZ_SEED fixes the seed (default: random,
# printed). Reports (JUnit, NDJSON) go to <data dir>/apifuzz/report (run/apifuzz/report in a reachable checkout). Services: the ASan/UBSan
# build (build/debug), so memory errors show up as sanitizer reports in their logs, which
# fail the run as well. Exit status: non-zero when schemathesis or a sanitizer found
# anything.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EXAMPLES=${1:-1000}; shift || true
export FERMATA_ROOT=$ROOT
. "$ROOT/scripts/lib/common.sh"
export FERMATA_DATA_DIR=${APIFUZZ_RUN_DIR:-$(fm_data_dir_default apifuzz)}
export FERMATA_BUILD_DIR=${FERMATA_BUILD_DIR:-$ROOT/build/debug}
# private ports (each overridable)
export PG_PORT=${PG_PORT:-25920} AMQP_PORT=${AMQP_PORT:-27320} S3_PORT=${S3_PORT:-29700}
export GATEWAY_PORT=${GATEWAY_PORT:-18680} RESOURCE_PORT=${RESOURCE_PORT:-18681} SONG_PORT=${SONG_PORT:-18682}
export STORAGE_PORT=${STORAGE_PORT:-18683} PROCESSOR_PORT=${PROCESSOR_PORT:-18684}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
SEED=${APIFUZZ_SEED:-$RANDOM$RANDOM}
ST="$ROOT/.venv/bin/schemathesis"
[ -x "$ST" ] || { echo "apifuzz: $ST missing; run scripts/deps.sh" >&2; exit 1; }
[ -x "$FERMATA_BUILD_DIR/services/resource/fermata-resource" ] || { echo "apifuzz: build first (make build)" >&2; exit 1; }

cleanup() {
  "$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
  "$ROOT/scripts/stack.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
rm -rf "$FERMATA_DATA_DIR/logs" "$FERMATA_DATA_DIR/report"
mkdir -p "$FERMATA_DATA_DIR/report"
"$ROOT/scripts/stack.sh" start
eval "$("$ROOT/scripts/stack.sh" env)"
"$ROOT/scripts/services.sh" start

export PYTHONPATH="$ROOT/tests/apifuzz" SCHEMATHESIS_HOOKS=fermata_hooks NO_COLOR=1
common=(--config-file "$ROOT/tests/apifuzz/schemathesis.toml" --no-color run "$ROOT/docs/openapi.yaml"
        --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 --request-timeout 60
        --report junit,ndjson --report-dir "$FERMATA_DATA_DIR/report")
echo "apifuzz: $EXAMPLES examples per operation, seed $SEED"
status=0
(cd "$FERMATA_DATA_DIR" && "$ST" "${common[@]}" --url "$GATEWAY_URL" --exclude-tag Actuator "$@") || status=1
(cd "$FERMATA_DATA_DIR" && "$ST" "${common[@]}" --url "http://127.0.0.1:$RESOURCE_PORT" --include-tag Actuator \
   --exclude-method POST --report-junit-path "$FERMATA_DATA_DIR/report/actuator.xml" "$@") || status=1

"$ROOT/scripts/services.sh" stop
if grep -lE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" \
     "$FERMATA_DATA_DIR"/logs/*.log; then
  echo "apifuzz: sanitizer reports in the service logs above" >&2
  status=1
fi
echo "apifuzz: $([ $status -eq 0 ] && echo no issues || echo FAILED) (seed $SEED; reports in $FERMATA_DATA_DIR/report)"
exit $status
