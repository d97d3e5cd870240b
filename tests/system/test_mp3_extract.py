"""MP3 metadata extraction (lib/mp3) on real files made by Debian tools.

Each file is generated once per session with sox (audio), lame / ffmpeg (encoding, VBR
with and without a Xing header) and id3v2 / ffmpeg / lame (tags: ID3v2.3, ID3v2.4, ID3v1,
Latin-1, UTF-16, UTF-8). The C side is read through tests/tools/mp3_probe, which prints
what mp3_validate, mp3_extract and mp3_song_fields make of a file as JSON; with --stream,
what mp3_check and mp3_extract_source make of it without reading it into memory, which must
be the same.

Durations are checked against the nominal length we synthesised and against ffprobe.
ffprobe's container duration (format=duration) is a bitrate estimate for VBR files without
a Xing header (10% short on these files), so the reference is the sum of its packet
durations, i.e. every frame counted. That sum includes the encoder delay and padding
(~0.05 s) that lib/mp3 removes when the LAME tag declares them, hence the tolerance.

No running stack is needed. The probe binary: $FERMATA_MP3_PROBE, else
$FERMATA_BUILD_DIR/tests/tools/mp3_probe, else <repo>/build/debug/tests/tools/mp3_probe.
"""
import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("sox", "lame", "id3v2", "ffmpeg", "ffprobe")

LONG_TITLE = "Ünïcödé " * 12 + "🎵" * 20 + " tail"  # 116 code points, multibyte throughout
LONG_ARTIST = "A" * 250


def probe_path() -> Path:
    if os.environ.get("FERMATA_MP3_PROBE"):
        return Path(os.environ["FERMATA_MP3_PROBE"])
    build = Path(os.environ.get("FERMATA_BUILD_DIR", REPO / "build" / "debug"))
    return build / "tests" / "tools" / "mp3_probe"


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, **kw)


def sine(path: Path, seconds: float, rate: int = 44100, channels: int = 1):
    """A sweep, not a pure tone, so VBR encoders really vary the bitrate."""
    run("sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", str(path),
        "synth", str(seconds), "sine", "200-4000")


def lame(wav: Path, mp3: Path, *opts: str):
    run("lame", "--quiet", *opts, str(wav), str(mp3))


def ffprobe_duration(path: Path) -> float:
    """Sum of packet durations: every frame counted (see the module docstring)."""
    out = run("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
              "packet=duration_time", "-of", "csv=p=0", str(path), text=True).stdout
    # Lines can carry a trailing "," (side data): keep the first field.
    return sum(float(x.split(",")[0]) for x in out.split() if x.split(",")[0])


def ffprobe_format_duration(path: Path) -> float:
    out = run("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
              "csv=p=0", str(path), text=True).stdout
    return float(out.strip())


def id3v2_frame_encoding(path: Path, frame_id: str):
    """(major version, text encoding byte) of the first frame_id in the ID3v2 tag, so
    each test proves its file really carries the encoding it claims to test."""
    data = path.read_bytes()
    assert data[:3] == b"ID3", f"{path.name}: no ID3v2 tag"
    major = data[3]
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    pos, end = 10, 10 + size
    while pos + 10 <= end and data[pos] != 0:
        fid = data[pos:pos + 4].decode("latin-1")
        raw = data[pos + 4:pos + 8]
        fsize = ((raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]) if major == 4 \
            else struct.unpack(">I", raw)[0]
        if fid == frame_id:
            return major, data[pos + 10]
        pos += 10 + fsize
    return major, None


# Every generated file: how to make it, what the tags say, how long it is.
class Case:
    def __init__(self, name, seconds, make, tags, song=None, encoding=None):
        self.name, self.seconds, self.make, self.tags = name, seconds, make, tags
        self.song = song or {}  # expected Song Service fields that differ from the tags
        self.encoding = encoding  # (ID3v2 major, TIT2 encoding byte) to assert, or None
        self.path = None


