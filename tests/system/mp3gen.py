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


def _frame_len(h):
    """Length of the MPEG-1 Layer III frame whose 4 header bytes are h (CBR, as lame makes)."""
    bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    rates = [44100, 48000, 32000]
    assert h[0] == 0xFF and (h[1] & 0xFE) == 0xFA, "not an MPEG-1 Layer III frame"
    return 144000 * bitrates[h[2] >> 4] // rates[(h[2] >> 2) & 3] + ((h[2] >> 1) & 1)


@functools.lru_cache(maxsize=4)
def make_long_mp3(minutes, title="Long Mix", artist="Long Artist", album="Long Album", year="2011"):
    """(bytes, seconds) of an MP3 of about `minutes` at 128 kbit/s (~1 MB a minute), made in
    a second or two: a few seconds encoded by lame, without a Xing/Info header, whose
    frames are repeated. Its exact duration (frames x 1152 / 44100, as the processor's
    frame scan counts without a Xing header) comes back with it. The frames after the
    first block borrow bits across the seam (bit reservoir), which a decoder would hear as
    a click; a frame scan does not decode."""
    name = f"long{minutes}-{abs(hash((title, artist, album, year)))}"
    wav, mp3 = _DIR / f"{name}.wav", _DIR / f"{name}.mp3"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "1", str(wav), "synth", "6", "sine", "330"],
                   check=True, capture_output=True)
    subprocess.run(["lame", "--quiet", "-b", "128", "-t", "--add-id3v2", "--id3v2-only", "--tt", title,
                    "--ta", artist, "--tl", album, "--ty", year, str(wav), str(mp3)],
                   check=True, capture_output=True)
    data = mp3.read_bytes()
    assert data[:3] == b"ID3"
    tag_len = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    frames, pos = 0, tag_len
    while pos + 4 <= len(data):
        pos += _frame_len(data[pos:pos + 4])
        frames += 1
    assert pos == len(data), "lame's output is not whole frames"
    block = data[tag_len:]
    repeat = max(1, round(minutes * 60 * 44100 / 1152 / frames))
    seconds = frames * repeat * 1152 / 44100
    return data[:tag_len] + block * repeat, seconds


def mmss(seconds):
    """The Song Service's duration for seconds (rounded half up, as lib/mp3 does)."""
    s = int(seconds + 0.5)
    return f"{s // 60:02d}:{s % 60:02d}"


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
def long_mp3_file(minutes, title="Long Song", artist="Long Artist", album="Long Album", year="2001"):
    """make_long_mp3 on disk, for files too large to hold (the benchmarks' 1 GB): a CBR
    128 kbps MP3 of `minutes` minutes, 10 s of stereo audio encoded once (no bit reservoir,
    no Xing tag, so its frames stand alone) and repeated. Returns (path, exact seconds)."""
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
