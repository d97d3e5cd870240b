"""Faults of the object store's disk, on a private stack (tests/system/privatestack.py)
whose versitygw keeps its objects on a 48 MiB tmpfs mounted for this module:

* the store's directory becomes unwritable (as after a read-only remount), then writable;
* the store's directory is removed while running, then created again (and the store,
  which kept working in the deleted directory, restarted by `scripts/stack.sh start s3`);
* the disk fills up.

In each case: uploads answer in the contract's shape (503 while the store cannot write,
507 when it is full), health is DOWN with the reason (objectStore.details.error), nothing
is half-recorded (no row, no outbox message, no partial object), files stored before still
download (unless the fault removed them), and it all recovers by itself once the disk is
fixed, without a restart of any Fermata service.
"""
import concurrent.futures
import hashlib
import os
import pathlib
import pwd
import subprocess
import time

import pytest
import requests

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, SANITIZER_PATTERNS
from mp3gen import make_mp3
from privatestack import PrivateRun
from test_chaos import _strip_id3v2, tagged

BUILD = os.environ.get("FERMATA_BUILD_DIR") or str(ROOT / "build" / "debug")
MP3 = {"Content-Type": "audio/mpeg"}
MOUNT = RUN_DIR / "store-disk"
DATA = MOUNT / "data"
SIZE_MB = 48


SENT = set()  # SHA-256 of every file this module sends


def mp3s(n, tag, seconds):
    audio = _strip_id3v2(make_mp3(seconds=seconds, title="base", freq=500))
    out = [tagged(audio, f"Disk {tag} #{i}", "Disk", "Faults", "2001") for i in range(n)]
    SENT.update(hashlib.sha256(d).hexdigest() for d in out)
    return out


@pytest.fixture(scope="module")
def private():
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited filesystem needs root")
    MOUNT.mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam("fermata-s3")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700,uid={owner.pw_uid},gid={owner.pw_gid}",
                        "tmpfs", str(MOUNT)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    DATA.mkdir()
    os.chown(DATA, owner.pw_uid, owner.pw_gid)
    os.chmod(DATA, 0o700)
    stack = PrivateRun(ROOT, PRIVATE_PORT_BASE + 600, BUILD, data_dir=RUN_DIR / "store-disk-stack",
                       log_path=RUN_DIR / "store-disk-run.log", S3_DATA_DIR=DATA,
                       STORAGE_BUCKET_CHECK_INTERVAL="1s")
    try:
        stack.stack("reset", check=False)
        stack.start()
        yield stack
    finally:
        stack.stop()
        logs = stack.data_dir() / "logs"
        reports = [p.name for p in logs.glob("*.log") if SANITIZER_PATTERNS.search(p.read_text(errors="replace"))]
        stack.stack("reset", check=False)
        subprocess.run(["umount", str(MOUNT)], check=False)
        assert not reports, f"sanitizer reports in {reports}"


def health(stack):
    port = stack.env["RESOURCE_PORT"]
    r = requests.get(f"http://127.0.0.1:{port}/actuator/health", timeout=10)
    return r.status_code, r.json()["components"]["objectStore"]


def wait_health(stack, status, timeout=30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = health(stack)
        if last[1]["status"] == status:
            return last
        time.sleep(0.3)
    raise AssertionError(f"objectStore not {status} after {timeout}s: {last}")


def counts(stack):
    res = int(stack.psql("RESOURCE_DB_URL", "SELECT count(*) FROM resources")[0])
    out = int(stack.psql("RESOURCE_DB_URL", "SELECT count(*) FROM outbox")[0])
    return res, out


def contract_error(r, status, message):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"errorMessage": message, "errorCode": str(status)}


def files_on_disk():
    """Every object file the store holds (not its temporaries or lock files)."""
    return [p for p in DATA.rglob("*") if p.is_file() and ".sgwtmp" not in p.parts and ".vgwlocks" not in p.parts]


