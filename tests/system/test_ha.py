"""High availability: two instances of every service behind the gateway (`make run`'s
default, FERMATA_REPLICAS=2), on a private stack (tests/system/privatestack.py).

* Short chaos: a steady mix of uploads, downloads and song reads through the gateway while
  each instance of each service is SIGKILLed and started again in turn, then every service
  gets a rolling restart (scripts/services.sh rolling-restart). A request that arrives while
  an instance is down must not fail: the gateway sends it to the other one. Only a request
  that was already inside the killed process when SIGKILL came may fail (its answer died with
  it; nginx does not resend a request whose body went out, so an upload is never stored
  twice); each failure must be one of those. During the rolling restarts nothing may fail.
  Afterwards every acknowledged upload is PERMANENT with its metadata and downloads
  byte-identical, nothing is stored twice, and no message went to a dead-letter queue.
  CHAOS_HA_SECONDS_DOWN / CHAOS_HA_RATE scale it; `make chaos` runs a longer one.
* With two instances each: the outbox relay publishes each upload once (rows are taken
  with FOR UPDATE SKIP LOCKED), each "processed" message moves a file once, the processors
  share the work without doing any twice, the janitor's retried song deletions end done.
* Graceful drain: SIGTERM turns /actuator/health/readiness OUT_OF_SERVICE, the instance
  stops accepting, and an upload in flight still completes.
"""
import collections
import concurrent.futures
import hashlib
import os
import random
import threading
import time

import pika
import pytest
import requests

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, SANITIZER_PATTERNS, wait_until
from mp3gen import make_mp3
from privatestack import PrivateRun, running
from test_chaos import _strip_id3v2, tagged

BUILD = os.environ.get("FERMATA_BUILD_DIR") or str(ROOT / "build" / "debug")
MP3 = {"Content-Type": "audio/mpeg"}
DOWN = float(os.environ.get("CHAOS_HA_SECONDS_DOWN", "2"))
RATE = float(os.environ.get("CHAOS_HA_RATE", "12"))  # requests per second, all kinds (a third uploads)
UPLOADS = int(os.environ.get("CHAOS_HA_UPLOADS", "0"))  # the schedule repeats until this many uploads
SERVICES = ("storage", "song", "resource", "processor")


@pytest.fixture(scope="module")
def ha():
    run = PrivateRun(ROOT, PRIVATE_PORT_BASE + 1000, BUILD, data_dir=RUN_DIR / "ha",
                     log_path=RUN_DIR / "ha-run.log", FERMATA_REPLICAS="2", FERMATA_DRAIN_DELAY="1s")
    yield from running(run, "song@2", SANITIZER_PATTERNS)


def instance_port(ha, name):
    svc, _, i = name.partition("@")
    return int(ha.env[f"{svc.upper()}_PORT"]) + 100 * (int(i or 1) - 1)


def metric(ha, name, value_name):
    text = requests.get(f"http://127.0.0.1:{instance_port(ha, name)}/actuator/prometheus", timeout=10).text
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(value_name))


class Load(threading.Thread):
    """Uploads, downloads and song reads at RATE per second, each timed."""

    def __init__(self, ha, tag):
        super().__init__(daemon=True)
        self.ha, self.tag = ha, tag
        self.halt = threading.Event()
        self.results = []  # (kind, start, end, ok, status or error, id)
        self.uploaded = {}  # id -> (bytes, meta)
        self.lock = threading.Lock()
        audio = _strip_id3v2(make_mp3(seconds=2.0, title="base", freq=550))
        self.audio = audio
        self.n = 0

    def one(self, kind):
        s = requests.Session()
        t0 = time.monotonic()
        rid = None
        try:
            if kind == "upload":
                with self.lock:
                    self.n += 1
                    i = self.n
                meta = {"name": f"HA {self.tag} #{i:05d}", "artist": f"Artist {i}", "album": f"HA {self.tag}",
                        "duration": "00:02", "year": str(1900 + i % 200)}
                data = tagged(self.audio, meta["name"], meta["artist"], meta["album"], meta["year"])
                r = s.post(f"{self.ha.gateway}/resources", data=data, headers=MP3, timeout=(5, 60))
                ok = r.status_code == 200
                if ok:
                    rid = r.json()["id"]
                    with self.lock:
                        self.uploaded[rid] = (data, meta)
            else:
                with self.lock:
                    known = list(self.uploaded.items())
                if not known:
                    return
                rid, (data, meta) = random.choice(known)
                if kind == "download":
                    r = s.get(f"{self.ha.gateway}/resources/{rid}", timeout=(5, 60))
                    ok = r.status_code == 200 and r.content == data
                else:
                    r = s.get(f"{self.ha.gateway}/songs/{rid}", timeout=(5, 60))
                    # the metadata may not be there yet (processing is asynchronous): 404 is fine
                    ok = r.status_code == 200 and r.json() == {"id": rid, **meta} or r.status_code == 404
            what = r.status_code
        except requests.RequestException as e:
            ok, what = False, type(e).__name__
        self.results.append((kind, t0, time.monotonic(), ok, what, rid))

    def run(self):
        kinds = ["upload", "download", "song"]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            k = 0
            t_start = time.monotonic()
            while not self.halt.is_set():
                ex.submit(self.one, kinds[k % 3])
                k += 1
                delay = t_start + k / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else 0.0


