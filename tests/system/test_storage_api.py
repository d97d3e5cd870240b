"""Storage Service: every row of the contract, seeding, and the buckets in the object store.

The object store is checked with a separate client (boto3) configured from the stack's
environment (S3_ENDPOINT, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the same
values the service reads.

The contract tests run twice, directly against the service and through the gateway (the
`storage` fixture below, parametrised by conftest's `route`); tests of /actuator, of the
log, and those that restart the service are direct only.
"""
import concurrent.futures
import json
import os
import uuid

import boto3
import botocore.exceptions
import pytest
import requests

from conftest import via, wait_until
from test_song_api import assert_error, assert_validation

STAGING_BUCKET = os.environ.get("STORAGE_STAGING_BUCKET", "fermata-staging")
PERMANENT_BUCKET = os.environ.get("STORAGE_PERMANENT_BUCKET", "fermata-permanent")
STAGING_PATH = os.environ.get("STORAGE_STAGING_PATH", "/files")
PERMANENT_PATH = os.environ.get("STORAGE_PERMANENT_PATH", "/files")

BUCKET_MSG = ("Bucket must be a valid S3 bucket name (3-63 characters: lowercase letters, digits, "
              "dots and hyphens, starting and ending with a letter or digit)")
TYPE_MSG = "Storage type must be STAGING or PERMANENT"
PATH_START = "Path must start with /"
PATH_LONG = "Path must be at most 200 characters"
PATH_CHARS = "Path may contain only letters, digits, '-', '_', '.', '~' and '/'"
PATH_SEGMENTS = "Path must not contain empty, '.' or '..' segments or end with /"


@pytest.fixture(scope="session")
def storage_direct(services):
    return services["storage"].ensure()


@pytest.fixture
def storage(storage_direct, route):
    """The Storage Service, directly or through the gateway."""
    return via(storage_direct, route)