def upload_ok(stack, data):
    r = stack.post("/resources", data=data, headers=MP3)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_unwritable_store_directory_gives_503_and_recovers(private):
    before_files = mp3s(2, "before-ro", 2.0)
    kept = [upload_ok(private, d) for d in before_files]
    wait_health(private, "UP")
    rows = counts(private)
    subprocess.run(["chmod", "-R", "a-w", str(DATA)], check=True)
    try:
        code, store = wait_health(private, "DOWN")
        assert code == 503
        assert store["details"]["error"] == "object store refuses writes", store
        assert store["details"]["kind"] == "versitygw"
        for data in mp3s(3, "during-ro", 1.0):
            contract_error(private.post("/resources", data=data, headers=MP3), 503,
                           "File storage is temporarily unavailable, please retry later")
        assert counts(private) == rows  # no row, no message
        for rid, data in zip(kept, before_files):  # reads still work
            assert private.get(f"/resources/{rid}").content == data
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(DATA)], check=True)
    wait_health(private, "UP")
    upload_ok(private, mp3s(1, "after-ro", 1.0)[0])


def test_removed_store_directory_gives_503_and_recovers_when_recreated(private):
    wait_health(private, "UP")
    rows = counts(private)
    owner = pwd.getpwnam("fermata-s3")
    subprocess.run(["rm", "-rf", str(DATA)], check=True)
    try:
        code, store = wait_health(private, "DOWN")
        assert code == 503 and store["details"]["error"], store
        data = mp3s(1, "during-rm", 1.0)[0]
        r = private.post("/resources", data=data, headers=MP3)
        assert r.status_code in (503, 507) and r.json()["errorCode"] == str(r.status_code), r.text
        assert counts(private) == rows
        # versitygw goes on inside the deleted directory: the stack says so
        st = private.stack("status", "s3", check=False)
        assert st.returncode != 0 and "was removed" in st.stdout, st.stdout
    finally:
        # the fix: the directory back, and `stack.sh start s3` restarts the orphaned store
        DATA.mkdir()
        os.chown(DATA, owner.pw_uid, owner.pw_gid)
        os.chmod(DATA, 0o700)
        private.stack("start", "s3")
    # the Storage Service's keeper creates the buckets again; no service is restarted
    wait_health(private, "UP", timeout=60)
    rid = upload_ok(private, mp3s(1, "after-rm", 1.0)[0])
    assert private.get(f"/resources/{rid}").status_code == 200


def test_full_disk_gives_507_without_partial_objects_and_recovers(private):
    wait_health(private, "UP")
    early = mp3s(2, "before-full", 2.0)
    early_ids = [upload_ok(private, d) for d in early]
    big = mp3s(40, "fill", 120.0)  # ~1.9 MB each: 40 of them need more than the disk has
    results = []

    def one(data):
        r = private.post("/resources", data=data, headers=MP3)
        return r.status_code, r.json(), data

    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        results = list(ex.map(one, big))
    codes = [c for c, _, _ in results]
    assert set(codes) <= {200, 507}, sorted(set(codes))
    assert 507 in codes, "the disk never filled"
    for c, body, _ in results:
        if c == 507:
            assert body == {"errorMessage": "File storage is full, please retry later", "errorCode": "507"}
    accepted = [(body["id"], data) for c, body, data in results if c == 200]

    # health probes with a 1-byte write: DOWN once not even that fits, with the reason
    code, store = health(private)
    assert store["status"] == "UP" or store["details"]["error"] == "object store is out of space", store

    # no partial object: every file the store holds is one of the uploads, whole
    for p in files_on_disk():
        if "fermata-health" in p.parts:
            continue
        assert hashlib.sha256(p.read_bytes()).hexdigest() in SENT, f"partial or foreign object {p} ({p.stat().st_size} bytes)"
    # no row without its object, and what was stored before still downloads
    for rid, data in list(zip(early_ids, early)) + accepted:
        g = private.get(f"/resources/{rid}")
        assert g.status_code == 200 and g.content == data, (rid, g.status_code)

    # freeing space (deleting files through the API) is enough to recover
    ids = [rid for rid, _ in accepted]
    for i in range(0, len(ids), 10):
        assert private.delete("/resources?id=" + ",".join(map(str, ids[i:i + 10]))).status_code == 200
    wait_health(private, "UP", timeout=60)
    rid = upload_ok(private, big[0])
    assert private.get(f"/resources/{rid}").content == big[0]