def make_cbr_v23(c, d):  # lame CBR (Info header) + id3v2 (ID3v2.3 + ID3v1, Latin-1)
    wav = d / f"{c.name}.wav"
    sine(wav, c.seconds)
    lame(wav, c.path, "-b", "128")
    t = c.tags
    run("id3v2", "-t", t["title"].encode("latin-1"), "-a", t["artist"].encode("latin-1"),
        "-A", t["album"].encode("latin-1"), "-y", t["year"], str(c.path))


def make_vbr_xing_v24(c, d):  # lame VBR (Xing) + ffmpeg retag to ID3v2.4 UTF-8, TDRC date
    wav, tmp = d / f"{c.name}.wav", d / f"{c.name}.untagged.mp3"
    sine(wav, c.seconds, channels=2)
    lame(wav, tmp, "-V", "2")
    t = c.tags
    run("ffmpeg", "-v", "error", "-y", "-i", str(tmp), "-c", "copy", "-id3v2_version", "4",
        "-write_id3v1", "0", "-metadata", f"title={t['title']}", "-metadata",
        f"artist={t['artist']}", "-metadata", f"album={t['album']}", "-metadata",
        f"date={t['year']}", str(c.path))


def make_vbr_noxing_utf16(c, d):  # lame VBR, no Xing/LAME tag (-t), ID3v2 in UTF-16
    wav = d / f"{c.name}.wav"
    sine(wav, c.seconds, rate=22050)
    t = c.tags
    lame(wav, c.path, "-V", "4", "-t", "--id3v2-only", "--id3v2-utf16", "--tt", t["title"],
         "--ta", t["artist"], "--tl", t["album"], "--ty", t["year"])


def make_ffmpeg_v23_utf16(c, d):  # ffmpeg encoder, ID3v2.3: non-ASCII text goes UTF-16
    wav = d / f"{c.name}.wav"
    sine(wav, c.seconds)
    t = c.tags
    run("ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "96k",
        "-id3v2_version", "3", "-metadata", f"title={t['title']}", "-metadata",
        f"artist={t['artist']}", "-metadata", f"album={t['album']}", "-metadata",
        f"date={t['year']}", str(c.path))


def make_id3v1_only(c, d):  # id3v2 -1: ID3v1 only, Latin-1 bytes
    wav = d / f"{c.name}.wav"
    sine(wav, c.seconds)
    lame(wav, c.path, "-b", "64")
    t = c.tags
    run("id3v2", "-1", "-t", t["title"].encode("latin-1"), "-a", t["artist"].encode("latin-1"),
        "-A", t["album"].encode("latin-1"), "-y", t["year"], str(c.path))


def make_untagged(c, d, rate=44100, opts=("-b", "128")):
    wav = d / f"{c.name}.wav"
    sine(wav, c.seconds, rate=rate)
    lame(wav, c.path, *opts)


def make_long_tags(c, d):  # ID3v2.4 UTF-8 tags far over 100 characters
    make_vbr_xing_v24(c, d)


