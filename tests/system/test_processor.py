"""Resource Processor (services/processor) against the real broker and Song Service, with a
fake Resource Service.

The Resource Service is replaced by a small http.server in this process (FakeResources):
it serves generated MP3 bytes at GET /resources/{id}, by Range as the Resource Service does
(206 with Content-Range, 416 past the end), 404 for ids it does not know, and can be told to
answer slowly, with an error per id or on chosen GETs of an id, or to forget an id after some
requests. It also records each request's X-Request-Id and Range, and how many requests were
in flight at once.

The processor binary is started directly with its own environment (RESOURCE_SERVICE_URL
pointing at the fake, short retry delays, a free port) rather than through
scripts/services.sh, so these tests never change what other tests get from `services`.
Its log goes to $FERMATA_DATA_DIR/logs/processor-test.log and is searched for sanitizer
reports after every test, as conftest does for the managed services.

Messages are published with pika to exchange "fermata" / key "resource.uploaded" (the
topology of lib/msgs). "processed" messages are observed on a private exclusive queue bound
to the same key, so a Resource Service consuming resource.processed in the same session
cannot steal them from the test. Dead letters are read from resource.uploaded.dlq; other
tests' dead letters found there are left in place.

Needs: AMQP_URL (scripts/stack.sh env), the Song Service (conftest `services`), sox, lame,
id3v2, and fermata-processor in $FERMATA_BUILD_DIR (default build/debug).
"""
import http.server
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pika
import pytest
import requests

from conftest import RUN_DIR, SANITIZER_PATTERNS, wait_until
from mp3gen import make_long_mp3, mmss

ROOT = pathlib.Path(os.environ.get("FERMATA_ROOT") or pathlib.Path(__file__).resolve().parents[2])
BUILD = pathlib.Path(os.environ.get("FERMATA_BUILD_DIR", ROOT / "build" / "debug"))
BINARY = BUILD / "services" / "processor" / "fermata-processor"
EXCHANGE = "fermata"
UPLOADED = "resource.uploaded"
PROCESSED = "resource.processed"
DLQ = UPLOADED + ".dlq"


def amqp_url():
    url = os.environ.get("AMQP_URL")
    if not url:
        pytest.fail("AMQP_URL is not set: export the output of `scripts/stack.sh env`")
    return url


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- MP3 files

def make_mp3(directory: pathlib.Path, name: str, title: str, artist: str, album: str,
             year: str, seconds: int = 2) -> bytes:
    wav = directory / f"{name}.wav"
    mp3 = directory / f"{name}.mp3"
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", str(wav), "synth", str(seconds),
                    "sine", "440"], check=True, capture_output=True)
    subprocess.run(["lame", "--quiet", "-b", "64", str(wav), str(mp3)], check=True,
                   capture_output=True)
    subprocess.run(["id3v2", "-t", title, "-a", artist, "-A", album, "-y", year, str(mp3)],
                   check=True, capture_output=True)
    return mp3.read_bytes()


