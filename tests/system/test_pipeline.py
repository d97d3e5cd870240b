"""The whole pipeline through the gateway: upload -> "uploaded" -> processor extracts the tags ->
Song Service -> "processed" -> Resource Service moves the file to PERMANENT storage."""
import concurrent.futures
import os

import boto3
import pytest
import requests

from conftest import RUN_DIR, wait_until
from mp3gen import make_long_mp3, make_mp3, mmss
from test_resource_api import MP3, db

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")


@pytest.fixture(scope="module")
def stack_up(services):
    for name in ("storage", "song", "resource", "processor"):
        services[name].ensure()
    return services


@pytest.fixture(scope="module")
def s3():
    return boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def upload_and_wait_song(data, timeout):
    """POSTs data through the gateway and waits for its song metadata: (id, song)."""
    r = requests.post(f"{GATEWAY}/resources", data=data, headers=MP3, timeout=timeout)
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    song = wait_until(lambda: (lambda g: g.json() if g.status_code == 200 else None)(
        requests.get(f"{GATEWAY}/songs/{rid}", timeout=5)), timeout=timeout, message="metadata stored")
    return rid, song


def permanent(rid):
    return db(f"SELECT state FROM resources WHERE id={rid}") == "PERMANENT"


def test_upload_through_gateway_ends_permanent_with_metadata(stack_up, s3):
    data = make_mp3(seconds=3.0, title="Bohemian Rhapsody", artist="Queen", album="A Night at the Opera",
                    year="1975", freq=523)
    rid, song = upload_and_wait_song(data, timeout=60)
    assert song == {"id": rid, "name": "Bohemian Rhapsody", "artist": "Queen", "album": "A Night at the Opera",
                    "duration": "00:03", "year": "1975"}
    wait_until(lambda: permanent(rid), timeout=60, message="state PERMANENT")
    storages = requests.get(f"{GATEWAY}/storages", timeout=5).json()
    perm = [s for s in storages if s["storageType"] == "PERMANENT"][0]
    staging = [s for s in storages if s["storageType"] == "STAGING"][0]
    bucket, key = db(f"SELECT bucket || ' ' || s3_key FROM resources WHERE id={rid}").split()
    assert bucket == perm["bucket"]
    name = key.rsplit("/", 1)[-1]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    staged = s3.list_objects_v2(Bucket=staging["bucket"]).get("Contents", [])
    assert not [o for o in staged if o["Key"].endswith(name)], "a copy stayed in the staging bucket"
    assert requests.get(f"{GATEWAY}/resources/{rid}", timeout=10).content == data


def _peak_rss(name):
    """VmHWM (the most resident memory a process has had) of a service services.sh runs, bytes."""
    pid = (RUN_DIR / "pids" / f"{name}.pid").read_text().strip()
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))


@pytest.fixture
def big_uploads(stack_up):
    """The Resource Service restarted with room for an 86 MB upload (it holds an upload in
    memory until the streaming upload lands, and its limit is 50 MiB until then), and the
    processor restarted so its peak RSS counts from now; both put back afterwards."""
    old = os.environ.get("RESOURCE_MAX_UPLOAD_BYTES")
    os.environ["RESOURCE_MAX_UPLOAD_BYTES"] = str(200 * 1024 * 1024)
    try:
        for name in ("resource", "processor"):
            stack_up[name].stop()
            stack_up[name].start()
        yield stack_up
    finally:
        if old is None:
            os.environ.pop("RESOURCE_MAX_UPLOAD_BYTES", None)
        else:
            os.environ["RESOURCE_MAX_UPLOAD_BYTES"] = old
        stack_up["resource"].stop()
        stack_up["resource"].start()


def test_long_mp3_through_gateway_processor_memory_bounded(big_uploads):
    """Issue 13: an 86 MB, 90-minute MP3 through the gateway gets its exact duration and
    tags and moves to PERMANENT, while the processor, reading it by ranges, stays under
    64 MiB of peak RSS; it downloads byte-identical, whole and by a range."""
    data, seconds = make_long_mp3(90, title="Ninety", artist="Marathon", album="The Long Set", year="2019")
    assert len(data) > 86_000_000
    rid, song = upload_and_wait_song(data, timeout=300)
    assert song == {"id": rid, "name": "Ninety", "artist": "Marathon", "album": "The Long Set",
                    "duration": mmss(seconds), "year": "2019"}
    peak = _peak_rss("processor")
    print(f"{len(data)} bytes, {seconds:.3f} s: processor peak RSS {peak / 2**20:.1f} MiB")
    assert peak < 64 * 1024 * 1024, f"processor peak RSS {peak / 2**20:.1f} MiB"
    wait_until(lambda: permanent(rid), timeout=120, message="state PERMANENT")
    got = requests.get(f"{GATEWAY}/resources/{rid}", timeout=300)
    assert got.status_code == 200 and got.content == data
    part = requests.get(f"{GATEWAY}/resources/{rid}", headers={"Range": "bytes=50000000-50999999"}, timeout=60)
    assert part.status_code == 206 and part.content == data[50_000_000:51_000_000]


def test_fifty_concurrent_uploads_all_processed(stack_up):
    files = [make_mp3(seconds=1.0, title=f"Track {i}", artist="Load", album="Concurrency", year="2001",
                      freq=300 + i) for i in range(50)]

    def up(i):
        r = requests.post(f"{GATEWAY}/resources", data=files[i], headers=MP3, timeout=60)
        assert r.status_code == 200, r.text
        return i, r.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        ids = dict(ex.map(up, range(50)))
    assert len(set(ids.values())) == 50
    wait_until(lambda: all(permanent(rid) for rid in ids.values()), timeout=180, interval=1.0,
               message="all 50 PERMANENT")
    for i, rid in ids.items():
        song = requests.get(f"{GATEWAY}/songs/{rid}", timeout=5).json()
        assert song["name"] == f"Track {i}" and song["artist"] == "Load" and song["duration"] == "00:01"
        assert requests.get(f"{GATEWAY}/resources/{rid}", timeout=10).content == files[i]


def test_delete_through_gateway_removes_everything(stack_up):
    data = make_mp3(seconds=1.0, title="Gone", freq=611)
    rid = requests.post(f"{GATEWAY}/resources", data=data, headers=MP3, timeout=30).json()["id"]
    wait_until(lambda: permanent(rid), timeout=60, message="state PERMANENT")
    r = requests.delete(f"{GATEWAY}/resources?id={rid}", timeout=10)
    assert r.json() == {"ids": [rid]}
    assert requests.get(f"{GATEWAY}/resources/{rid}", timeout=5).status_code == 404
    wait_until(lambda: requests.get(f"{GATEWAY}/songs/{rid}", timeout=5).status_code == 404, timeout=30,
               message="metadata deleted")