@pytest.fixture(scope="session")
def s3():
    if not os.environ.get("S3_ENDPOINT"):
        pytest.fail("S3_ENDPOINT is not set: export what `scripts/stack.sh env` prints")
    return boto3.client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ.get("S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        config=boto3.session.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                    connect_timeout=2, read_timeout=5))


def bucket_exists(s3, name):
    try:
        s3.head_bucket(Bucket=name)
        return True
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


def new_bucket():
    return f"fm-test-{uuid.uuid4().hex[:16]}"


def body(storage_type="PERMANENT", bucket=None, path="/files", **over):
    b = {"storageType": storage_type, "bucket": new_bucket() if bucket is None else bucket, "path": path}
    b.update(over)
    return b


def listing(storage):
    r = storage.get("/storages")
    assert r.status_code == 200, r.text
    return r.json()


def seeded(storages):
    """The seeded storages of each type (by their configured bucket and path)."""
    return {t: [s for s in storages if (s["storageType"], s["bucket"], s["path"]) == (t, b, p)]
            for t, b, p in (("STAGING", STAGING_BUCKET, STAGING_PATH), ("PERMANENT", PERMANENT_BUCKET, PERMANENT_PATH))}


# ---- seeding ----

def test_seeded_storages_listed_once(storage):
    got = listing(storage)
    s = seeded(got)
    assert len(s["STAGING"]) == 1 and len(s["PERMANENT"]) == 1, got
    assert STAGING_BUCKET != PERMANENT_BUCKET


def test_seeded_buckets_exist(storage_direct, s3):
    assert bucket_exists(s3, STAGING_BUCKET)
    assert bucket_exists(s3, PERMANENT_BUCKET)


def test_restarts_create_nothing_twice(services):
    svc = services["storage"].ensure()
    before = listing(svc)
    for _ in range(2):
        svc.stop()
        svc.start()
        assert listing(svc) == before


def test_seeds_recreated_when_absent(services, s3):
    """Deleting every storage of both types and restarting gives exactly one of each again."""
    svc = services["storage"].ensure()
    ids = [s["id"] for s in listing(svc)]
    for i in range(0, len(ids), 20):
        assert svc.delete("/storages?id=" + ",".join(map(str, ids[i:i + 20]))).status_code == 200
    assert listing(svc) == []
    svc.stop()
    svc.start()
    got = listing(svc)
    assert [(s["storageType"], s["bucket"], s["path"]) for s in got] == [
        ("STAGING", STAGING_BUCKET, STAGING_PATH), ("PERMANENT", PERMANENT_BUCKET, PERMANENT_PATH)]
    svc.stop()
    svc.start()
    assert listing(svc) == got
    assert bucket_exists(s3, STAGING_BUCKET) and bucket_exists(s3, PERMANENT_BUCKET)


# ---- POST /storages ----

def test_create_list_roundtrip(storage, s3):
    b = body("STAGING", path="/uploads/in")
    r = storage.post("/storages", json=b)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert list(r.json()) == ["id"] and isinstance(r.json()["id"], int)
    i = r.json()["id"]
    mine = [s for s in listing(storage) if s["id"] == i]
    assert mine == [{"id": i, **b}]
    assert bucket_exists(s3, b["bucket"]), "creating a storage creates its bucket"


def test_list_shape_and_order(storage):
    for _ in range(3):
        assert storage.post("/storages", json=body()).status_code == 200
    r = storage.get("/storages")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    got = r.json()
    assert isinstance(got, list) and len(got) >= 5
    assert [s["id"] for s in got] == sorted(s["id"] for s in got)
    for s in got:
        assert list(s) == ["id", "storageType", "bucket", "path"]
        assert isinstance(s["id"], int)
        assert s["storageType"] in ("STAGING", "PERMANENT")


def test_duplicate_bucket_and_path_is_409(storage):
    b = body()
    assert storage.post("/storages", json=b).status_code == 200
    n = len(listing(storage))
    assert_error(storage.post("/storages", json=body("STAGING", b["bucket"], b["path"])), 409,
                 f"Storage with bucket '{b['bucket']}' and path '{b['path']}' already exists")
    assert len(listing(storage)) == n


def test_same_bucket_other_path_is_fine(storage):
    b = body()
    assert storage.post("/storages", json=b).status_code == 200
    assert storage.post("/storages", json=body(bucket=b["bucket"], path="/other")).status_code == 200
    assert storage.post("/storages", json=body(bucket=new_bucket(), path=b["path"])).status_code == 200


def test_racing_posts_one_wins(storage):
    b = body()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: storage.post("/storages", json=b).status_code, range(16)))
    assert sorted(codes) == [200] + [409] * 15
    assert len([s for s in listing(storage) if s["bucket"] == b["bucket"]]) == 1


def test_contract_example_bucket_is_not_a_valid_s3_name(storage):
    # The contract's example "bucket_name" has an underscore, which S3 refuses.
    r = storage.post("/storages", json={"storageType": "PERMANENT", "bucket": "bucket_name", "path": "/files"})
    assert_validation(r, {"bucket": BUCKET_MSG})


def test_missing_fields_all_reported(storage):
    assert_validation(storage.post("/storages", json={}), {
        "storageType": "Storage type is required", "bucket": "Bucket is required", "path": "Path is required"})


def test_nulls_count_as_missing(storage):
    assert_validation(storage.post("/storages", json={"storageType": None, "bucket": None, "path": None}), {
        "storageType": "Storage type is required", "bucket": "Bucket is required", "path": "Path is required"})


