#!/usr/bin/env bash
# `make demo`: with `make run` running, uploads a freshly generated MP3 through the gateway
# and shows each step of the pipeline as it happens, with timings:
#   uploaded (state STAGING) -> metadata stored by the processor -> state PERMANENT.
# The state is read from the Resource Service's database (it is not part of the API).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FERMATA_DATA_DIR=${FERMATA_DATA_DIR:-$ROOT/run}
eval "$("$ROOT/scripts/stack.sh" env)"
GW=${GATEWAY_URL:-http://127.0.0.1:8080}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

curl -sf "$GW/storages" >/dev/null || { echo "demo: nothing answers at $GW; start the system with 'make run' first" >&2; exit 1; }
title="Demo $(date +%H:%M:%S)"
sox -n -r 44100 -c 1 "$tmp/a.wav" synth 3 sine 440 2>/dev/null
lame --quiet -b 128 --add-id3v2 --tt "$title" --ta "Fermata" --tl "Demo Album" --ty 2026 "$tmp/a.wav" "$tmp/a.mp3"
ms() { date +%s%3N; }
state() { psql "$RESOURCE_DB_URL" -tAc "SELECT state || ' ' || bucket FROM resources WHERE id=$1" 2>/dev/null; }

t0=$(ms)
echo "1. POST $GW/resources ($(stat -c %s "$tmp/a.mp3") bytes, title \"$title\")"
resp=$(curl -s -X POST -H 'Content-Type: audio/mpeg' --data-binary @"$tmp/a.mp3" "$GW/resources")
echo "   -> $resp  ($(( $(ms) - t0 )) ms)"
id=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' <<<"$resp")
[ -n "$id" ] || { echo "demo: upload failed" >&2; exit 1; }
seen_meta=0 seen_staging=0
for _ in $(seq 600); do
  if [ $seen_meta -eq 0 ] && song=$(curl -sf "$GW/songs/$id"); then
    echo "2. metadata stored  ($(( $(ms) - t0 )) ms): $song"; seen_meta=1
  fi
  s=$(state "$id")
  if [ "${s%% *}" = STAGING ] && [ $seen_staging -eq 0 ]; then
    echo "   state STAGING ($(( $(ms) - t0 )) ms): bucket ${s#* }"; seen_staging=1
  fi
  if [ "${s%% *}" = PERMANENT ]; then
    echo "3. state PERMANENT ($(( $(ms) - t0 )) ms): bucket ${s#* }"
    break
  fi
  sleep 0.05
done
curl -s "$GW/resources/$id" -o "$tmp/back.mp3"
cmp -s "$tmp/a.mp3" "$tmp/back.mp3" && echo "4. GET $GW/resources/$id returns the same bytes"
