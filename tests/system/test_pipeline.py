"""The whole pipeline through the gateway: upload -> "uploaded" -> processor extracts the tags ->
Song Service -> "processed" -> Resource Service moves the file to PERMANENT storage."""
import concurrent.futures
import os

import boto3
import pytest
import requests

from conftest import wait_until
from mp3gen import make_mp3
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
    # the pipeline's own metrics (the Fermata dashboard): the move was timed, the outbox read
    metrics = stack_up["resource"].get("/actuator/prometheus").text
    values = dict(l.rsplit(" ", 1) for l in metrics.splitlines() if l.startswith(("fermata_pipeline", "fermata_outbox")))
    assert int(values["fermata_pipeline_lag_seconds_count"]) >= 1
    assert 0 < float(values["fermata_pipeline_lag_seconds_max"]) < 60
    assert int(values["fermata_outbox_pending"]) >= 0


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
