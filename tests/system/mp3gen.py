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
