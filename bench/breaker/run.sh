#!/usr/bin/env bash
# Side-by-side cost of acquire+record: lib/breaker (C, -O2) vs Resilience4j 2.4.0 (JMH),
# 1 and 2 threads, and the ratio. Needs cc, java >= 17, mvn.
# usage: bench/breaker/run.sh [build dir, default build/bench-breaker]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/build/bench-breaker}" && cd "${1:-$ROOT/build/bench-breaker}" && pwd)"
JAVA_DIR="$ROOT/tests/conformance/breaker/java"

cc -std=c11 -O2 -D_GNU_SOURCE -I"$ROOT/lib" -I"$ROOT/lib/breaker" \
   "$ROOT/bench/breaker/breaker_bench.c" "$ROOT"/lib/breaker/*.c "$ROOT/lib/javanum/javanum.c" \
   -lpthread -lm -o "$OUT/breaker_bench"
mvn -B -q -f "$JAVA_DIR/pom.xml" -Dharness.dir="$OUT/java" package

echo "== C (lib/breaker) =="
"$OUT/breaker_bench" | tee "$OUT/c.txt"
echo "== Java (Resilience4j 2.4.0, JMH avgt) =="
: > "$OUT/java.txt"
for t in 1 2; do
  java -cp "$OUT/java/breaker-harness.jar" org.openjdk.jmh.Main BreakerBench -f 1 -wi 3 -w 1s \
       -i 5 -r 1s -t "$t" -bm avgt -tu ns -rf csv -rff "$OUT/jmh-$t.csv" > "$OUT/jmh-$t.log"
  ns=$(tail -1 "$OUT/jmh-$t.csv" | awk -F, '{print $5}')
  echo "threads=$t ns_per_op=$ns" | tee -a "$OUT/java.txt"
done
echo "== ratio (Resilience4j / lib/breaker, per op) =="
for e in 0 1; do
  for t in 1 2; do
    c=$(grep "events=$e threads=$t " "$OUT/c.txt" | sed 's/.*ns_per_op=//')
    j=$(grep "threads=$t " "$OUT/java.txt" | sed 's/.*ns_per_op=//')
    awk -v e="$e" -v t="$t" -v c="$c" -v j="$j" 'BEGIN { printf "C events=%d threads=%d: C=%.1f ns Java=%.1f ns Java/C=%.2f\n", e, t, c, j, j / c }'
  done
done