@pytest.mark.parametrize("field,value,message", [
    ("storageType", "staging", TYPE_MSG),
    ("storageType", "Permanent", TYPE_MSG),
    ("storageType", "", TYPE_MSG),
    ("storageType", "ARCHIVE", TYPE_MSG),
    ("storageType", " STAGING", TYPE_MSG),
    ("bucket", "Bucket", BUCKET_MSG),             # uppercase
    ("bucket", "ab", BUCKET_MSG),                 # too short
    ("bucket", "a" * 64, BUCKET_MSG),             # too long
    ("bucket", "my_bucket", BUCKET_MSG),          # underscore
    ("bucket", "192.168.1.10", BUCKET_MSG),       # IP-like
    ("bucket", "-bucket", BUCKET_MSG),
    ("bucket", "bucket-", BUCKET_MSG),
    ("bucket", "my..bucket", BUCKET_MSG),
    ("bucket", "xn--bucket", BUCKET_MSG),
    ("bucket", "my bucket", BUCKET_MSG),
    ("bucket", "", BUCKET_MSG),
    ("path", "files", PATH_START),
    ("path", "", PATH_START),
    ("path", "files/", PATH_START),
    ("path", "/" + "x" * 200, PATH_LONG),
    ("path", "/my files", PATH_CHARS),
    ("path", "/a\tb", PATH_CHARS),
    ("path", "/caf\u00e9", PATH_CHARS),
    ("path", "/a?b", PATH_CHARS),
    ("path", "/files/", PATH_SEGMENTS),
    ("path", "//files", PATH_SEGMENTS),
    ("path", "/a/../b", PATH_SEGMENTS),
    # wrong JSON types
    ("storageType", 1, TYPE_MSG),
    ("storageType", ["STAGING"], TYPE_MSG),
    ("storageType", True, TYPE_MSG),
    ("bucket", 123, BUCKET_MSG),
    ("bucket", {"name": "abc"}, BUCKET_MSG),
    ("path", 5, PATH_START),
    ("path", ["/files"], PATH_START),
    ("path", False, PATH_START),
])
def test_invalid_field(storage, s3, field, value, message):
    b = body(**{field: value})
    n = len(listing(storage))
    assert_validation(storage.post("/storages", json=b), {field: message})
    assert len(listing(storage)) == n  # nothing was stored
    if field != "bucket":
        assert not bucket_exists(s3, b["bucket"])  # nor a bucket created


@pytest.mark.parametrize("field,value", [
    ("bucket", "abc"), ("bucket", "a" * 63), ("bucket", "my.bucket.1"), ("bucket", "0-9"),
    ("path", "/"), ("path", "/" + "x" * 199), ("path", "/a/b/c"), ("path", "/A-Z_a.z~0"),
])
def test_boundary_values_accepted(storage, s3, field, value):
    b = body(**{field: value})
    if field == "bucket":
        # the same bucket may come back on a rerun: make path unique instead
        b["path"] = "/" + uuid.uuid4().hex
    r = storage.post("/storages", json=b)
    assert r.status_code == 200, r.text
    assert {"id": r.json()["id"], **b} in listing(storage)
    assert bucket_exists(s3, b["bucket"])


def test_several_invalid_fields_at_once(storage):
    assert_validation(storage.post("/storages", json={"storageType": "X", "bucket": "B_", "path": "x"}),
                      {"storageType": TYPE_MSG, "bucket": BUCKET_MSG, "path": PATH_START})


def test_unknown_keys_ignored(storage):
    b = body(id=2147483000, extra="x")
    r = storage.post("/storages", json=b)
    assert r.status_code == 200
    i = r.json()["id"]
    assert i != 2147483000
    assert [s for s in listing(storage) if s["id"] == i] == [
        {"id": i, "storageType": b["storageType"], "bucket": b["bucket"], "path": b["path"]}]


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"bucket": "abc",}', b"\xff\xfe",
                                 b'{"path": "\\ud800"}'])
