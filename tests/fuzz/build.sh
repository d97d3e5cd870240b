#!/usr/bin/env bash
# Builds libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined), outside the
# CMake build so gcc builds are never disturbed.
#
#   tests/fuzz/build.sh TARGET...   builds tests/fuzz/fuzz_TARGET.c -> build/fuzz/fuzz_TARGET
#   tests/fuzz/build.sh all         every tests/fuzz/fuzz_*.c
#
# A target says what it needs in its own comment block, so adding a target never edits
# this script:
#   fuzz-sources: lib/x/x.c lib/y/y.c     (module sources, paths from the repo root; each
#                                          source's folder goes on the include path)
#   fuzz-pkgs: libmpg123 jansson           (pkg-config names, optional)
# Output dir: $FUZZ_BUILD_DIR (default build/fuzz). Compiler: $FUZZ_CC (default clang).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_BUILD_DIR:-$root/build/fuzz}
cc=${FUZZ_CC:-clang}
mkdir -p "$out"

if [ $# -eq 0 ]; then
  echo "usage: $0 TARGET... | all" >&2
  exit 2
fi
targets=("$@")
if [ "$1" = all ]; then
  targets=()
  for f in "$root"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c)
    targets+=("${t#fuzz_}")
  done
fi

for t in "${targets[@]}"; do
  src=$root/tests/fuzz/fuzz_$t.c
  [ -f "$src" ] || { echo "build.sh: no such target: $src" >&2; exit 2; }
  sources=$(sed -n 's/^[ *]*fuzz-sources:[ ]*//p' "$src" | head -1)
  pkgs=$(sed -n 's/^[ *]*fuzz-pkgs:[ ]*//p' "$src" | head -1)
  incs=() srcs=()
  for s in $sources; do
    srcs+=("$root/$s")
    incs+=("-I$root/$(dirname "$s")")
  done
  pkgflags=()
  if [ -n "$pkgs" ]; then
    # shellcheck disable=SC2207
    pkgflags=($(pkg-config --cflags --libs $pkgs))
  fi
  echo "build.sh: fuzz_$t"
  "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Werror -Wno-unused-parameter \
    "${incs[@]}" "$src" "${srcs[@]}" "${pkgflags[@]}" -lpthread -lm \
    -o "$out/fuzz_$t"
done
