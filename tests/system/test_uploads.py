"""Uploads of any size at constant memory (issue 13), with the real stack.

A long MP3 (86 MB, 90 minutes) goes through the gateway as a stream; it downloads
byte-identical, whole and by ranges, gets its tags and exact duration, moves to PERMANENT,
and neither the Resource Service nor the processor grows by more than 40 MB of RSS
meanwhile (the debug build; the release build's peak is make bench-uploads' figure).
Uploads that fail after bytes were sent (the client goes away halfway, the object store is
killed, the file turns out not to be an MP3 after 5 MB) leave no row, no object and no
multipart upload behind, and the next upload works."""
import hashlib
import os
import socket
import subprocess
import threading
import time

import requests

from conftest import PORTS, RUN_DIR, wait_until
from mp3gen import _id3v23, long_mp3_file, make_mp3
from test_pipeline import s3, stack_up  # noqa: F401 (fixtures: the whole stack, a boto3 client)
from test_resource_api import MP3, db

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
RSS_GROWTH_LIMIT = 40 << 20  # a buffered upload would add the file's 86 MB


def staging_bucket():
    storages = requests.get(f"{GATEWAY}/storages", timeout=5).json()
    return [s for s in storages if s["storageType"] == "STAGING"][0]["bucket"]


def pid_of(name):
    return int((RUN_DIR / "pids" / f"{name}.pid").read_text().strip())


class PeakRss:
    """Peak resident set of processes while the block runs: the kernel's high-water mark
    (VmHWM), reset first through /proc/PID/clear_refs, so earlier work does not count, and
    the resident set when the block began (`before`)."""

    def __init__(self, *names):
        self.pids = {n: pid_of(n) for n in names}
        self.peak = {}
        self.before = {}

    def __enter__(self):
        for name, pid in self.pids.items():
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            with open(f"/proc/{pid}/status") as f:
                self.before[name] = int([l for l in f if l.startswith("VmRSS:")][0].split()[1]) * 1024
        return self

    def __exit__(self, *exc):
        for name, pid in self.pids.items():
            with open(f"/proc/{pid}/status") as f:
                hwm = [l for l in f if l.startswith("VmHWM:")][0]
            self.peak[name] = int(hwm.split()[1]) * 1024
        return False


def snapshot(s3, bucket):
    """The highest resource id and the staging bucket's keys."""
    rows = int(db("SELECT coalesce(max(id), 0) FROM resources"))
    objects = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    return rows, objects


def nothing_new(s3, bucket, before):
    """No row and no staging object since `before` (earlier tests' files may still be moving
    out of the staging bucket meanwhile: that is not this upload's doing)."""
    rows, objects = snapshot(s3, bucket)
    return rows == before[0] and objects <= before[1]