def test_short_chaos_kills_each_instance_then_rolling_restarts(ha):
    load = Load(ha, "%05x" % random.randrange(16**5))
    load.start()
    time.sleep(5)
    t_base = time.monotonic()
    kills = []  # (name, t)
    rollings = []  # (start, end)
    while True:
        for svc in SERVICES:
            for name in (f"{svc}@1", f"{svc}@2"):
                t = time.monotonic()
                ha.services("kill", name)
                kills.append((name, t))
                time.sleep(DOWN)
                ha.services("start", name)
                # the gateway marks a dead instance failed for 1 s (fail_timeout) after each
                # failure; the next kill comes once it sends this one requests again
                time.sleep(2.0)
        t0 = time.monotonic()
        for svc in SERVICES:
            ha.services("rolling-restart", svc, timeout=300)
        rollings.append((t0, time.monotonic()))
        if load.n >= UPLOADS:
            break
    t_end = time.monotonic()
    t_rolling = rollings[0][0]
    time.sleep(2)
    load.halt.set()
    load.join(timeout=120)

    res = load.results
    failed = [r for r in res if not r[3]]
    unexplained = []
    for r in failed:
        kind, a, b = r[0], r[1], r[2]
        in_flight_at_kill = any(a - 0.05 <= t <= b + 0.05 for _, t in kills)
        if not in_flight_at_kill:
            unexplained.append(r)
    base = [r[2] - r[1] for r in res if r[3] and r[1] < t_base]
    during = [r[2] - r[1] for r in res if r[3] and t_base <= r[1] < t_end]
    by_kind = collections.Counter((r[0], r[3]) for r in res)
    print(f"\nHA chaos: {len(res)} requests ({dict(by_kind)}); failed {len(failed)}, of them in flight at a "
          f"SIGKILL {len(failed) - len(unexplained)}; p99 before {p99(base) * 1000:.0f} ms, during "
          f"{p99(during) * 1000:.0f} ms; kills {[k for k, _ in kills]}")
    assert not unexplained, f"requests that failed without being in flight at a kill: {unexplained[:20]}"
    during_rolling = [r for r in failed if any(a <= r[1] <= b for a, b in rollings)]
    assert not during_rolling, f"failures during the rolling restarts: {during_rolling}"

    # every acknowledged upload: PERMANENT, its metadata, its bytes; nothing twice
    ids = sorted(load.uploaded)
    assert ids, "no upload succeeded"
    wait_until(lambda: not [i for i in ids if ha.psql("RESOURCE_DB_URL",
                                                      f"SELECT state FROM resources WHERE id={i}") != ["PERMANENT"]],
               timeout=180, interval=1.0, message="every acknowledged upload PERMANENT")
    for rid, (data, meta) in load.uploaded.items():
        assert ha.get(f"/songs/{rid}").json() == {"id": rid, **meta}
        assert ha.get(f"/resources/{rid}").content == data
    shas = ",".join(f"'{hashlib.sha256(d).hexdigest()}'" for d, _ in load.uploaded.values())
    dups = ha.psql("RESOURCE_DB_URL", f"SELECT sha256 FROM resources WHERE sha256 IN ({shas}) GROUP BY sha256 "
                                      "HAVING count(*) > 1")
    assert not dups, f"stored twice: {dups}"
    conn = pika.BlockingConnection(pika.URLParameters(ha.stack_env()["AMQP_URL"]))
    try:
        ch = conn.channel()
        for q in ("resource.uploaded.dlq", "resource.processed.dlq"):
            assert ch.queue_declare(q, passive=True).method.message_count == 0, q
    finally:
        conn.close()