@pytest.fixture(scope="module")
def mp3s(tmp_path_factory):
    for tool in ("sox", "lame", "id3v2"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (scripts/deps.sh)")
    d = tmp_path_factory.mktemp("proc-mp3")
    return {
        "a": (make_mp3(d, "a", "Proc Title A", "Proc Artist", "Proc Album", "1999", 2),
              {"name": "Proc Title A", "artist": "Proc Artist", "album": "Proc Album",
               "duration": "00:02", "year": "1999"}),
        "b": (make_mp3(d, "b", "Second Song", "Other Artist", "Other Album", "2021", 3),
              {"name": "Second Song", "artist": "Other Artist", "album": "Other Album",
               "duration": "00:03", "year": "2021"}),
    }


# ---------------------------------------------------------------- fake Resource Service

class FakeResources:
    """GET /resources/{id}: the bytes registered for id, else 404 in the contract's shape."""

    def __init__(self):
        self.items = {}           # id -> bytes
        self.status = {}          # id -> forced status (e.g. 503)
        self.delay = 0.0          # seconds before each answer
        self.request_ids = {}     # id -> last X-Request-Id
        self.traceparents = {}    # id -> last traceparent
        self.hits = {}            # id -> number of GETs
        self.ranges = {}          # id -> the Range headers asked, in order
        self.forget_after = {}    # id -> GETs after which the id is unknown (deleted)
        self.fail_hits = {}       # id -> {GET number: status} answered instead of the bytes
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                m = re.fullmatch(r"/resources/(\d+)", self.path)
                rid = int(m.group(1)) if m else None
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    if rid is not None:
                        fake.hits[rid] = fake.hits.get(rid, 0) + 1
                        fake.request_ids[rid] = self.headers.get("X-Request-Id")
                        fake.ranges.setdefault(rid, []).append(self.headers.get("Range"))
                        if fake.hits[rid] > fake.forget_after.get(rid, float("inf")):
                            fake.items.pop(rid, None)
                        fake.traceparents[rid] = self.headers.get("traceparent")
                try:
                    if fake.delay:
                        time.sleep(fake.delay)
                    status = fake.status.get(rid) or fake.fail_hits.get(rid, {}).get(fake.hits.get(rid))
                    body = fake.items.get(rid)
                    if status:
                        self._json(status, {"errorMessage": "forced", "errorCode": str(status)})
                    elif body is None:
                        self._json(404, {"errorMessage": f"Resource with ID={rid} not found",
                                         "errorCode": "404"})
                    else:
                        self._bytes(body)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _bytes(self, body):
                m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range") or "")
                first, last, status = 0, len(body) - 1, 200
                if m:
                    first, last, status = int(m.group(1)), min(int(m.group(2)), len(body) - 1), 206
                    if first >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(status)
                self.send_header("Content-Type", "audio/mpeg")
                if m:
                    self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
                self.send_header("Content-Length", str(last - first + 1))
                self.end_headers()
                self.wfile.write(memoryview(body)[first:last + 1])

            def _json(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeResources()
    yield f
    f.close()


# ---------------------------------------------------------------- the processor

class Processor:
    LOG = RUN_DIR / "logs" / "processor-test.log"

    def __init__(self, resource_url, song_url, **overrides):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update({
            "SERVER_PORT": str(self.port),
            "AMQP_URL": amqp_url(),
            "RESOURCE_SERVICE_URL": resource_url,
            "SONG_SERVICE_URL": song_url,
            "PROCESSOR_CONCURRENCY": "4",
            "PROCESSOR_MAX_ATTEMPTS": "40",
            "PROCESSOR_RETRY_INITIAL": "200ms",
            "PROCESSOR_RETRY_MAX": "1s",
            "PROCESSOR_HTTP_ATTEMPTS": "2",
            "HTTP_TIMEOUT": "3s",
            "LOG_LEVEL": "info",
        })
        self.env.update({k: str(v) for k, v in overrides.items()})
        self.proc = None
        self.log_offset = 0

    def start(self):
        if not BINARY.exists():
            pytest.fail(f"fermata-processor not built at {BINARY}")
        self.LOG.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.LOG.stat().st_size if self.LOG.exists() else 0
        with open(self.LOG, "ab") as log:
            self.proc = subprocess.Popen([str(BINARY)], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        wait_until(lambda: self.health().get("components", {}).get("broker", {})
                   .get("status") == "UP", timeout=30, message="processor consuming")
        return self

    def health(self):
        assert self.proc.poll() is None, "processor exited:\n" + self.log()
        return requests.get(self.url + "/actuator/health", timeout=5).json()

    def metrics(self):
        text = requests.get(self.url + "/actuator/prometheus", timeout=5).text
        out = {}
        for line in text.splitlines():
            m = re.match(r"^(processor_(?:messages_\w+|fetched_bytes)_total) (\d+)$", line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def log(self):
        if not self.LOG.exists():
            return ""
        with open(self.LOG, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def stop(self, timeout=30):
        """SIGTERM; returns the exit code (asserting it came in time)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("processor ignored SIGTERM:\n" + self.log()[-3000:])

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def peak_rss(self):
        """VmHWM: the most resident memory the process has had, in bytes."""
        return vmhwm(self.proc.pid)


def vmhwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.fixture
def start_processor(services, fake):
    """Factory: start_processor(**env) starts a processor; all are stopped (SIGTERM, exit 0)
    and their logs checked for sanitizer reports at teardown."""
    song = services["song"].ensure()
    # A processor started through services.sh by another test would compete for
    # resource.uploaded (and fetch from the real Resource Service): only ours may consume.
    services["processor"].stop()
    started = []

    def start(**overrides):
        p = Processor(fake.url, song.url, **overrides).start()
        started.append(p)
        return p

    yield start
    problems = []
    for p in started:
        rc = p.stop()
        if rc not in (0, -9):  # -9: a test SIGKILLed it on purpose
            problems.append(f"exit code {rc}")
        if SANITIZER_PATTERNS.search(p.log()):
            problems.append("sanitizer report:\n" + p.log()[-5000:])
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- broker helpers

class pika_channel:
    def __enter__(self):
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
        return self.conn.channel()

    def __exit__(self, *exc):
        self.conn.close()


def publish(body, headers=None):
    if isinstance(body, dict):
        body = json.dumps(body)
    with pika_channel() as ch:
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, UPLOADED, body,
                         pika.BasicProperties(delivery_mode=2, headers=headers,
                                              content_type="application/json"),
                         mandatory=True)


def publish_ids(ids):
    with pika_channel() as ch:
        ch.confirm_delivery()
        for i in ids:
            ch.basic_publish(EXCHANGE, UPLOADED, json.dumps({"resourceId": i}),
                             pika.BasicProperties(delivery_mode=2), mandatory=True)


class ProcessedWatcher:
    """An exclusive queue bound to fermata/resource.processed, read in a thread."""

    def __init__(self):
        self.bodies = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(15), "watcher did not start"

    def _run(self):
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(q, EXCHANGE, PROCESSED)
        self.ready.set()
        while not self.stop.is_set():
            method, props, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                conn.sleep(0.05)
                continue
            self.bodies.append((body, props))
        conn.close()

    def ids(self):
        return [rid_of(b) for b, _ in self.bodies]

    def close(self):
        self.stop.set()
        self.thread.join(10)


def rid_of(body):
    """resourceId of a message body, None when the body is not such a message (the DLQ also
    holds garbage, ours and maybe other tests')."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc.get("resourceId") if isinstance(doc, dict) else None


def take_dead_letters(match):
    """Acks and returns (body, headers) of dead letters for which match(body) is true; leaves
    the others in the DLQ (unacked gets are requeued when the channel closes)."""
    found = []
    with pika_channel() as ch:
        while True:
            method, props, body = ch.basic_get(DLQ, auto_ack=False)
            if method is None:
                break
            if match(body):
                found.append((body, props.headers or {}))
                ch.basic_ack(method.delivery_tag)
    return found


def song_of(song_svc, rid):
    r = song_svc.get(f"/songs/{rid}")
    return r.json() if r.status_code == 200 else None


def wait_songs(song_svc, ids, timeout=60):
    wait_until(lambda: all(song_of(song_svc, i) for i in ids), timeout=timeout,
               message=f"songs for {len(ids)} ids")


# ---------------------------------------------------------------- tests

def test_uploaded_becomes_song_and_processed(start_processor, fake, mp3s, services, new_id):
    proc = start_processor()
    watcher = ProcessedWatcher()
    try:
        data, expected = mp3s["a"]
        rid = new_id()
        fake.items[rid] = data
        request_id = "req-" + uuid.uuid4().hex[:12]
        trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        publish({"resourceId": rid}, headers={"x-request-id": request_id, "traceparent": f"00-{trace_id}-{parent}-00"})
        song = services["song"]
        got = wait_until(lambda: song_of(song, rid), timeout=30, message="song metadata")
        assert got == {"id": rid, **expected}
        wait_until(lambda: rid in watcher.ids(), timeout=15, message="processed message")
        body, props = next((b, p) for b, p in watcher.bodies if rid_of(b) == rid)
        assert json.loads(body) == {"resourceId": rid}
        assert props.delivery_mode == 2
        assert (props.headers or {}).get("x-request-id") == request_id
        assert fake.request_ids[rid] == request_id   # traced through the HTTP call too
        # the trace continues (not sampled, as the message said) through the call and the
        # processed message, each with a span of its own
        for tp in (fake.traceparents[rid], (props.headers or {}).get("traceparent")):
            version, tid, span, flags = tp.split("-")
            assert (version, tid, flags) == ("00", trace_id, "00") and span != parent, tp
        m = proc.metrics()
        assert m["processor_messages_processed_total"] >= 1
        text = requests.get(proc.url + "/actuator/prometheus", timeout=5).text
        assert "http_server_requests_seconds_count" in text
        assert re.search(r'processor_http_client_requests_seconds_count\{peer="song",'
                         r'outcome="2xx"\} [1-9]', text), text
        h = proc.health()
        assert h["status"] == "UP"
        assert h["components"]["pipeline"]["details"]["processed"] >= 1
        assert "lastSuccess" in h["components"]["pipeline"]["details"]
    finally:
        watcher.close()


MIB = 1024 * 1024


def test_large_file_read_by_ranges_in_bounded_memory(start_processor, fake, services, new_id):
    """An 80 MB, 85-minute MP3 goes through the read window by ranged GETs: the processor's
    peak RSS stays under 64 MiB, the metadata is exact (tags, duration to the frame), and
    it fetched the file once, give or take a few KiB (the MP3 check rides along the frame
    scan, the look at the tail keeps the window)."""
    data, seconds = make_long_mp3(85, title="Ninety Minutes", artist="The Long Players",
                                  album="Extended", year="2011")
    proc = start_processor()
    before = proc.metrics().get("processor_fetched_bytes_total", 0)
    rid = new_id()
    fake.items[rid] = data
    publish({"resourceId": rid})
    song = services["song"]
    got = wait_until(lambda: song_of(song, rid), timeout=180, message="song metadata of the long file")
    assert got == {"id": rid, "name": "Ninety Minutes", "artist": "The Long Players", "album": "Extended",
                   "year": "2011", "duration": mmss(seconds)}
    peak = proc.peak_rss()
    fetched = proc.metrics()["processor_fetched_bytes_total"] - before
    ranges = fake.ranges[rid]
    print(f"file {len(data)} bytes: fetched {fetched} ({fetched / len(data):.3f}x) in {len(ranges)} "
          f"GETs; processor peak RSS {peak / MIB:.1f} MiB")
    assert all(r and r.startswith("bytes=") for r in ranges), ranges[:5]
    assert len(data) <= fetched <= len(data) + 256 * 1024  # the tail and one short window twice
    assert peak < 64 * MIB, f"peak RSS {peak / MIB:.1f} MiB"


def test_resource_deleted_while_read_is_gone(start_processor, fake, services, new_id):
    """A 404 on a later window (deleted while processed) is "gone": acked, no song, no
    dead letter, and the reading stops there."""
    data, _ = make_long_mp3(3)
    proc = start_processor(PROCESSOR_FETCH_WINDOW_BYTES=256 * 1024)
    rid = new_id()
    fake.items[rid] = data
    fake.forget_after[rid] = 3
    publish({"resourceId": rid})
    wait_until(lambda: proc.metrics().get("processor_messages_gone_total", 0) >= 1, timeout=30,
               message="message acked as gone")
    assert fake.hits[rid] == 4
    assert song_of(services["song"], rid) is None
    assert take_dead_letters(lambda body: rid_of(body) == rid) == []


def test_5xx_on_a_later_window_is_retried(start_processor, fake, services, new_id):
    """503s on a later window outlast the in-place tries (2): the delivery goes to the
    delay queue and the next one reads the file again from the start, to the end."""
    data, seconds = make_long_mp3(3, title="Retried", artist="Again", album="Later", year="2003")
    proc = start_processor(PROCESSOR_FETCH_WINDOW_BYTES=256 * 1024)
    rid = new_id()
    fake.items[rid] = data
    fake.fail_hits[rid] = {3: 503, 4: 503}
    publish({"resourceId": rid})
    got = wait_until(lambda: song_of(services["song"], rid), timeout=30, message="song after the retry")
    assert got == {"id": rid, "name": "Retried", "artist": "Again", "album": "Later", "year": "2003",
                   "duration": mmss(seconds)}
    assert proc.metrics()["processor_messages_retried_total"] >= 1
    assert fake.ranges[rid][4] == "bytes=0-262143"  # the redelivery starts over
    assert take_dead_letters(lambda body: rid_of(body) == rid) == []


def test_redelivery_is_idempotent(start_processor, fake, mp3s, services, new_id):
    """The same upload message twice (a lost ack) gives one song and two processed."""
    start_processor()
    watcher = ProcessedWatcher()
    try:
        data, expected = mp3s["b"]
        rid = new_id()
        fake.items[rid] = data
        publish_ids([rid, rid])
        wait_until(lambda: watcher.ids().count(rid) == 2, timeout=30, message="two processed")
        assert song_of(services["song"], rid) == {"id": rid, **expected}
    finally:
        watcher.close()


def test_song_service_down_then_back(start_processor, fake, mp3s, services, new_id):
    song = services["song"]
    proc = start_processor()
    watcher = ProcessedWatcher()
    try:
        ids = [new_id() for _ in range(6)]
        for i in ids:
            fake.items[i] = mp3s["a"][0]
        song.stop()
        try:
            publish_ids(ids)
            wait_until(lambda: proc.metrics().get("processor_messages_retried_total", 0) >= 3,
                       timeout=30, message="retries while the Song Service is down")
            time.sleep(2)
        finally:
            song.start()
        wait_songs(song, ids, timeout=60)
        wait_until(lambda: set(ids) <= set(watcher.ids()), timeout=30, message="processed")
        for i in ids:
            assert song_of(song, i) == {"id": i, **mp3s["a"][1]}
        assert not take_dead_letters(lambda b: rid_of(b) in ids)
        assert "retry later" in proc.log()
    finally:
        watcher.close()


def test_sigkill_mid_batch_then_restart(start_processor, fake, mp3s, services, new_id):
    song = services["song"]
    fake.delay = 0.3  # keep several messages in flight when the kill lands
    proc = start_processor()
    ids = [new_id() for _ in range(20)]
    for i in ids:
        fake.items[i] = mp3s["b"][0]
    publish_ids(ids)
    wait_until(lambda: sum(1 for h in fake.hits.values() if h) >= 6, timeout=30,
               message="some messages started")
    proc.kill()
    done_before = sum(1 for i in ids if song_of(song, i))
    assert done_before < len(ids), "all done before the kill: nothing was in flight"
    start_processor()
    wait_songs(song, ids, timeout=90)
    for i in ids:
        assert song_of(song, i) == {"id": i, **mp3s["b"][1]}


def test_poison_messages_do_not_block_others(start_processor, fake, mp3s, services, new_id):
    song = services["song"]
    proc = start_processor()
    good = [new_id() for _ in range(4)]
    unknown, not_mp3 = new_id(), new_id()
    for i in good:
        fake.items[i] = mp3s["a"][0]
    fake.items[not_mp3] = os.urandom(20000)
    garbage = "garbage-" + uuid.uuid4().hex
    publish(garbage)
    publish({"resourceId": unknown})
    publish({"resourceId": not_mp3})
    publish({"resourceId": "7"})
    publish_ids(good)
    wait_songs(song, good, timeout=30)

    def ours(body):
        return body.decode(errors="replace") == garbage or rid_of(body) in (not_mp3, unknown, "7")

    letters = []
    wait_until(lambda: letters.extend(take_dead_letters(ours)) or len(letters) >= 3,
               timeout=30, message="three dead letters")
    by_body = {b.decode(errors="replace"): h for b, h in letters}
    assert set(by_body) == {garbage, json.dumps({"resourceId": not_mp3}),
                            json.dumps({"resourceId": "7"})}, by_body
    assert by_body[garbage]["x-reason"].startswith("bad message: not JSON")
    assert by_body[json.dumps({"resourceId": "7"})]["x-reason"] == \
        "bad message: resourceId: not an integer"
    assert by_body[json.dumps({"resourceId": not_mp3})]["x-reason"].startswith("not an MP3")
    # the unknown id (404) is acknowledged and logged, not dead-lettered
    assert fake.hits.get(unknown) == 1
    wait_until(lambda: re.search(rf"resource_id={unknown} outcome=\"gone", proc.log()),
               timeout=10, message="log line for the deleted resource")
    assert song_of(song, unknown) is None and song_of(song, not_mp3) is None
    m = proc.metrics()
    assert m["processor_messages_gone_total"] >= 1
    assert m["processor_messages_dead_lettered_total"] >= 3


def test_attempts_exhausted_go_to_dlq_with_reason(start_processor, fake, mp3s, new_id):
    proc = start_processor(PROCESSOR_MAX_ATTEMPTS=3, PROCESSOR_RETRY_INITIAL="100ms",
                           PROCESSOR_RETRY_MAX="300ms", PROCESSOR_HTTP_ATTEMPTS=1)
    rid = new_id()
    fake.items[rid] = mp3s["a"][0]
    fake.status[rid] = 503
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    publish({"resourceId": rid}, headers={"traceparent": traceparent})
    letters = []
    wait_until(lambda: letters.extend(
        take_dead_letters(lambda b: rid_of(b) == rid)) or letters,
        timeout=30, message="dead letter after max attempts")
    headers = letters[0][1]
    assert headers["x-reason"] == "max attempts (3): GET resource: HTTP 503: forced"
    assert headers["x-attempt"] == 3
    assert headers["traceparent"] == traceparent  # retries and the dead letter stay in the trace
    assert fake.hits[rid] == 3
    m = proc.metrics()
    assert m["processor_messages_retried_total"] >= 2
    assert m["processor_messages_dead_lettered_total"] >= 1


def test_twenty_concurrent_messages(start_processor, fake, mp3s, services, new_id):
    song = services["song"]
    fake.delay = 0.2
    start_processor(PROCESSOR_CONCURRENCY=4)
    watcher = ProcessedWatcher()
    try:
        ids = [new_id() for _ in range(20)]
        for i in ids:
            fake.items[i] = mp3s["a"][0] if i % 2 else mp3s["b"][0]
        t0 = time.monotonic()
        publish_ids(ids)
        wait_songs(song, ids, timeout=60)
        elapsed = time.monotonic() - t0
        wait_until(lambda: set(ids) <= set(watcher.ids()), timeout=30, message="processed")
        for i in ids:
            assert song_of(song, i) == {"id": i, **(mp3s["a"][1] if i % 2 else mp3s["b"][1])}
        assert fake.max_in_flight >= 3, "messages were not handled concurrently"
        assert elapsed < 20 * 0.2, f"20 x 0.2 s took {elapsed:.1f}s: not concurrent"
    finally:
        watcher.close()


def test_sigterm_finishes_in_flight(start_processor, fake, mp3s, services, new_id):
    song = services["song"]
    fake.delay = 1.0
    proc = start_processor(PROCESSOR_CONCURRENCY=2)
    ids = [new_id() for _ in range(2)]
    for i in ids:
        fake.items[i] = mp3s["a"][0]
    publish_ids(ids)
    wait_until(lambda: fake.in_flight == 2, timeout=15, message="two in flight")
    assert proc.stop(timeout=20) == 0
    # both deliveries were finished before the exit, not abandoned
    for i in ids:
        assert song_of(song, i) == {"id": i, **mp3s["a"][1]}
    assert "stopped" in proc.log()


def test_bad_configuration_refuses_to_start(fake):
    env = dict(os.environ, PROCESSOR_CONCURRENCY="0", SERVER_PORT=str(free_port()))
    r = subprocess.run([str(BINARY)], env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert "PROCESSOR_CONCURRENCY" in r.stderr


def test_broker_restart_reconnects(start_processor, fake, mp3s, services, stack, new_id):
    """After the broker is stopped and started again the consumers reconnect, redeclare the
    topology, and the processed publisher reconnects too."""
    song = services["song"]
    proc = start_processor()
    stack.stop("rabbitmq")
    try:
        wait_until(lambda: proc.health()["components"]["broker"]["status"] == "DOWN",
                   timeout=20, message="broker DOWN in health")
    finally:
        stack.start("rabbitmq")
    wait_until(lambda: proc.health()["components"]["broker"]["status"] == "UP", timeout=60,
               message="consumers reconnected")
    watcher = ProcessedWatcher()
    try:
        rid = new_id()
        fake.items[rid] = mp3s["b"][0]
        publish({"resourceId": rid})
        wait_until(lambda: song_of(song, rid), timeout=30, message="song after restart")
        wait_until(lambda: rid in watcher.ids(), timeout=30, message="processed after restart")
    finally:
        watcher.close()
