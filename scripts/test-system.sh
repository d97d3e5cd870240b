#!/usr/bin/env bash
# System tests: starts the whole local stack in its own data directory (the default one's
# test/ subdirectory, emptied first so every run starts from nothing), then runs pytest
# against the ASan/UBSan build of the services. The tests start, stop and kill services
# and stack components themselves (through scripts/services.sh and scripts/stack.sh).
# Extra arguments go to pytest (e.g. -k song).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib/common.sh"
export FERMATA_DATA_DIR=${FERMATA_DATA_DIR:-$(fm_data_dir_default test)}
export FERMATA_BUILD_DIR=${FERMATA_BUILD_DIR:-$ROOT/build/debug}
export FERMATA_ROOT=$ROOT
# TLS too: RabbitMQ's amqps listener (tests/system/test_mq.py) and PostgreSQL's (the
# Kubernetes example asks for sslmode=require: tests/system/test_deploy_config.py), with
# certificates made at start
export RABBITMQ_TLS=${RABBITMQ_TLS:-1} PG_TLS=${PG_TLS:-1}
# ASan: no leak check noise from the Python side; services report their own. A 16 MB
# quarantine of freed memory (256 MB by default) keeps the services' RSS near what the
# release build's is: tests/system/test_uploads.py holds them to 64 MB during long uploads.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Uploads over 16 MiB go multipart and moves of objects over 32 MiB to PERMANENT copy in
# parts (UploadPartCopy), what beyond 5 GiB needs, so the long uploads of
# tests/system/test_uploads.py take those paths (the shorter ones the single PUT).
export RESOURCE_COPY_SINGLE_MAX_BYTES=${RESOURCE_COPY_SINGLE_MAX_BYTES:-33554432}
export RESOURCE_UPLOAD_SINGLE_MAX_BYTES=${RESOURCE_UPLOAD_SINGLE_MAX_BYTES:-16777216}

cleanup() {
  "$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
  "$ROOT/scripts/stack.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
"$ROOT/scripts/stack.sh" reset
"$ROOT/scripts/stack.sh" start
eval "$("$ROOT/scripts/stack.sh" env)"
export FERMATA_DATA_DIR=$("$ROOT/scripts/stack.sh" dir)
cd "$ROOT"
"$ROOT/.venv/bin/python" -m pytest tests/system -p no:cacheprovider -q "$@"
