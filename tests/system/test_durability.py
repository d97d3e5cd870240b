"""Durable by default: what a client got a 200 for survives the stack's restarts.

A private stack (`scripts/run.sh`, what `make run` runs, on its own ports and data
directory; tests/system/privatestack.py) takes 200 uploads of mixed sizes in three states
at once: processed and PERMANENT, waiting in the broker (processor stopped), and waiting in
the outbox (broker stopped); more uploads run while the stop comes. Then:

1. Ctrl-C (SIGINT to run.sh's process group, as a terminal sends it), and `run.sh` again;
2. more uploads the same way, then SIGKILL of every process of the stack at once (run.sh,
   the services, PostgreSQL, RabbitMQ, the object store, nginx), as close to a power loss
   as a test on a running machine gets, and `run.sh` again.

After each restart every acknowledged upload must download byte-identical, reach
PERMANENT, and have exactly its own metadata; nothing may be duplicated (one resource and
one song per file sent), no message may end in a dead-letter queue, and no object may stay
behind in the STAGING bucket. Uploads cut off by the stop itself may or may not have been
stored (their answer was lost); those that were must be complete and processed too.

What a SIGKILL cannot show: the kernel's page cache survives it. PostgreSQL (fsync on) and
RabbitMQ (confirms after persisting) flush to disk before they acknowledge; versitygw
v1.8.0 does not fsync object files (docs/DEVELOPING.md says what that means for a real
power cut).
"""
import collections
import concurrent.futures
import hashlib
import os
import random
import subprocess
import threading
import time

import pytest
import requests

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, SANITIZER_PATTERNS
from mp3gen import make_mp3
from privatestack import PrivateRun
from test_chaos import _strip_id3v2, tagged

BUILD = os.environ.get("FERMATA_BUILD_DIR") or str(ROOT / "build" / "debug")
MP3 = {"Content-Type": "audio/mpeg"}


def make_files(n, run, seed):
    """n MP3s with distinct tags over bases of 1 s to 3 min (16 KB to 3 MB)."""
    bases = [(1.0, 440, "00:01"), (4.0, 523, "00:04"), (30.0, 659, "00:30"), (180.0, 330, "03:00")]
    audio = [(_strip_id3v2(make_mp3(seconds=s, title="base", freq=f)), d) for s, f, d in bases]
    rnd = random.Random(seed)
    files = []
    for i in range(n):
        frames, duration = audio[rnd.choices(range(len(audio)), weights=[5, 5, 3, 1])[0]]
        meta = {"name": f"Durable {run} #{i:04d}", "artist": f"Artist {rnd.randint(1, 10**6)}",
                "album": f"Album {run} {i % 23}", "duration": duration, "year": str(rnd.randint(1900, 2099))}
        files.append((tagged(frames, meta["name"], meta["artist"], meta["album"], meta["year"]), meta))
    return files


def upload_all(stack, files, indexes, threads=4):
    """Uploads files[i] for i in indexes; returns {i: id} of the 200s and {i: what} of the rest."""
    ok, failed = {}, {}
    lock = threading.Lock()
    todo = iter(indexes)

    def worker():
        s = requests.Session()
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                r = s.post(f"{stack.gateway}/resources", data=files[i][0], headers=MP3, timeout=(5, 60))
            except requests.RequestException as e:
                failed[i] = type(e).__name__
                s = requests.Session()
                continue
            if r.status_code == 200:
                ok[i] = r.json()["id"]
            else:
                failed[i] = r.status_code

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        for f in [ex.submit(worker) for _ in range(threads)]:
            f.result()
    return ok, failed


class Uploader(threading.Thread):
    """Uploads files[i] for i in indexes at a steady pace until told to stop or done: the
    load that is running when the stop comes."""

    def __init__(self, stack, files, indexes, pause=0.25):
        super().__init__(daemon=True)
        self.stack, self.files, self.indexes, self.pause = stack, files, list(indexes), pause
        self.ok, self.failed, self.halt = {}, {}, threading.Event()

    def run(self):
        s = requests.Session()
        for i in self.indexes:
            if self.halt.is_set():
                return
            try:
                r = s.post(f"{self.stack.gateway}/resources", data=self.files[i][0], headers=MP3, timeout=(2, 30))
                if r.status_code == 200:
                    self.ok[i] = r.json()["id"]
                else:
                    self.failed[i] = r.status_code
            except requests.RequestException as e:
                self.failed[i] = type(e).__name__
                s = requests.Session()
            time.sleep(self.pause)