def test_two_of_each_share_the_work_and_do_nothing_twice(ha):
    """The broker stopped, 30 uploads wait in the outbox; both Resource Service instances
    relay when it is back, both processors process, both instances move files."""
    before_processed = sum(metric(ha, n, "processor_messages_processed_total") for n in ("processor", "processor@2"))
    before_conflicts = sum(metric(ha, n, 'processor_http_client_requests_seconds_count{peer="song",outcome="4xx"}')
                           for n in ("processor", "processor@2"))
    ha.stack("stop", "rabbitmq")
    audio = _strip_id3v2(make_mp3(seconds=1.0, title="base", freq=600))
    tag = "%05x" % random.randrange(16**5)
    ids = []
    try:
        for i in range(30):
            data = tagged(audio, f"Twice {tag} {i}", "T", "T", "2000")
            r = ha.post("/resources", data=data, headers=MP3)
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
    finally:
        ha.stack("start", "rabbitmq")
    id_list = ",".join(map(str, ids))
    wait_until(lambda: ha.psql("RESOURCE_DB_URL", f"SELECT count(*) FROM resources WHERE id IN ({id_list}) "
                                                  "AND state='PERMANENT'") == ["30"],
               timeout=120, interval=1.0, message="all 30 PERMANENT")
    processed = sum(metric(ha, n, "processor_messages_processed_total") for n in ("processor", "processor@2"))
    conflicts = sum(metric(ha, n, 'processor_http_client_requests_seconds_count{peer="song",outcome="4xx"}')
                    for n in ("processor", "processor@2"))
    assert processed - before_processed == 30, "an upload was relayed or processed more than once"
    assert conflicts == before_conflicts, "a song was posted twice"
    moved = collections.Counter()
    logs = ha.data_dir() / "logs"
    for name in ("resource", "resource@2"):
        for line in (logs / f"{name}.log").read_text(errors="replace").splitlines():
            if 'msg="resource moved"' in line:
                moved[line.split(" id=")[1].split()[0]] += 1
    twice = {i: n for i, n in moved.items() if n > 1 and int(i) in ids}
    assert not twice, f"moved more than once: {twice}"
    assert {int(i) for i in moved} >= set(ids)

    # the janitor's retried song deletions, with two janitors
    ha.services("stop", "song")
    try:
        r = ha.delete("/resources?id=" + ",".join(map(str, ids[:10])))
        assert r.status_code == 200 and r.json()["ids"] == ids[:10]
    finally:
        ha.services("start", "song")
    wait_until(lambda: all(ha.get(f"/songs/{i}").status_code == 404 for i in ids[:10]), timeout=120, interval=1.0,
               message="the pending song deletions done")
    assert all(ha.get(f"/songs/{i}").status_code == 200 for i in ids[10:])


def test_sigterm_drains_an_upload_in_flight(ha):
    """An upload trickling in when its instance gets SIGTERM still completes; meanwhile the
    instance says OUT_OF_SERVICE on its readiness endpoint."""
    port = instance_port(ha, "resource@2")
    url = f"http://127.0.0.1:{port}"
    assert requests.get(url + "/actuator/health/readiness", timeout=5).json() == {"status": "UP"}
    data = make_mp3(seconds=20.0, title="Drained", artist="D", album="D", year="2010")
    chunks = [data[i:i + 16384] for i in range(0, len(data), 16384)]
    result = {}

    def slow_body():
        for c in chunks:
            yield c
            time.sleep(3.0 / len(chunks))

    def upload():
        result["r"] = requests.post(url + "/resources", data=slow_body(), headers=MP3, timeout=60)

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(0.5)
    pid = int((ha.data_dir() / "pids" / "resource@2.pid").read_text())
    os.kill(pid, 15)
    time.sleep(0.3)
    ready = requests.get(url + "/actuator/health/readiness", timeout=5)
    assert ready.status_code == 503 and ready.json() == {"status": "OUT_OF_SERVICE"}
    t.join(timeout=60)
    assert result["r"].status_code == 200, result["r"].text
    rid = result["r"].json()["id"]
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=60, message="the instance exiting")
    ha.services("start", "resource@2")
    assert ha.get(f"/resources/{rid}").content == data
