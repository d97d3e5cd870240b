#!/usr/bin/env bash
# MB/s of a streamed PUT through lib/s3 (-O2) to the store in S3_ENDPOINT, in each integrity
# mode (UNSIGNED-PAYLOAD, trailing CRC32C, trailing SHA-256), rounds interleaved; and each
# checksum's cost in memory. Needs the store running, e.g. scripts/stack.sh start s3 and
# eval "$(scripts/stack.sh env)".
# usage: bench/s3stream/run.sh [MB, default 100] [ROUNDS, default 7] [build dir]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$(mkdir -p "${3:-$ROOT/build/bench-s3stream}" && cd "${3:-$ROOT/build/bench-s3stream}" && pwd)"
: "${S3_ENDPOINT:?export what scripts/stack.sh env prints}"

cc -std=c11 -O2 -D_GNU_SOURCE -I"$ROOT/lib" -I"$ROOT/lib/s3" \
   "$ROOT/bench/s3stream/s3stream_bench.c" "$ROOT"/lib/s3/*.c "$ROOT/lib/capbuf/capbuf.c" \
   "$ROOT/lib/curlpool/curlpool.c" -lcurl -lcrypto -lpthread -o "$OUT/s3stream_bench"
"$OUT/s3stream_bench" "bench-s3stream" "${1:-100}" "${2:-7}"
