"""Resource Service under faults: broker down during uploads, the STAGING -> PERMANENT move
driven by "processed" messages (idempotent, poison messages), Song Service down during a
delete, object store and database down."""
import json
import os
import time

import boto3
from mp3gen import make_mp3
import pika
import pytest

from conftest import wait_until
from test_resource_api import MP3, db, upload
from test_song_api import assert_error


@pytest.fixture(scope="module")
def resource(services):
    services["processor"].stop()  # these tests drive the messages themselves
    services["storage"].ensure()
    services["song"].ensure()
    return services["resource"].ensure()


@pytest.fixture(scope="module")
def s3():
    return boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def channel():
    conn = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    return conn, conn.channel()


def drain(queue, want_ids, timeout=30):
    """Takes messages from `queue` until every id in want_ids was seen; returns id -> count."""
    seen = {}
    conn, ch = channel()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not want_ids <= set(seen):
            method, _, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                time.sleep(0.2)
                continue
            rid = json.loads(body)["resourceId"]
            if rid in want_ids:
                seen[rid] = seen.get(rid, 0) + 1
                ch.basic_ack(method.delivery_tag)
            else:
                ch.basic_ack(method.delivery_tag)  # leftovers of earlier runs
    finally:
        conn.close()
    return seen


def publish_processed(body):
    conn, ch = channel()
    try:
        ch.confirm_delivery()
        ch.basic_publish("fermata", "resource.processed", body,
                         pika.BasicProperties(delivery_mode=2, content_type="application/json"))
    finally:
        conn.close()


def queue_depth(name):
    conn, ch = channel()
    try:
        return ch.queue_declare(name, passive=True).method.message_count
    finally:
        conn.close()


def test_uploads_survive_broker_outage(resource, stack):
    stack.kill("rabbitmq")
    try:
        ids = [upload(resource)[0] for _ in range(5)]
        assert int(db(f"SELECT count(*) FROM outbox WHERE payload IN ({','.join(repr(json.dumps({'resourceId': i}, separators=(',', ':'))) for i in ids)})")) == 5
    finally:
        stack.start("rabbitmq")
    seen = drain("resource.uploaded", set(ids), timeout=60)
    assert set(seen) == set(ids), f"missing uploaded messages for {set(ids) - set(seen)}"
    wait_until(lambda: db("SELECT count(*) FROM outbox") == "0", timeout=20, message="outbox emptied")
    assert all(n == 1 for n in seen.values()), seen


def test_processed_message_moves_to_permanent(resource, s3):
    rid, data = upload(resource)
    staging_bucket, staging_key = db(f"SELECT bucket || ' ' || s3_key FROM resources WHERE id={rid}").split()
    publish_processed(json.dumps({"resourceId": rid}))
    wait_until(lambda: db(f"SELECT state FROM resources WHERE id={rid}") == "PERMANENT", timeout=30,
               message="state PERMANENT")
    bucket, key = db(f"SELECT bucket || ' ' || s3_key FROM resources WHERE id={rid}").split()
    assert bucket != staging_bucket
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.list_objects_v2(Bucket=staging_bucket, Prefix=staging_key).get("KeyCount", 0) == 0
    assert resource.get(f"/resources/{rid}").content == data
    # the same message again changes nothing
    publish_processed(json.dumps({"resourceId": rid}))
    time.sleep(1.0)
    assert db(f"SELECT bucket || ' ' || s3_key FROM resources WHERE id={rid}").split() == [bucket, key]
    assert resource.get(f"/resources/{rid}").content == data


def test_lost_object_is_a_500_not_retry_later(resource, s3):
    # the object store is up but no longer has the file (the in-memory emulator restarted,
    # say): retrying later would never help, so not 503; the log says which object
    rid, data = upload(resource)
    bucket, key = db(f"SELECT bucket || ' ' || s3_key FROM resources WHERE id={rid}").split()
    s3.delete_object(Bucket=bucket, Key=key)
    log_at = len(resource.log())
    r = resource.get(f"/resources/{rid}")
    assert_error(r, 500, "Internal server error")
    assert bucket not in r.text and key not in r.text
    wait_until(lambda: "object missing from the object store" in resource.log()[log_at:], timeout=5,
               message="log line")
    line = next(x for x in resource.log()[log_at:].splitlines() if "object missing from the object store" in x)
    assert f"id={rid} " in line and f"bucket={bucket} " in line and f"key={key} " in line
    assert r.headers["X-Request-Id"] in resource.log()[log_at:]
    # the other resources are unaffected, and the lost one can still be deleted
    other, other_data = upload(resource)
    assert resource.get(f"/resources/{other}").content == other_data
    assert resource.delete(f"/resources?id={rid}").json() == {"ids": [rid]}
    assert_error(resource.get(f"/resources/{rid}"), 404)


