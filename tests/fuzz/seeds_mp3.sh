#!/usr/bin/env bash
# Regenerates the committed seed corpus tests/fuzz/corpus/mp3/: small real MP3 files
# (a few KB each) made with sox, lame, id3v2 and ffmpeg, covering the shapes lib/mp3
# handles (MPEG 1/2/2.5, CBR/VBR, with and without Xing/Info, ID3v2.3/2.4/v1, Latin-1,
# UTF-16, UTF-8) plus a truncated file and a tag without audio; the same behind two
# parameter bytes for the mp3_check and mp3_source targets.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dst=$root/tests/fuzz/corpus/mp3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dst"
q() { "$@" >/dev/null 2>&1; }

q sox -n -r 8000 -c 1 -b 16 "$tmp/8k.wav" synth 0.5 sine 200-3000
q sox -n -r 22050 -c 1 -b 16 "$tmp/22k.wav" synth 0.3 sine 200-3000
q sox -n -r 44100 -c 2 -b 16 "$tmp/44k.wav" synth 0.2 sine 200-3000

q lame -b 24 "$tmp/8k.wav" "$dst/mpeg25_cbr_info.mp3"
q lame -V 6 "$tmp/8k.wav" "$dst/mpeg25_vbr_xing.mp3"
q lame -V 6 -t "$tmp/8k.wav" "$dst/mpeg25_vbr_noxing.mp3"
q lame -b 32 "$tmp/22k.wav" "$dst/mpeg2_cbr.mp3"
q lame -b 64 "$tmp/44k.wav" "$dst/mpeg1_cbr_stereo.mp3"

cp "$dst/mpeg25_cbr_info.mp3" "$dst/id3v23_latin1.mp3"
q id3v2 -t "$(printf 'Caf\xe9')" -a Queen -A "News of the world" -y 1977 "$dst/id3v23_latin1.mp3"
cp "$dst/mpeg25_vbr_noxing.mp3" "$dst/id3v1_only.mp3"
q id3v2 -1 -t Title -a Artist -A Album -y 2001 "$dst/id3v1_only.mp3"
q lame -b 24 -t --id3v2-only --id3v2-utf16 --tt "Żółć" --ta "Чайковский" --ty 1999 \
  "$tmp/8k.wav" "$dst/id3v23_utf16.mp3"
q ffmpeg -v error -y -i "$dst/mpeg25_vbr_xing.mp3" -c copy -id3v2_version 4 \
  -metadata title="Ωμέγα 🎵" -metadata artist=Björk -metadata date=2004-05-01 \
  "$dst/id3v24_utf8.mp3"

head -c 700 "$dst/id3v23_latin1.mp3" >"$dst/truncated.mp3"
python3 - "$dst" <<'PY'
import sys
d = sys.argv[1]
data = open(f"{d}/id3v23_latin1.mp3", "rb").read()
size = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
open(f"{d}/tag_only.mp3", "wb").write(data[:size])
PY
ls -l "$dst"

# The mp3_check and mp3_source targets read their two first bytes as parameters (chunk
# sizes; short reads and the failing call): their seeds are these files behind two bytes.
for t in mp3_check mp3_source; do
  mkdir -p "$root/tests/fuzz/corpus/$t"
  for f in "$dst"/*.mp3; do
    { printf "$(printf '\\x%02x\\x%02x' $((RANDOM % 256)) $((RANDOM % 256)))"; cat "$f"; } >"$root/tests/fuzz/corpus/$t/$(basename "$f")"
  done
done