def test_malformed_json_is_400(storage, raw):
    r = storage.post("/storages", data=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_nul_in_path_is_400(storage):
    # the JSON parser itself refuses NUL inside strings: a plain 400, nothing stored
    n = len(listing(storage))
    r = storage.post("/storages", data=b'{"storageType":"STAGING","bucket":"abc-nul","path":"/a\\u0000b"}',
                     headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert len(listing(storage)) == n


@pytest.mark.parametrize("raw", [b"[]", b"5", b'"text"', b"null"])
def test_non_object_json_is_400(storage, raw):
    r = storage.post("/storages", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["errorCode"] == "400"
    assert set(r.json()) <= {"errorMessage", "details", "errorCode"}


def test_wrong_content_type_is_415(storage):
    r = storage.post("/storages", data=json.dumps(body()), headers={"Content-Type": "text/plain"})
    assert_error(r, 415)


def test_body_too_large_is_413(storage):
    assert_error(storage.post("/storages", json=body(path="/" + "x" * 100_000)), 413)


# ---- DELETE /storages ----

def test_delete_in_request_order_ignoring_unknown(storage, s3):
    a = storage.post("/storages", json=body()).json()["id"]
    b_body = body()
    b = storage.post("/storages", json=b_body).json()["id"]
    missing = 2147483647
    r = storage.delete(f"/storages?id={b},{missing},{a},{b}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"ids": [b, a]}
    assert not [s for s in listing(storage) if s["id"] in (a, b)]
    assert storage.delete(f"/storages?id={a}").json() == {"ids": []}
    assert bucket_exists(s3, b_body["bucket"]), "buckets are kept: they may hold objects"
    # the same bucket+path can be created again once deleted
    assert storage.post("/storages", json=b_body).status_code == 200


def test_delete_csv_rules(storage):
    long_csv = ",".join(["1234567"] * 26) + "1"
    assert len(long_csv) == 208
    assert_error(storage.delete(f"/storages?id={long_csv}"), 400,
                 "CSV string is too long: received 208 characters, maximum allowed is 200")
    assert_error(storage.delete("/storages?id=1,V,3"), 400, "Invalid ID format: 'V'. Only positive integers are allowed")
    assert_error(storage.delete("/storages?id=1,-2"), 400, "Invalid ID format: '-2'. Only positive integers are allowed")
    assert_error(storage.delete("/storages?id=0"), 400, "Invalid ID format: '0'. Only positive integers are allowed")
    assert_error(storage.delete("/storages?id=1.5"), 400, "Invalid ID format: '1.5'. Only positive integers are allowed")
    assert_error(storage.delete("/storages?id=2147483648"), 400)
    assert_error(storage.delete("/storages"), 400)
    assert_error(storage.delete("/storages?id="), 400)


def test_delete_of_invalid_list_deletes_nothing(storage):
    a = storage.post("/storages", json=body()).json()["id"]
    assert_error(storage.delete(f"/storages?id={a},x"), 400)
    assert [s for s in listing(storage) if s["id"] == a]


# ---- the rest ----

def test_unknown_route_and_method(storage):
    assert_error(storage.get("/nothing-here"), 404)
    assert_error(storage.get("/storages/1"), 404)
    assert_error(requests.put(storage.url + "/storages", json={}, timeout=5), 405)
    assert_error(requests.patch(storage.url + "/storages", json={}, timeout=5), 405)


def test_health_shows_db_and_object_store(storage_direct):
    # an earlier module restarted the object store: the bucket keeper's next round finds it
    wait_until(lambda: storage_direct.get("/actuator/health").status_code == 200, timeout=30, message="health 200")
    r = storage_direct.get("/actuator/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "UP"
    assert h["components"]["db"]["status"] == "UP"
    assert h["components"]["objectStore"]["status"] == "UP"
    assert h["components"]["objectStore"]["details"]["buckets"] >= 2


def test_prometheus_metrics(storage_direct):
    storage_direct.get("/storages")
    r = storage_direct.get("/actuator/prometheus")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "http_server_requests_seconds" in r.text
    assert 'uri="/storages"' in r.text


def test_no_credentials_in_log(storage_direct):
    log = storage_direct.log()
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    assert "AWS_SECRET_ACCESS_KEY" not in log
    if len(secret) > 4:
        assert secret not in log
    assert "Credential=" not in log and "Signature=" not in log