def wait_all_permanent(stack, ids, timeout=240):
    ids = sorted(set(ids))
    deadline = time.monotonic() + timeout
    pending = ids
    while time.monotonic() < deadline:
        rows = stack.psql("RESOURCE_DB_URL", "SELECT id FROM resources WHERE state='PERMANENT'")
        permanent = {int(x) for x in rows}
        pending = [x for x in ids if x not in permanent]
        if not pending:
            return
        time.sleep(1.0)
    states = stack.psql("RESOURCE_DB_URL", "SELECT id || ' ' || state FROM resources WHERE id IN ("
                        + ",".join(map(str, pending[:50])) + ")")
    raise AssertionError(f"{len(pending)} acknowledged uploads not PERMANENT after {timeout}s: {states[:20]}, "
                         f"rows missing: {sorted(set(pending[:50]) - {int(s.split()[0]) for s in states})}")


def check_everything(stack, files, acked, run):
    """Every acknowledged upload is there, whole, PERMANENT, with its metadata; nothing twice."""
    wait_all_permanent(stack, acked.values())
    problems = []

    def check(item):
        i, rid = item
        data, meta = files[i]
        out = []
        g = stack.get(f"/resources/{rid}")
        if g.status_code != 200 or g.content != data:
            out.append(f"file {i} id {rid}: download {g.status_code} {len(g.content)} bytes, "
                       f"identical={g.content == data}")
        s = stack.get(f"/songs/{rid}")
        if s.status_code != 200 or s.json() != {"id": rid, **meta}:
            out.append(f"file {i} id {rid}: metadata {s.status_code} {s.text[:200]} != {meta}")
        return out

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for out in ex.map(check, acked.items()):
            problems.extend(out)

    # one resource per file sent, and every stored one (acknowledged or not) processed
    shas = {hashlib.sha256(d).hexdigest(): i for i, (d, _) in enumerate(files)}
    rows = stack.psql("RESOURCE_DB_URL", "SELECT sha256 || ' ' || id || ' ' || state FROM resources")
    per_file = collections.Counter()
    stored_ids = []
    for row in rows:
        sha, rid, state = row.split()
        if sha in shas:
            per_file[shas[sha]] += 1
            stored_ids.append(int(rid))
    dups = {i: n for i, n in per_file.items() if n > 1}
    if dups:
        problems.append(f"files stored more than once: {dups}")
    lost = [i for i in acked if per_file[i] == 0]
    if lost:
        problems.append(f"acknowledged files without a row: {lost}")
    wait_all_permanent(stack, stored_ids)
    songs = stack.psql("SONG_DB_URL", f"SELECT name || ' x' || count(*) FROM songs WHERE name LIKE 'Durable {run} #%' "
                                      "GROUP BY name HAVING count(*) > 1")
    if songs:
        problems.append(f"duplicate songs: {songs}")
    nsongs = int(stack.psql("SONG_DB_URL", f"SELECT count(*) FROM songs WHERE name LIKE 'Durable {run} #%'")[0])
    if nsongs != len(stored_ids):
        problems.append(f"{nsongs} songs for {len(stored_ids)} stored files")
    # nothing dead-lettered, nothing left behind in STAGING
    dl = dead_letters(stack)
    if any(dl.values()):
        problems.append(f"dead letters: {dl}")
    staging = [l for l in (stack.data_dir() / "s3" / "data" / "fermata-staging").rglob("*")
               if l.is_file() and ".sgwtmp" not in l.parts and "fermata-health" not in l.parts]
    if staging:
        problems.append(f"objects left in STAGING: {[str(p) for p in staging[:10]]}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


def dead_letters(stack):
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(stack.stack_env()["AMQP_URL"]))
    try:
        ch = conn.channel()
        return {q: ch.queue_declare(q, passive=True).method.message_count
                for q in ("resource.uploaded.dlq", "resource.processed.dlq")}
    finally:
        conn.close()


