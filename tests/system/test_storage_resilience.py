"""Storage Service under faults: the object store down at start, killed and restarted (its
buckets are directories on disk: they survive), a bucket directory removed behind its back,
the database going away and coming back or down at start, and two instances seeding the
same empty database at once.

Decisions these tests pin down:
* With the object store down the service still starts and serves its database; health is
  DOWN (503) with components.objectStore DOWN, the db component UP (Spring's aggregation:
  any DOWN component makes the whole DOWN); POST /storages answers 503 and stores nothing,
  because a storage whose bucket does not exist would only fail later.
* A background keeper re-checks every storage's bucket (every 5 s, with backoff while
  failing) and creates the missing ones, so a store that comes back without them (a new
  empty store, a bucket directory deleted) needs no restart.
"""
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest  # noqa: F401
import requests

from conftest import ROOT, RUN_DIR, SANITIZER_PATTERNS, wait_until
from test_song_api import assert_error
from test_storage_api import (PERMANENT_BUCKET, PERMANENT_PATH, STAGING_BUCKET, STAGING_PATH, body,  # noqa: F401
                              bucket_exists, listing, s3, storage)

SEEDS = [("STAGING", STAGING_BUCKET, STAGING_PATH), ("PERMANENT", PERMANENT_BUCKET, PERMANENT_PATH)]


def health(svc):
    r = svc.get("/actuator/health")
    return r.status_code, r.json()


def all_buckets_present(svc, s3):
    return all(bucket_exists(s3, b) for b in {s["bucket"] for s in listing(svc)})


def delete_all(svc):
    ids = [s["id"] for s in listing(svc)]
    for i in range(0, len(ids), 20):
        assert svc.delete("/storages?id=" + ",".join(map(str, ids[i:i + 20]))).status_code == 200
    assert listing(svc) == []


def test_object_store_down_at_start(services, stack, s3):
    svc = services["storage"].ensure()
    before = listing(svc)
    svc.stop()
    log_start = len(svc.log())
    stack.kill("s3")
    try:
        svc.start()  # starts without its object store
        assert listing(svc) == before  # and serves its database
        code, h = health(svc)
        assert code == 503 and h["status"] == "DOWN"
        assert h["components"]["db"]["status"] == "UP"
        assert h["components"]["objectStore"]["status"] == "DOWN"
        assert h["components"]["objectStore"]["details"]["error"] == "object store unreachable"
        b = body()
        r = svc.post("/storages", json=b)
        assert_error(r, 503, "Object store temporarily unavailable, please retry later")
        assert listing(svc) == before  # nothing stored
        assert svc.delete("/storages?id=2147483647").json() == {"ids": []}
    finally:
        stack.start("s3")
    # no restart of the service: the keeper creates any bucket the store lacks
    wait_until(lambda: health(svc)[0] == 200, timeout=30, message="objectStore UP again")
    assert health(svc)[1]["components"]["objectStore"]["status"] == "UP"
    assert all_buckets_present(svc, s3)
    assert svc.post("/storages", json=body()).status_code == 200
    log = svc.log()[log_start:]
    assert "store=\"unreachable\"" in log
    # logged once per change, not once per retry
    assert log.count("store=\"unreachable\"") <= 2


def test_object_store_killed_keeps_buckets(services, stack, s3):
    svc = services["storage"].ensure()
    b = body()
    assert svc.post("/storages", json=b).status_code == 200
    stack.kill("s3")
    try:
        wait_until(lambda: health(svc)[1]["components"]["objectStore"]["status"] == "DOWN", timeout=30,
                   message="health noticing the object store is gone")
        assert health(svc)[0] == 503
        assert svc.get("/storages").status_code == 200
    finally:
        stack.start("s3")
    assert bucket_exists(s3, b["bucket"])  # versitygw keeps its buckets on disk
    wait_until(lambda: health(svc)[0] == 200, timeout=30, message="health UP")
    assert health(svc)[1]["components"]["objectStore"]["details"]["kind"] == "versitygw"