CASES = [
    Case("cbr_v23_latin1", 4.0, make_cbr_v23,
         {"title": "Café Déjà Vu", "artist": "Queen", "album": "News of the world",
          "year": "1977"}, encoding=(3, 0)),
    Case("vbr_xing_v24_utf8", 5.0, make_vbr_xing_v24,
         {"title": "Ωμέγα — 東京 🎵", "artist": "Björk", "album": "Homogenic",
          "year": "2004-05-01"}, song={"year": "2004"}, encoding=(4, 3)),
    Case("vbr_noxing_utf16", 6.0, make_vbr_noxing_utf16,
         {"title": "Żółć gęślą", "artist": "Чайковский", "album": "Лебединое озеро",
          "year": "1999"}, encoding=(3, 1)),
    Case("ffmpeg_v23_utf16", 3.0, make_ffmpeg_v23_utf16,
         {"title": "Ünïcödé title", "artist": "Sigur Rós", "album": "Ágætis byrjun",
          "year": "1850"}, song={"year": "1900"}, encoding=(3, 1)),
    Case("id3v1_only_latin1", 3.0, make_id3v1_only,
         {"title": "Señor Ñandú", "artist": "Mötley", "album": "Dr. Feelgood",
          "year": "1989"}),
    Case("untagged", 2.0, make_untagged, {"title": "", "artist": "", "album": "", "year": ""},
         song={"name": "Unknown", "artist": "Unknown", "album": "Unknown", "year": "1900"}),
    Case("long_tags", 2.0, make_long_tags,
         {"title": LONG_TITLE, "artist": LONG_ARTIST, "album": "  padded album  ",
          "year": "2010"},
         song={"name": LONG_TITLE[:100].rstrip(), "artist": "A" * 100,
               "album": "padded album"}),
    # 8 kHz (MPEG 2.5) keeps long files small and fast to encode. lame writes its Info/Xing
    # frame (with the encoder delay and padding) at 24 kbit/s and up, not with -t.
    Case("dur_59_4_cbr", 59.4, lambda c, d: make_untagged(c, d, 8000, ("-b", "24")), {}),
    Case("dur_59_6_vbr", 59.6, lambda c, d: make_untagged(c, d, 8000, ("-V", "6")), {}),
    Case("dur_60_noxing", 60.0, lambda c, d: make_untagged(c, d, 8000, ("-V", "6", "-t")), {}),
    Case("dur_601_1_noxing", 601.1,
         lambda c, d: make_untagged(c, d, 8000, ("-V", "8", "-t")), {}),
    Case("dur_601_3_cbr", 601.3, lambda c, d: make_untagged(c, d, 8000, ("-b", "24")), {}),
]
BY_NAME = {c.name: c for c in CASES}


