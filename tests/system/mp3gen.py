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
