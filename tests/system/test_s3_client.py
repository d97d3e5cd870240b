"""lib/s3 against a real S3 server, checked with a separate client (boto3).

The C side runs through ``tests/tools/s3_driver`` (built with lib/s3: ``s3_driver`` in
``$FERMATA_BUILD_DIR/lib/s3``, default ``build/debug``), one operation per process, which
prints one JSON line.

* ``TestAgainstStack`` uses the stack's object store: ``S3_ENDPOINT``, ``S3_REGION``,
  ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` as printed by ``scripts/stack.sh env``.
* ``TestPrivateStore`` starts a second versitygw through ``scripts/stack.sh start s3`` (own
  data directory, port and credentials): it checks every SigV4 signature; then it is
  SIGKILLed, to see the client fail fast and the objects still there after its restart.
* ``TestStoreDown`` needs no server: a closed port and a port that accepts but never answers.
"""

import hashlib
import json
import os
import random
import socket
import subprocess
import tempfile
import time
import uuid

import boto3
import botocore.exceptions
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(ROOT, "scripts", "stack.sh")
S3_ERR_INVALID, S3_ERR_NOT_FOUND, S3_ERR_UNAVAILABLE, S3_ERR_DENIED, S3_ERR_RANGE = (
    -1, -3, -4, -5, -7)


def driver_path():
    path = os.environ.get("S3_DRIVER") or os.path.join(
        os.environ.get("FERMATA_BUILD_DIR", os.path.join(ROOT, "build", "debug")),
        "tests", "tools", "s3_driver")
    if not os.access(path, os.X_OK):
        pytest.fail(f"s3_driver not found at {path}: build it (make build, or cmake --build "
                    "<dir> --target s3_driver) and set FERMATA_BUILD_DIR or S3_DRIVER")
    return path