def test_poison_processed_messages(resource):
    before = queue_depth("resource.processed.dlq")
    publish_processed(b"this is not json")
    publish_processed(json.dumps({"resourceId": 2147483000}))  # unknown id: acknowledged, logged
    wait_until(lambda: queue_depth("resource.processed.dlq") == before + 1, timeout=20, message="garbage in DLQ")
    time.sleep(1.0)
    assert queue_depth("resource.processed.dlq") == before + 1
    assert queue_depth("resource.processed") == 0
    # the consumer still works after poison
    rid, _ = upload(resource)
    publish_processed(json.dumps({"resourceId": rid}))
    wait_until(lambda: db(f"SELECT state FROM resources WHERE id={rid}") == "PERMANENT", timeout=30,
               message="state PERMANENT after poison")


def test_delete_while_song_service_down(resource, services):
    song = services["song"]
    rid, _ = upload(resource)
    song.post("/songs", json={"id": rid, "name": "n", "artist": "a", "album": "b", "duration": "00:02", "year": "1999"})
    song.stop()
    try:
        t0 = time.monotonic()
        r = resource.delete(f"/resources?id={rid}")
        assert r.status_code == 200 and r.json() == {"ids": [rid]}
        assert time.monotonic() - t0 < 5
        assert_error(resource.get(f"/resources/{rid}"), 404)
        assert db(f"SELECT count(*) FROM pending_song_deletes WHERE resource_id={rid}") == "1"
    finally:
        song.start()
    wait_until(lambda: song.get(f"/songs/{rid}").status_code == 404, timeout=60,
               message="song metadata deleted after the Song Service came back")
    wait_until(lambda: db(f"SELECT count(*) FROM pending_song_deletes WHERE resource_id={rid}") == "0", timeout=10,
               message="pending deletion cleared")


def test_database_down(resource, stack):
    rid, data = upload(resource)
    stack.kill("postgres")
    try:
        assert_error(resource.post("/resources", data=data, headers=MP3), 503)
        assert_error(resource.get(f"/resources/{rid}"), 503)
        assert_error(resource.delete(f"/resources?id={rid}"), 503)
    finally:
        stack.start("postgres")
    wait_until(lambda: resource.get(f"/resources/{rid}").status_code == 200, timeout=30, message="reads again")
    assert resource.get(f"/resources/{rid}").content == data


def test_object_store_down(resource, stack, s3):
    rid, _ = upload(resource)
    rows = db("SELECT count(*) FROM resources")
    stack.kill("s3")
    try:
        r = resource.post("/resources", data=b"", headers=MP3)
        assert r.status_code == 400  # bad input is still refused first
        r = resource.post("/resources", data=make_mp3(freq=333), headers=MP3)
        assert_error(r, 503)
        assert "s3" not in r.text.lower() and "bucket" not in r.text.lower()
        assert db("SELECT count(*) FROM resources") == rows  # nothing half-written
        assert_error(resource.get(f"/resources/{rid}"), 503)
        # delete still works: the row goes, the object deletion waits
        assert resource.delete(f"/resources?id={rid}").json() == {"ids": [rid]}
        assert int(db("SELECT count(*) FROM pending_object_deletes")) >= 1
    finally:
        stack.start("s3")
    # the emulator comes back empty; the Storage Service recreates the buckets and uploads work again
    wait_until(lambda: resource.post("/resources", data=make_mp3(freq=334), headers=MP3).status_code == 200,
               timeout=90, interval=1.0, message="uploads work after the object store is back")
    wait_until(lambda: db("SELECT count(*) FROM pending_object_deletes") == "0", timeout=60, interval=1.0,
               message="pending object deletions done")
