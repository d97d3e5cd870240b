"""Resource Service: the contract rows, with the real stack (database, object store,
broker, Storage and Song services).

The contract tests run twice, directly against the service and through the gateway (the
`resource` fixture below, parametrised by conftest's `route`); the actuator test is direct
only (the gateway does not route /actuator)."""
import http.client
import json
import os
import random
import subprocess
import urllib.parse

import boto3
import pytest
import requests

from conftest import via, wait_until
from mp3gen import make_mp3
from test_song_api import assert_error

MP3 = {"Content-Type": "audio/mpeg"}


@pytest.fixture(scope="module")
def resource_direct(services):
    services["storage"].ensure()
    services["song"].ensure()
    return services["resource"].ensure()


@pytest.fixture
def resource(resource_direct, route):
    """The Resource Service, directly or through the gateway."""
    return via(resource_direct, route)


@pytest.fixture(scope="module")
def s3():
    return boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ.get("S3_REGION", "us-east-1"),
                        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))


def db(sql):
    """One value from the Resource Service's database (the state is not part of the API)."""
    out = subprocess.run(["psql", os.environ["RESOURCE_DB_URL"], "-tAc", sql], check=True, capture_output=True,
                         text=True).stdout
    return out.strip()


def upload(resource, data=None, **kw):
    data = data if data is not None else make_mp3(freq=random.randint(200, 2000))
    r = resource.post("/resources", data=data, headers=MP3, timeout=30, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert list(r.json()) == ["id"] and isinstance(r.json()["id"], int)
    return r.json()["id"], data


def test_upload_then_download_identical(resource):
    rid, data = upload(resource)
    g = resource.get(f"/resources/{rid}")
    assert g.status_code == 200
    assert g.headers["Content-Type"] == "audio/mpeg"
    assert int(g.headers["Content-Length"]) == len(data) > 0
    assert g.content == data
    assert db(f"SELECT state FROM resources WHERE id={rid}") in ("STAGING", "PERMANENT")


def test_upload_stored_in_staging_bucket_with_generated_key(resource, services, s3):
    rid, data = upload(resource)
    bucket, key = db(f"SELECT bucket || ' ' || s3_key FROM resources WHERE id={rid}").split()
    storages = services["storage"].get("/storages").json()
    staging = [s for s in storages if s["storageType"] == "STAGING"][0]
    assert bucket == staging["bucket"]
    assert key.startswith(staging["path"].strip("/") + "/") and key.endswith(".mp3")
    if db(f"SELECT state FROM resources WHERE id={rid}") == "STAGING":
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


@pytest.mark.parametrize("ctype", ["application/json", "text/plain", "audio/wav", "application/octet-stream"])
def test_wrong_content_type(resource, ctype):
    r = resource.post("/resources", data=make_mp3(), headers={"Content-Type": ctype})
    assert_error(r, 400, f"Invalid file format: {ctype}. Only MP3 files are allowed")


def test_missing_content_type(resource):
    r = requests.post(resource.url + "/resources", data=iter([make_mp3()]), timeout=10)  # chunked, no type
    assert r.status_code == 400 and r.json()["errorCode"] == "400"


@pytest.mark.parametrize("body", [b"", os.urandom(4096), b"ID3\x04\x00\x00\x00\x00\x00\x00", b"not an mp3 at all"])
def test_not_an_mp3(resource, body):
    assert_error(resource.post("/resources", data=body, headers=MP3), 400)


def test_truncated_mp3(resource):
    data = make_mp3()
    assert_error(resource.post("/resources", data=data[: len(data) // 2 + 7], headers=MP3), 400)


def test_too_large_is_413(resource):
    """A declared length over the limit (1 GiB; the gateway's is a little above) is answered
    413 before a byte of the body is sent."""
    u = urllib.parse.urlsplit(resource.url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.putrequest("POST", "/resources")
    c.putheader("Content-Type", "audio/mpeg")
    c.putheader("Content-Length", str(8 << 30))
    c.endheaders()
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    assert r.status == 413 and r.getheader("Content-Type") == "application/json"
    assert set(body) == {"errorMessage", "errorCode"} and body["errorCode"] == "413"
    assert "maximum allowed is" in body["errorMessage"]


@pytest.mark.parametrize("raw", ["ABC", "1.1", "-1", "0", "2147483648"])
def test_get_invalid_id(resource, raw):
    assert_error(resource.get(f"/resources/{raw}"), 400, f"Invalid value '{raw}' for ID. Must be a positive integer")


def test_get_unknown_is_404(resource):
    assert_error(resource.get("/resources/2147483647"), 404, "Resource with ID=2147483647 not found")


def test_ranges(resource):
    rid, data = upload(resource)
    n = len(data)
    r = resource.get(f"/resources/{rid}", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == data[:100]
    assert r.headers["Content-Range"] == f"bytes 0-99/{n}"
    assert r.headers["Content-Type"] == "audio/mpeg"
    r = resource.get(f"/resources/{rid}", headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == data[-50:]
    r = resource.get(f"/resources/{rid}", headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == data[100:]
    r = resource.get(f"/resources/{rid}", headers={"Range": f"bytes={n}-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{n}"
    assert r.json()["errorCode"] == "416"
    r = resource.get(f"/resources/{rid}", headers={"Range": "bytes=0-1,5-6"})  # multiple: served whole
    assert r.status_code == 200 and r.content == data


def test_delete_cascade(resource, services, s3):
    song = services["song"]
    a, _ = upload(resource)
    b, _ = upload(resource)
    bucket_key = db(f"SELECT bucket || ' ' || s3_key FROM resources WHERE id={a}").split()
    for i in (a, b):  # metadata as the processor would store it (or already has)
        song.post("/songs", json={"id": i, "name": "n", "artist": "a", "album": "b", "duration": "00:02", "year": "1999"})
    r = resource.delete(f"/resources?id={b},2147483647,{a}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"ids": [b, a]}
    assert_error(resource.get(f"/resources/{a}"), 404)
    assert song.get(f"/songs/{a}").status_code == 404 and song.get(f"/songs/{b}").status_code == 404
    wait_until(lambda: s3.list_objects_v2(Bucket=bucket_key[0], Prefix=bucket_key[1]).get("KeyCount", 0) == 0,
               timeout=15, message="object deleted from the bucket")
    assert resource.delete(f"/resources?id={a}").json() == {"ids": []}


def test_delete_csv_rules(resource):
    assert_error(resource.delete("/resources?id=1,V"), 400, "Invalid ID format: 'V'. Only positive integers are allowed")
    long_csv = ",".join(["1234567"] * 26) + "1"
    assert_error(resource.delete(f"/resources?id={long_csv}"), 400,
                 "CSV string is too long: received 208 characters, maximum allowed is 200")
    assert_error(resource.delete("/resources"), 400)


def test_unknown_route_and_method(resource):
    assert_error(resource.get("/resources"), 405)
    assert_error(resource.get("/nope"), 404)


def test_health(resource_direct):
    # an earlier module restarted the broker (say) just before: the service reconnects by
    # itself, and health must say UP once it has, with no restart of the service
    last = {}

    def all_up():
        last["body"] = resource_direct.get("/actuator/health").json()
        return last["body"]["status"] == "UP"

    try:
        wait_until(all_up, timeout=30, message="health UP")
    except AssertionError as e:
        raise AssertionError(f"{e}; health said {last.get('body')}") from None
    for c in ("db", "objectStore", "broker"):
        assert last["body"]["components"][c]["status"] == "UP", last["body"]


def test_large_download_streams_identical(resource):
    """A file many times the service's 256 KiB stream buffer, whole and in a range that
    crosses buffer boundaries."""
    data = make_mp3(seconds=200.0, freq=777)  # ~3.2 MB at 128 kbit/s
    assert len(data) > 12 * 256 * 1024
    rid, _ = upload(resource, data)
    g = resource.get(f"/resources/{rid}", timeout=60)
    assert g.status_code == 200 and int(g.headers["Content-Length"]) == len(data)
    assert g.content == data
    first, last = 200_000, 2_900_123
    r = resource.get(f"/resources/{rid}", headers={"Range": f"bytes={first}-{last}"}, timeout=60)
    assert r.status_code == 206 and r.content == data[first:last + 1]