def stage_in_flight(stack, files, batch):
    """Uploads `batch` (three parts) so that at the stop some files are PERMANENT, some wait
    in the broker (processor stopped) and some in the outbox (broker stopped). Returns the
    acknowledged {i: id}. Leaves the processor and the broker stopped."""
    a, b, c = batch
    acked, failed = upload_all(stack, files, a)
    assert not failed, f"uploads with everything up failed: {failed}"
    wait_all_permanent(stack, acked.values())
    stack.services("stop", "processor")
    ok, failed = upload_all(stack, files, b)
    assert not failed, f"uploads with the processor stopped failed: {failed}"
    acked.update(ok)
    stack.stack("stop", "rabbitmq")
    ok, failed = upload_all(stack, files, c)
    assert not failed, f"uploads with the broker stopped failed (the outbox should take them): {failed}"
    acked.update(ok)
    waiting = stack.psql("RESOURCE_DB_URL", "SELECT count(*) FROM outbox")
    assert int(waiting[0]) >= len(c), f"outbox holds {waiting} rows, expected at least {len(c)}"
    staging = int(stack.psql("RESOURCE_DB_URL", "SELECT count(*) FROM resources WHERE state='STAGING'")[0])
    assert staging >= len(b) + len(c)
    return acked


@pytest.fixture(scope="module")
def private():
    stack = PrivateRun(ROOT, PRIVATE_PORT_BASE, BUILD, data_dir=RUN_DIR / "durability",
                       log_path=RUN_DIR / "durability-run.log")
    stack.stack("reset", check=False)
    yield stack
    stack.stop()
    logs = stack.data_dir() / "logs"
    reports = [f"{p.name}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs.glob("*.log")
               if SANITIZER_PATTERNS.search(p.read_text(errors="replace"))]
    if not os.environ.get("FERMATA_KEEP_TEST_DATA"):
        stack.stack("reset", check=False)
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)


def test_acknowledged_uploads_survive_ctrl_c_and_then_sigkill_of_everything(private):
    run = "%06x" % random.randrange(16**6)
    files = make_files(200, run, seed=run)
    out = private.start()
    assert f"Data: {RUN_DIR / 'durability'}" in out, out[-2000:]

    # ---- round 1: 100 files in three states, more arriving while Ctrl-C comes
    acked = stage_in_flight(private, files, (range(0, 40), range(40, 65), range(65, 85)))
    private.stack("start", "rabbitmq")          # the broker back, the processor still stopped:
    late = Uploader(private, files, range(85, 100))  # uploads in flight while the stop comes
    late.start()
    time.sleep(1.0)
    out = private.ctrl_c()
    late.halt.set()
    late.join(timeout=60)
    acked.update(late.ok)
    assert "run: stopped." in out, out[-3000:]
    assert private.stack("running", check=False).returncode != 0, "something of the stack still runs after Ctrl-C"

    private.start()
    check_everything(private, files, acked, run)
    round1 = len(acked)

    # ---- round 2: 100 more, then SIGKILL of every process at once
    acked.update(stage_in_flight(private, files, (range(100, 140), range(140, 165), range(165, 185))))
    private.stack("start", "rabbitmq")
    late = Uploader(private, files, range(185, 200))
    late.start()
    time.sleep(1.0)
    killed = private.power_loss()
    late.halt.set()
    late.join(timeout=60)
    acked.update(late.ok)

    private.start()
    check_everything(private, files, acked, run)
    print(f"\ndurability: {round1} acknowledged before Ctrl-C, {len(acked)} in all; "
          f"{len(killed)} processes SIGKILLed at once")


def syncs(resource):
    text = resource.get("/actuator/prometheus").text
    return int(next(l.split()[1] for l in text.splitlines() if l.startswith("fermata_store_syncs_total ")))


def test_upload_and_move_wait_for_the_store_disk(services):
    """versitygw does not fsync: the Resource Service syncs the store's filesystem
    (S3_SYNC_DIR, lib/syncbar) before a row names a new object, on upload and on the move
    to PERMANENT."""
    resource = services["resource"].ensure()
    for name in ("storage", "song", "processor"):
        services[name].ensure()
    before = syncs(resource)
    data = make_mp3(seconds=1.0, title="Synced", artist="Disk", album="Barrier", year="2002")
    r = resource.post("/resources", data=data, headers=MP3)
    assert r.status_code == 200
    rid = r.json()["id"]
    assert syncs(resource) >= before + 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and syncs(resource) < before + 2:
        time.sleep(0.2)
    assert syncs(resource) >= before + 2, "the move to PERMANENT did not sync"
    assert resource.get(f"/resources/{rid}").content == data


def test_sync_dir_that_cannot_be_opened_refuses_to_start():
    env = dict(os.environ, S3_SYNC_DIR="/nonexistent/fermata", SERVER_PORT="0")
    p = subprocess.run(["timeout", "-s", "TERM", "10", f"{BUILD}/services/resource/fermata-resource"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert "S3_SYNC_DIR" in p.stderr