def no_multipart_uploads(s3, bucket):
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_a_90_minute_mp3_streams_through_the_gateway(stack_up, s3):
    path, seconds = long_mp3_file(90, title="Ninety Minutes", artist="Long Player", album="Streams", year="2011")
    size = os.path.getsize(path)
    assert size > 80_000_000
    with PeakRss("resource", "processor") as rss:
        with open(path, "rb") as f:
            r = requests.post(f"{GATEWAY}/resources", data=f, headers=MP3, timeout=300)
        assert r.status_code == 200, r.text
        rid = r.json()["id"]
        song = wait_until(lambda: (lambda g: g.json() if g.status_code == 200 else None)(
            requests.get(f"{GATEWAY}/songs/{rid}", timeout=5)), timeout=240, message="metadata stored")
        minutes, secs = divmod(int(seconds + 0.5), 60)
        assert song == {"id": rid, "name": "Ninety Minutes", "artist": "Long Player", "album": "Streams",
                        "duration": f"{minutes:02d}:{secs:02d}", "year": "2011"}
        wait_until(lambda: db(f"SELECT state FROM resources WHERE id={rid}") == "PERMANENT", timeout=240,
                   message="state PERMANENT")
        h = hashlib.sha256()
        with requests.get(f"{GATEWAY}/resources/{rid}", stream=True, timeout=300) as g:
            assert g.status_code == 200 and int(g.headers["Content-Length"]) == size
            for block in g.iter_content(1 << 20):
                h.update(block)
        assert h.hexdigest() == sha256_of(path)
        with open(path, "rb") as f:
            for first, last in ((0, 99), (size // 2, size // 2 + 1_000_000), (size - 128, size - 1)):
                g = requests.get(f"{GATEWAY}/resources/{rid}", headers={"Range": f"bytes={first}-{last}"}, timeout=60)
                f.seek(first)
                assert g.status_code == 206 and g.content == f.read(last - first + 1)
    assert db(f"SELECT size FROM resources WHERE id={rid}") == str(size)
    assert db(f"SELECT sha256 FROM resources WHERE id={rid}") == sha256_of(path)
    (RUN_DIR / "upload-peak-rss.txt").write_text("".join(f"{n} {rss.before[n]} {p}\n" for n, p in rss.peak.items()))
    # The services here are the debug build, whose ASan shadow memory, redzones and
    # quarantine add some 25 MB to the resource's idle 13 MB: the release build's absolute
    # peak (target 64 MB) is make bench-uploads' figure (8 uploads of 1 GB at once). Here:
    # what the upload adds stays far below the file's size.
    for name, peak in rss.peak.items():
        grew = peak - rss.before[name]
        assert grew <= RSS_GROWTH_LIMIT, f"{name} grew by {grew >> 20} MiB during a {size >> 20} MiB upload"


def raw_upload(port, length, body, close_after=None, pace=None):
    """POSTs /resources with a declared length over a raw socket, sending `body` (an iterable
    of chunks); stops and closes after `close_after` bytes. Returns the status line or None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(f"POST /resources HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\n"
              f"Content-Length: {length}\r\n\r\n".encode())
    sent = 0
    try:
        for chunk in body:
            if close_after is not None and sent + len(chunk) > close_after:
                chunk = chunk[:close_after - sent]
            s.sendall(chunk)
            sent += len(chunk)
            if pace:
                pace(sent)
            if close_after is not None and sent >= close_after:
                s.close()
                return None
        return s.recv(4096).split(b"\r\n", 1)[0].decode()
    except OSError:
        return None
    finally:
        s.close()


def chunks_of(path, size=1 << 16):
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(size), b""):
            yield block


def assert_nothing_left(s3, bucket, before, timeout=30):
    wait_until(lambda: nothing_new(s3, bucket, before) and no_multipart_uploads(s3, bucket), timeout=timeout,
               message="no row, no object, no multipart upload left")


def assert_next_upload_works(resource_url):
    data = make_mp3(seconds=1.0, title="After", freq=777)
    r = requests.post(f"{resource_url}/resources", data=data, headers=MP3, timeout=30)
    assert r.status_code == 200, r.text
    assert requests.get(f"{resource_url}/resources/{r.json()['id']}", timeout=10).content == data


def test_a_client_that_goes_away_halfway_leaves_nothing(stack_up, s3):
    path, _ = long_mp3_file(20, title="Halfway")
    size = os.path.getsize(path)
    bucket = staging_bucket()
    before = snapshot(s3, bucket)
    assert raw_upload(PORTS["resource"], size, chunks_of(path), close_after=size // 2) is None
    # the service may notice the closed connection only at its idle timeout (HTTP_IDLE_TIMEOUT,
    # 60 s: seen when the close comes while the connection is suspended on a full ring)
    assert_nothing_left(s3, bucket, before, timeout=90)
    assert_next_upload_works(f"http://127.0.0.1:{PORTS['resource']}")


def test_not_an_mp3_after_5_mb_is_400_and_leaves_nothing(stack_up, s3):
    # a 5 MB ID3v2 tag (padding), then no audio at all: only past the tag is it clear
    body = _id3v23("Fake", "Nobody", "None", "2000", pad=5_000_000) + os.urandom(10_000_000)
    bucket = staging_bucket()
    before = snapshot(s3, bucket)
    r = requests.post(f"http://127.0.0.1:{PORTS['resource']}/resources", data=body, headers=MP3, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["errorMessage"].startswith("Invalid MP3 file: ")
    assert_nothing_left(s3, bucket, before)
    assert_next_upload_works(f"http://127.0.0.1:{PORTS['resource']}")


def test_the_store_killed_mid_upload_leaves_nothing(stack_up, stack, s3):
    path, _ = long_mp3_file(30, title="Store Dies")
    size = os.path.getsize(path)
    bucket = staging_bucket()
    before = snapshot(s3, bucket)
    killed = threading.Event()

    def pace(sent):
        if sent > size // 3 and not killed.is_set():
            killed.set()
            stack.kill("s3")

    try:
        status = raw_upload(PORTS["resource"], size, chunks_of(path), pace=pace)
        assert status is None or " 503 " in status or " 507 " in status, status
    finally:
        stack.start("s3")
    assert_nothing_left(s3, bucket, before, timeout=90)  # the janitor aborts what the dead store kept
    assert_next_upload_works(f"http://127.0.0.1:{PORTS['resource']}")


def test_a_chunked_upload_streams_too(stack_up, s3):
    path, seconds = long_mp3_file(12, title="Chunked")

    def gen():
        yield from chunks_of(path, 1 << 20)

    r = requests.post(f"{GATEWAY}/resources", data=gen(), headers=MP3, timeout=120)  # Transfer-Encoding: chunked
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    assert db(f"SELECT sha256 FROM resources WHERE id={rid}") == sha256_of(path)
    h = hashlib.sha256(requests.get(f"{GATEWAY}/resources/{rid}", timeout=60).content).hexdigest()
    assert h == sha256_of(path)


def test_a_declared_length_over_the_limit_is_413_before_the_body(stack_up):
    limit = 1 << 30
    s = socket.create_connection(("127.0.0.1", PORTS["resource"]), timeout=10)
    s.sendall(f"POST /resources HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\n"
              f"Content-Length: {limit + 1}\r\n\r\n".encode())
    answer = s.recv(4096).decode(errors="replace")
    s.close()
    assert answer.startswith("HTTP/1.1 413 "), answer
    assert f'"errorMessage":"Request body is too large: maximum allowed is {limit} bytes"' in answer