@pytest.fixture(scope="session")
def probe():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"tools missing: {', '.join(missing)} (scripts/deps.sh installs them)")
    path = probe_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"mp3_probe not built at {path}: run `make build` "
                    "(or set FERMATA_BUILD_DIR / FERMATA_MP3_PROBE)")

    def run_probe(*files, stream=False):
        flags = ["--stream"] if stream else []
        out = subprocess.run([str(path), *flags, *map(str, files)], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, f"mp3_probe failed: {out.stderr}"
        return [json.loads(line) for line in out.stdout.splitlines()]
    return run_probe


@pytest.fixture(scope="session")
def generated(tmp_path_factory, probe):
    d = tmp_path_factory.mktemp("mp3")
    for c in CASES:
        c.path = d / f"{c.name}.mp3"
        c.make(c, d)
    results = probe(*(c.path for c in CASES))
    return d, {c.name: r for c, r in zip(CASES, results)}


@pytest.mark.parametrize("name", list(BY_NAME))
def test_generated_files_are_valid(generated, name):
    r = generated[1][name]
    assert r["valid"] == 0, r["reason"]
    assert r["extract"] == 0


@pytest.mark.parametrize("name", [c.name for c in CASES if c.encoding])
def test_file_carries_the_encoding_under_test(generated, name):
    c = BY_NAME[name]
    assert id3v2_frame_encoding(c.path, "TIT2") == c.encoding


@pytest.mark.parametrize("name", [c.name for c in CASES if c.tags])
def test_tags_as_written(generated, name):
    c, r = BY_NAME[name], generated[1][name]
    song = r["song"]
    for field, key in (("title", "name"), ("artist", "artist"), ("album", "album")):
        want = c.song.get(key, c.tags[field])
        assert song[key] == want, f"{field}: {song[key]!r} != {want!r}"
    assert song["year"] == c.song.get("year", c.tags["year"])
    if name == "id3v1_only_latin1":
        assert r["meta"]["id3v2_version"] == 0 and r["meta"]["id3v1"]


def test_long_tags_fit_the_song_service(generated):
    song = generated[1]["long_tags"]["song"]
    for key in ("name", "artist", "album"):
        assert 1 <= len(song[key]) <= 100
    assert len(song["name"]) == 100  # code points, multibyte kept whole
    assert song["name"].encode("utf-8").decode("utf-8") == song["name"]


def has_lame_tag(path: Path) -> bool:
    """Does the first frame carry lame's Xing/Info header (with encoder delay/padding)?"""
    data = path.read_bytes()
    start = 0
    if data[:3] == b"ID3":
        start = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    head = data[start:start + 200]
    return b"Xing" in head or b"Info" in head


def mmss(seconds: float) -> str:
    total = int(seconds + 0.5)
    return f"{total // 60:02d}:{total % 60:02d}"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_duration_matches_ffprobe(generated, name):
    c, r = BY_NAME[name], generated[1][name]
    ours, rate = r["meta"]["duration_s"], r["meta"]["sample_rate"]
    ref = ffprobe_duration(c.path)
    spf = 1152 if rate >= 32000 else 576
    # What the encoder adds: 576 + 529 samples of delay, then padding to a whole frame.
    added = (1105 + spf) / rate
    if has_lame_tag(c.path):
        # Delay and padding are declared and removed: exactly the synthesised length,
        # while ffprobe's packet sum still counts them.
        assert abs(ours - c.seconds) < 0.001, f"ours {ours} nominal {c.seconds}"
        assert 0 <= ref - ours <= added + 0.001, f"ours {ours} ffprobe {ref}"
        assert r["song"]["duration"] == mmss(c.seconds)
    else:
        # Nothing declares them: they are audio, for us as for ffprobe.
        assert abs(ours - ref) < 0.001, f"ours {ours} ffprobe {ref}"
        assert 0 <= ours - c.seconds <= added + 0.001, f"ours {ours} nominal {c.seconds}"
        assert r["song"]["duration"] == mmss(ref)


def test_validator_rejects_damaged_copies(generated, probe, tmp_path):
    src = BY_NAME["cbr_v23_latin1"].path.read_bytes()
    tag_end = 10 + ((src[6] << 21) | (src[7] << 14) | (src[8] << 7) | src[9])
    rnd = random.Random(5)
    files = {
        "empty": b"",
        "random": bytes(rnd.getrandbits(8) for _ in range(50000)),
        "tag_only": src[:tag_end],
        "cut_in_tag": src[:tag_end // 2],
        "cut_in_first_frames": src[:tag_end + 600],
        "cut_in_last_frame": src[:len(src) - 128 - 100],  # before ID3v1, inside a frame
        "text": b"This is not an MP3 file at all, just some text.\n" * 100,
    }
    want = {"empty": -1, "random": -2, "tag_only": -4, "cut_in_tag": -3,
            "cut_in_first_frames": -3, "cut_in_last_frame": -3, "text": -2}
    paths = []
    for k, v in files.items():
        p = tmp_path / f"{k}.mp3"
        p.write_bytes(v)
        paths.append(p)
    streamed = probe(*paths, stream=True)
    for k, r, st in zip(files, probe(*paths), streamed):
        assert r["valid"] == want[k], f"{k}: {r['reason']}"
        assert st["valid"] == want[k], f"streamed {k}: {st['reason']}"
        assert "mpg123" not in r["reason"].lower() and "taglib" not in r["reason"].lower()
        # Whatever the file, the Song Service fields are acceptable.
        s = r["song"]
        assert len(s["year"]) == 4 and 1900 <= int(s["year"]) <= 2099
        assert len(s["duration"]) == 5 and s["duration"][2] == ":"
        assert all(1 <= len(s[k2]) <= 100 for k2 in ("name", "artist", "album"))


STREAM_ONLY = ("size", "read_at_calls", "read_at_bytes")


def test_streaming_gives_the_same(generated, probe):
    """mp3_check fed in 64 KB chunks and mp3_extract_source over pread (mp3_probe --stream)
    say what mp3_validate and mp3_extract say on the file in memory, reading it once."""
    d, results = generated
    for c, st in zip(CASES, probe(*(c.path for c in CASES), stream=True)):
        extra = {k: st.pop(k) for k in STREAM_ONLY}
        assert st == results[c.name], c.name
        assert extra["size"] <= extra["read_at_bytes"] <= extra["size"] + 3 * 65536, (c.name, extra)