def stack_env():
    if not os.environ.get("S3_ENDPOINT"):
        pytest.fail("S3_ENDPOINT is not set: start the stack (scripts/stack.sh start s3) and "
                    "export what `scripts/stack.sh env` prints, e.g. "
                    "S3_ENDPOINT=http://127.0.0.1:29000")
    return {
        "S3_ENDPOINT": os.environ["S3_ENDPOINT"],
        "S3_REGION": os.environ.get("S3_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    }


def run(env, *args, expect_rc=None, timeout=60):
    """Runs the driver; returns its JSON result (rc, err, http_status, s3_code, ...)."""
    full = dict(os.environ)
    full.update(env)
    p = subprocess.run([driver_path(), *args], env=full, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode in (0, 1), f"driver usage/config error {p.returncode}: {p.stderr}"
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["stderr"] = p.stderr
    if expect_rc is not None:
        assert res["rc"] == expect_rc, res
        assert (p.returncode == 0) == (expect_rc == 0)
    return res


def boto(env):
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name=env["S3_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        config=boto3.session.Config(s3={"addressing_style": "path"}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_below_32768():
    """A free port outside Linux's ephemeral range, for a server that is restarted: a port
    inside it may be taken meanwhile by some outgoing connection's local end."""
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 32768")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def env():
    return stack_env()


@pytest.fixture(scope="module")
def s3(env):
    return boto(env)


@pytest.fixture(scope="module")
def bucket(env):
    name = unique("s3c")
    run(env, "create-bucket", name, expect_rc=0)
    return name


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def write(tmp, name, data):
    path = tmp / name
    path.write_bytes(data)
    return str(path)


class TestAgainstStack:
    def test_create_bucket_twice_is_idempotent(self, env, s3):
        name = unique("twice")
        assert run(env, "exists", name, expect_rc=0)["exists"] is False
        run(env, "create-bucket", name, expect_rc=0)
        run(env, "create-bucket", name, expect_rc=0)
        s3.head_bucket(Bucket=name)  # really there, seen by another client
        assert run(env, "exists", name, expect_rc=0)["exists"] is True

    def test_invalid_bucket_name_refused_locally(self, env):
        run(env, "create-bucket", "Bad_Name", expect_rc=S3_ERR_INVALID)

    @pytest.mark.parametrize("size", [0, 1, 1000, 5 * 1024 * 1024])
    @pytest.mark.parametrize("mode", ["put", "put-file"])
    def test_put_get_identical(self, env, s3, bucket, tmp, size, mode):
        data = os.urandom(size)
        key = f"objs/{mode}-{size}"
        run(env, mode, bucket, key, write(tmp, "in", data), expect_rc=0)
        # the other client sees exactly these bytes, with a plain MD5 ETag
        obj = s3.get_object(Bucket=bucket, Key=key)
        assert obj["Body"].read() == data
        assert obj["ETag"].strip('"') == hashlib.md5(data).hexdigest()
        # and so does our own streaming get
        out = str(tmp / "out")
        res = run(env, "get", bucket, key, out, expect_rc=0)
        assert open(out, "rb").read() == data
        assert res["http_status"] == 200 and res["content_length"] == size
        assert res["total_size"] == size and res["bytes"] == size
        assert res["info_before_body"] is True

    def test_put_with_the_callers_hash(self, env, s3, bucket, tmp):
        # the Resource Service hashes an upload once, for its checksum, and hands the hash on
        data = os.urandom(200_000)
        run(env, "put-hashed", bucket, "hashed/ok", write(tmp, "in", data), hashlib.sha256(data).hexdigest(),
            expect_rc=0)
        assert s3.get_object(Bucket=bucket, Key="hashed/ok")["Body"].read() == data
        # a hash that is not 64 lowercase hex digits never reaches the network
        for bad in ("", "abc", hashlib.sha256(data).hexdigest().upper()):
            run(env, "put-hashed", bucket, "hashed/bad", write(tmp, "in", data), bad, expect_rc=S3_ERR_INVALID)
        assert s3.list_objects_v2(Bucket=bucket, Prefix="hashed/bad").get("KeyCount", 0) == 0

    def test_store_refuses_a_body_that_does_not_match_its_signed_hash(self, env, s3, bucket, tmp):
        # what makes the signed payload hash worth sending: the store verifies it
        data = os.urandom(100_000)
        other = hashlib.sha256(b"something else").hexdigest()
        res = run(env, "put-hashed", bucket, "hashed/mismatch", write(tmp, "in", data), other)
        assert res["rc"] != 0 and res["http_status"] == 400, res
        assert res["s3_code"] in ("XAmzContentSHA256Mismatch", "BadDigest"), res
        assert s3.list_objects_v2(Bucket=bucket, Prefix="hashed/mismatch").get("KeyCount", 0) == 0

    def test_get_what_boto_put(self, env, s3, bucket, tmp):
        data = os.urandom(300_000)
        s3.put_object(Bucket=bucket, Key="from/boto", Body=data, ContentType="audio/mpeg")
        out = str(tmp / "out")
        res = run(env, "get", bucket, "from/boto", out, expect_rc=0)
        assert open(out, "rb").read() == data
        assert res["content_type"] == "audio/mpeg"

    def test_content_type_stored(self, env, s3, bucket, tmp):
        run(env, "put", bucket, "typed", write(tmp, "in", b"ID3"), "audio/mpeg", expect_rc=0)
        assert s3.head_object(Bucket=bucket, Key="typed")["ContentType"] == "audio/mpeg"

    @pytest.mark.parametrize("spec,sl", [
        ("0-0", slice(0, 1)),
        ("10-19", slice(10, 20)),
        ("1000-", slice(1000, None)),
        ("-7", slice(-7, None)),
        ("4090-999999", slice(4090, None)),  # last past the end: clipped, as HTTP says
    ])
    def test_ranges(self, env, bucket, tmp, spec, sl):
        data = os.urandom(4096)
        run(env, "put", bucket, "ranged", write(tmp, "in", data), expect_rc=0)
        out = str(tmp / "out")
        res = run(env, "get", bucket, "ranged", out, spec, expect_rc=0)
        assert open(out, "rb").read() == data[sl]
        assert res["http_status"] == 206
        assert res["total_size"] == 4096
        assert res["content_length"] == len(data[sl])

    def test_range_past_end_is_range_error(self, env, bucket, tmp):
        run(env, "put", bucket, "short", write(tmp, "in", b"0123456789"), expect_rc=0)
        res = run(env, "get", bucket, "short", str(tmp / "out"), "100-200",
                  expect_rc=S3_ERR_RANGE)
        assert res["http_status"] == 416
        assert os.path.getsize(tmp / "out") == 0  # no error document leaked into the sink

    def test_head(self, env, s3, bucket, tmp):
        data = os.urandom(12345)
        run(env, "put-file", bucket, "headme", write(tmp, "in", data), expect_rc=0)
        res = run(env, "head", bucket, "headme", expect_rc=0)
        theirs = s3.head_object(Bucket=bucket, Key="headme")
        assert res["content_length"] == 12345 == theirs["ContentLength"]
        assert res["etag"] == theirs["ETag"].strip('"') == hashlib.md5(data).hexdigest()
        assert res["content_type"] == "audio/mpeg"

    def test_copy_between_buckets(self, env, s3, bucket, tmp):
        other = unique("s3c-dst")
        run(env, "create-bucket", other, expect_rc=0)
        data = os.urandom(2 * 1024 * 1024 + 3)
        run(env, "put", bucket, "src/obj", write(tmp, "in", data), expect_rc=0)
        run(env, "copy", bucket, "src/obj", other, "dst/obj", expect_rc=0)
        assert s3.get_object(Bucket=other, Key="dst/obj")["Body"].read() == data
        # the source stays
        assert s3.head_object(Bucket=bucket, Key="src/obj")["ContentLength"] == len(data)

    def test_copy_missing_source_or_bucket(self, env, bucket):
        res = run(env, "copy", bucket, "no/such", bucket, "x", expect_rc=S3_ERR_NOT_FOUND)
        assert res["s3_code"] == "NoSuchKey"
        run(env, "copy", bucket, "no/such", unique("nobucket"), "x", expect_rc=S3_ERR_NOT_FOUND)

    def test_delete_is_idempotent(self, env, s3, bucket, tmp):
        run(env, "put", bucket, "del/me", write(tmp, "in", b"x"), expect_rc=0)
        run(env, "delete", bucket, "del/me", expect_rc=0)
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            s3.head_object(Bucket=bucket, Key="del/me")
        assert ei.value.response["Error"]["Code"] in ("404", "NoSuchKey")
        run(env, "delete", bucket, "del/me", expect_rc=0)
        run(env, "delete", unique("nobucket"), "del/me", expect_rc=0)

    def test_not_found(self, env, bucket, tmp):
        res = run(env, "get", bucket, "missing", str(tmp / "o"), expect_rc=S3_ERR_NOT_FOUND)
        assert (res["http_status"], res["s3_code"]) == (404, "NoSuchKey")
        assert "GET /" in res["stderr"]  # the log message names the request
        run(env, "head", bucket, "missing", expect_rc=S3_ERR_NOT_FOUND)
        res = run(env, "get", unique("nobucket"), "k", str(tmp / "o"),
                  expect_rc=S3_ERR_NOT_FOUND)
        assert res["s3_code"] == "NoSuchBucket"

    @pytest.mark.parametrize("key", ["a b", "a/../b", "/lead", "q?x", "pct%41"])
    def test_unsafe_keys_refused_locally(self, env, bucket, tmp, key):
        run(env, "put", bucket, key, write(tmp, "in", b"x"), expect_rc=S3_ERR_INVALID)

    def test_concurrent_use_of_one_client(self, env, bucket):
        res = run(env, "stress", bucket, "8", "25", timeout=120)
        assert res["rc"] == 0 and res["failures"] == 0, res
        print(f"stress: {res['ops']} ops in {res['seconds']} s")


class TestStoreDown:
    def test_connection_refused_is_unavailable_fast(self, tmp):
        env = {"S3_ENDPOINT": f"http://127.0.0.1:{free_port()}", "S3_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        for args in (["create-bucket", "bkt"], ["put", "bkt", "k", write(tmp, "in", b"x")],
                     ["get", "bkt", "k", str(tmp / "o")], ["head", "bkt", "k"],
                     ["copy", "bkt", "a", "bkt", "b"], ["delete", "bkt", "k"]):
            t0 = time.monotonic()
            res = run(env, *args, expect_rc=S3_ERR_UNAVAILABLE)
            assert time.monotonic() - t0 < 2.0
            assert res["http_status"] == 0

    def test_silent_server_times_out(self, tmp):
        # accepts connections (the kernel does, from the backlog) and never answers
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(16)
            env = {"S3_ENDPOINT": f"http://127.0.0.1:{srv.getsockname()[1]}",
                   "S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
                   "AWS_SECRET_ACCESS_KEY": "test", "S3_TIMEOUT_MS": "700"}
            t0 = time.monotonic()
            run(env, "get", "bkt", "k", str(tmp / "o"), expect_rc=S3_ERR_UNAVAILABLE)
            took = time.monotonic() - t0
            assert 0.6 < took < 3.0, took


class TestPrivateStore:
    """A private versitygw (own data directory, port and credentials) through
    scripts/stack.sh: signatures with other credentials, and objects surviving a SIGKILL."""

    @pytest.fixture(scope="class")
    def private(self):
        # under the test stack's data directory: the store's user must be able to reach it
        base = os.environ.get("FERMATA_DATA_DIR") or tempfile.gettempdir()
        data_dir = os.path.join(base, unique("s3-private"))
        port = free_port_below_32768()
        key, secret = "AK" + uuid.uuid4().hex[:18].upper(), uuid.uuid4().hex
        senv = dict(os.environ, FERMATA_DATA_DIR=data_dir, S3_PORT=str(port),
                    AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
        subprocess.run([STACK, "start", "s3"], env=senv, check=True, timeout=60)
        try:
            yield {"senv": senv,
                   "env": {"S3_ENDPOINT": f"http://127.0.0.1:{port}", "S3_REGION": "us-east-1",
                           "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}}
        finally:
            subprocess.run([STACK, "reset"], env=senv, timeout=60)

    def test_signatures_accepted(self, private, tmp):
        env = private["env"]
        data = os.urandom(3 * 1024 * 1024)  # large enough for curl's Expect: 100-continue
        run(env, "create-bucket", "signed", expect_rc=0)
        run(env, "create-bucket", "signed", expect_rc=0)
        run(env, "put", "signed", "a/b", write(tmp, "in", data), expect_rc=0)
        run(env, "put-hashed", "signed", "a/h", write(tmp, "in", data), hashlib.sha256(data).hexdigest(), expect_rc=0)
        run(env, "put-file", "signed", "a/c", write(tmp, "in", data), expect_rc=0)
        out = str(tmp / "out")
        run(env, "get", "signed", "a/b", out, "5-9", expect_rc=0)
        assert open(out, "rb").read() == data[5:10]
        run(env, "head", "signed", "a/c", expect_rc=0)
        run(env, "copy", "signed", "a/b", "signed", "a/d", expect_rc=0)
        run(env, "delete", "signed", "a/d", expect_rc=0)
        assert run(env, "exists", "signed", expect_rc=0)["exists"] is True
        assert boto(env).get_object(Bucket="signed", Key="a/c")["Body"].read() == data

    def test_wrong_credentials_denied(self, private, tmp):
        env = dict(private["env"], AWS_SECRET_ACCESS_KEY="wrong")
        res = run(env, "put", "signed", "x", write(tmp, "in", b"x"), expect_rc=S3_ERR_DENIED)
        assert res["s3_code"] == "SignatureDoesNotMatch"
        env = dict(private["env"], AWS_ACCESS_KEY_ID="AKIANOSUCHKEY0000000")
        # versitygw answers an unknown access key with 404 XAdminUserNotFound (AWS: 403
        # InvalidAccessKeyId); lib/s3 takes that code for what it is. A HEAD carries no
        # code, so it looks like a missing object there (docs/DEVELOPING.md).
        res = run(env, "get", "signed", "a/c", str(tmp / "o"), expect_rc=S3_ERR_DENIED)
        assert res["s3_code"] == "XAdminUserNotFound"

    def test_killed_store_is_unavailable_and_comes_back_with_its_objects(self, private, tmp):
        env, senv = private["env"], private["senv"]
        data = os.urandom(1024 * 1024 + 17)
        run(env, "create-bucket", "kept", expect_rc=0)
        run(env, "put", "kept", "files/one", write(tmp, "in", data), expect_rc=0)
        subprocess.run([STACK, "kill", "s3"], env=senv, check=True, timeout=30)
        st = subprocess.run([STACK, "status", "s3"], env=senv, capture_output=True, text=True)
        assert "down" in st.stdout
        t0 = time.monotonic()
        run(env, "head", "kept", "files/one", expect_rc=S3_ERR_UNAVAILABLE)
        assert time.monotonic() - t0 < 2.0
        subprocess.run([STACK, "start", "s3"], env=senv, check=True, timeout=60)
        out = str(tmp / "out")
        run(env, "get", "kept", "files/one", out, expect_rc=0)
        assert open(out, "rb").read() == data  # a directory of files: nothing lost
