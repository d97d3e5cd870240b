"""Real MP3 files for system tests, generated with Debian's sox and lame (cached per set of
arguments for the session)."""
import functools
import pathlib
import subprocess
import tempfile

_DIR = pathlib.Path(tempfile.mkdtemp(prefix="fermata-mp3-"))


@functools.lru_cache(maxsize=64)
def make_mp3(seconds=2.0, title="Test Song", artist="Test Artist", album="Test Album", year="1999",
             freq=440, vbr=False):
    """Bytes of an MP3 with ID3v2 tags; distinct arguments give distinct files."""
    name = f"s{seconds}-f{freq}-{abs(hash((title, artist, album, year, vbr)))}"
    wav = _DIR / f"{name}.wav"
    mp3 = _DIR / f"{name}.mp3"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "1", str(wav), "synth", str(seconds), "sine", str(freq)],
                   check=True, capture_output=True)
    opts = ["-V", "4"] if vbr else ["-b", "128"]
    tags = ["--add-id3v2", "--id3v2-only", "--tt", title, "--ta", artist, "--tl", album]
    if year:
        tags += ["--ty", year]
    subprocess.run(["lame", "--quiet", *opts, *tags, str(wav), str(mp3)], check=True, capture_output=True)
    return mp3.read_bytes()


def _id3v23(title, artist, album, year, pad=0):
    """An ID3v2.3 tag with text frames (Latin-1) and `pad` bytes of padding."""
    def frame(fid, text):
        body = b"\x00" + text.encode("latin-1")
        return fid.encode() + len(body).to_bytes(4, "big") + b"\x00\x00" + body
    frames = frame("TIT2", title) + frame("TPE1", artist) + frame("TALB", album) + frame("TYER", year)
    size = len(frames) + pad
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + frames + b"\x00" * pad


@functools.lru_cache(maxsize=8)
def make_long_mp3(minutes, title="Long Song", artist="Long Artist", album="Long Album", year="2001"):
    """Path of a CBR 128 kbps MP3 of `minutes` minutes, made in seconds whatever its length:
    10 s of audio encoded once (no bit reservoir, no Xing tag, so its frames stand alone),
    repeated. Returns (path, exact duration in seconds)."""
    seconds = 10
    wav = _DIR / f"long-{seconds}.wav"
    raw = _DIR / f"long-{seconds}.mp3"
    if not raw.exists():
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(wav), "synth", str(seconds), "sine", "440"],
                       check=True, capture_output=True)
        subprocess.run(["lame", "--quiet", "-b", "128", "--nores", "-t", "--id3v2-only", str(wav), str(raw)],
                       check=True, capture_output=True)
    frames = raw.read_bytes()
    if frames.startswith(b"ID3"):  # lame wrote no tag without tag options; skip one if it did
        size = (frames[6] << 21) | (frames[7] << 14) | (frames[8] << 7) | frames[9]
        frames = frames[10 + size:]
    count = _count_frames(frames)
    repeats = max(1, round(minutes * 60 / seconds))
    path = _DIR / f"long-{minutes}-{abs(hash((title, artist, album, year)))}.mp3"
    with open(path, "wb") as f:
        f.write(_id3v23(title, artist, album, year))
        for _ in range(repeats):
            f.write(frames)
    return path, repeats * count * 1152 / 44100


def _count_frames(data):
    """MPEG-1 Layer III frames at 44.1 kHz chained from the start of data."""
    rates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0]
    pos = n = 0
    while pos + 4 <= len(data) and data[pos] == 0xFF and (data[pos + 1] & 0xE0) == 0xE0:
        br = rates[data[pos + 2] >> 4]
        pad = (data[pos + 2] >> 1) & 1
        pos += 144 * br * 1000 // 44100 + pad
        n += 1
    assert pos == len(data), f"frames do not chain to the end ({pos} of {len(data)})"
    return n