def test_removed_bucket_directory_comes_back(services, stack, s3):
    """The store's directory of a bucket deleted while running (an operator's mistake, a
    disk problem): the keeper notices and re-creates it, no restart needed."""
    svc = services["storage"].ensure()
    b = body()
    assert svc.post("/storages", json=b).status_code == 200
    bucket_dir = RUN_DIR / "s3" / "data" / b["bucket"]
    assert bucket_dir.is_dir()
    subprocess.run(["rm", "-rf", str(bucket_dir)], check=True)
    assert not bucket_exists(s3, b["bucket"])
    wait_until(lambda: bucket_exists(s3, b["bucket"]), timeout=30, message="bucket re-created by the keeper")
    wait_until(lambda: health(svc)[0] == 200, timeout=30, message="health UP")


def test_database_down_gives_503_and_recovers(services, stack):
    svc = services["storage"].ensure()
    before = listing(svc)
    stack.kill("postgres")
    try:
        r = svc.get("/storages")
        assert_error(r, 503, "Service temporarily unavailable, please retry later")
        assert "postgres" not in r.text.lower() and "sql" not in r.text.lower()
        assert_error(svc.post("/storages", json=body()), 503)
        assert_error(svc.delete("/storages?id=1"), 503)
        code, h = health(svc)
        assert code == 503 and h["status"] == "DOWN"
        assert h["components"]["db"]["status"] == "DOWN"
    finally:
        stack.start("postgres")
    wait_until(lambda: svc.get("/storages").status_code == 200, timeout=20, message="storages readable again")
    assert listing(svc) == before
    wait_until(lambda: health(svc)[0] == 200, timeout=20, message="health UP")
    assert svc.post("/storages", json=body()).status_code == 200


def test_database_down_at_start_seeds_later(services, stack, s3):
    """Empty table, database down at start: the service starts, answers 503, and seeds (and
    creates the buckets) by itself once the database is back."""
    svc = services["storage"].ensure()
    delete_all(svc)
    svc.stop()
    stack.kill("postgres")
    try:
        svc.start()
        assert health(svc)[0] == 503
        assert_error(svc.get("/storages"), 503)
    finally:
        stack.start("postgres")
    wait_until(lambda: svc.get("/storages").status_code == 200 and len(listing(svc)) == 2, timeout=30,
               message="seeded after the database came back")
    assert [(s["storageType"], s["bucket"], s["path"]) for s in listing(svc)] == SEEDS
    wait_until(lambda: health(svc)[0] == 200, timeout=30, message="health UP")
    assert bucket_exists(s3, STAGING_BUCKET) and bucket_exists(s3, PERMANENT_BUCKET)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_instances_seeding_together_create_each_seed_once(services, s3):
    svc = services["storage"].ensure()
    delete_all(svc)
    svc.stop()
    build = pathlib.Path(os.environ.get("FERMATA_BUILD_DIR") or ROOT / "build" / "release")
    binary = build / "services" / "storage" / "fermata-storage"
    procs, logs = [], []
    try:
        for n in range(2):
            port = free_port()
            log_path = RUN_DIR / "logs" / f"storage-race-{n}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            logs.append(log_path)
            env = dict(os.environ, SERVER_PORT=str(port))
            with open(log_path, "ab") as out:
                procs.append((subprocess.Popen([str(binary)], env=env, stdout=out, stderr=subprocess.STDOUT), port))
        for p, port in procs:
            wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/actuator/health", timeout=2).status_code == 200,
                       timeout=30, message=f"instance on {port} healthy")
    finally:
        for p, _ in procs:
            p.send_signal(signal.SIGTERM)
        for p, _ in procs:
            p.wait(timeout=30)
    svc.start()
    assert [(s["storageType"], s["bucket"], s["path"]) for s in listing(svc)] == SEEDS
    for path in logs:
        text = path.read_text(errors="replace")
        assert not SANITIZER_PATTERNS.search(text), text[-4000:]
    assert all(p.returncode == 0 for p, _ in procs)
