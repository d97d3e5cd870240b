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
* ``TestStreamIntegrity`` puts streamed bodies through ``FlipProxy``, which flips one byte on
  the way: the store must refuse the body (the trailing checksum), unless the client sends
  UNSIGNED-PAYLOAD (``S3_CHECKSUM=none``), which shows the proxy really damages the bytes.
* ``TestMultipart``: multipart uploads, their listing and aborting, UploadPartCopy.
"""

import hashlib
import json
import os
import random
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import boto3
import botocore.exceptions
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(ROOT, "scripts", "stack.sh")
S3_ERR_INVALID, S3_ERR_NOT_FOUND, S3_ERR_UNAVAILABLE, S3_ERR_DENIED, S3_ERR_RANGE = (
    -1, -3, -4, -5, -7)
S3_ERR_ABORTED, S3_ERR_IO = -9, -10
MIB = 1024 * 1024


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


def run_lines(env, *args, timeout=60):
    """Runs the driver; returns all its JSON lines (mpu-list prints the uploads first)."""
    full = dict(os.environ)
    full.update(env)
    p = subprocess.run([driver_path(), *args], env=full, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode in (0, 1), f"driver usage/config error {p.returncode}: {p.stderr}"
    return [json.loads(line) for line in p.stdout.strip().splitlines()]


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


class FlipProxy:
    """A TCP relay to the store that flips one byte of what the client sends, `offset` bytes
    into the body of each request (counted from the end of its headers)."""

    def __init__(self, port, offset):
        self.target, self.offset, self.flipped = ("127.0.0.1", port), offset, 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _up(self, src, dst):
        head, body = b"", None  # one request per connection is all the driver makes
        try:
            while data := src.recv(65536):
                start = 0
                if body is None:
                    head += data
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    data, start, body = head, end + 4, 0
                pos = start + self.offset - body
                if start <= pos < len(data):
                    data = data[:pos] + bytes([data[pos] ^ 1]) + data[pos + 1:]
                    self.flipped += 1
                body += len(data) - start
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._shut(dst)

    def _pipe(self, src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._shut(dst)

    @staticmethod
    def _shut(sock):
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.srv.close()


@pytest.fixture
def flip(env):
    port = int(env["S3_ENDPOINT"].rsplit(":", 1)[1])
    proxy = FlipProxy(port, 100_000)  # in the second 64 KiB chunk's data
    yield proxy
    proxy.close()


class TestStreamIntegrity:
    @pytest.mark.parametrize("checksum", ["crc32c", "sha256", "none"])
    def test_streamed_put_identical_in_every_mode(self, env, s3, bucket, tmp, checksum):
        for size in (0, 1, 65536, 65537, 300_001):
            data = os.urandom(size)
            key = f"modes/{checksum}-{size}"
            run(dict(env, S3_CHECKSUM=checksum), "put-file", bucket, key, write(tmp, "in", data), expect_rc=0)
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data

    @pytest.mark.parametrize("checksum", ["crc32c", "sha256"])
    def test_store_refuses_a_streamed_body_damaged_on_the_way(self, env, s3, bucket, tmp, flip, checksum):
        old, new = os.urandom(1000), os.urandom(1 * MIB)
        run(env, "put", bucket, f"flip/{checksum}", write(tmp, "old", old), expect_rc=0)
        res = run(dict(env, S3_ENDPOINT=f"http://127.0.0.1:{flip.port}", S3_CHECKSUM=checksum),
                  "put-file", bucket, f"flip/{checksum}", write(tmp, "in", new))
        assert flip.flipped == 1
        assert res["rc"] != 0 and (res["http_status"], res["s3_code"]) == (400, "BadDigest"), res
        # the store is as it was: the old object, not the damaged one
        assert s3.get_object(Bucket=bucket, Key=f"flip/{checksum}")["Body"].read() == old

    def test_unsigned_payload_stores_the_damage(self, env, s3, bucket, tmp, flip):
        # what the refusal above is worth: without the checksum the store takes the bytes
        data = os.urandom(1 * MIB)
        run(dict(env, S3_ENDPOINT=f"http://127.0.0.1:{flip.port}", S3_CHECKSUM="none"),
            "put-file", bucket, "flip/unsigned", write(tmp, "in", data), expect_rc=0)
        assert flip.flipped == 1
        stored = s3.get_object(Bucket=bucket, Key="flip/unsigned")["Body"].read()
        assert len(stored) == len(data) and stored != data

    def test_store_refuses_a_damaged_part(self, env, s3, bucket, tmp, flip):
        uid = run(env, "mpu-create", bucket, "flip/part", expect_rc=0)["upload_id"]
        res = run(dict(env, S3_ENDPOINT=f"http://127.0.0.1:{flip.port}"),
                  "mpu-part", bucket, "flip/part", uid, "1", write(tmp, "in", os.urandom(6 * MIB)))
        assert flip.flipped == 1 and (res["http_status"], res["s3_code"]) == (400, "BadDigest"), res
        assert s3.list_parts(Bucket=bucket, Key="flip/part", UploadId=uid).get("Parts", []) == []
        run(env, "mpu-abort", bucket, "flip/part", uid, expect_rc=0)

    def test_slow_stream_is_not_cut_by_the_request_timeout(self, env, s3, bucket, tmp):
        # 6 reads 300 ms apart: 1.8 s for a body, against a 1 s request timeout
        data = os.urandom(120_000)
        res = run(dict(env, S3_TIMEOUT_MS="1000"), "put-slow", bucket, "slow/one",
                  write(tmp, "in", data), "20000", "300", expect_rc=0)
        assert res["seconds"] > 1.5, res
        assert s3.get_object(Bucket=bucket, Key="slow/one")["Body"].read() == data

    def test_stalled_stream_fails_on_the_low_speed_limit(self, env, s3, bucket, tmp):
        # one byte every 1.5 s is under 1 byte/s: the call gives up (curl averages the speed
        # over a few seconds, so it takes longer than the 1 s limit itself)
        res = run(dict(env, S3_TIMEOUT_MS="1000"), "put-slow", bucket, "slow/stalled",
                  write(tmp, "in", os.urandom(1000)), "1", "1500", expect_rc=S3_ERR_UNAVAILABLE)
        assert "too slow" in res["stderr"] and res["seconds"] < 30, res
        with pytest.raises(botocore.exceptions.ClientError):
            s3.head_object(Bucket=bucket, Key="slow/stalled")


def uploads(env, bucket, prefix, *extra):
    lines = run_lines(env, "mpu-list", bucket, prefix, *extra)
    return lines[-2]["uploads"], lines[-1]


class TestMultipart:
    @pytest.mark.parametrize("checksum", ["crc32c", "sha256", "none"])
    def test_three_parts_read_back_identical(self, env, s3, bucket, tmp, checksum):
        data = os.urandom(2 * 5 * MIB + 123_457)
        res = run(dict(env, S3_CHECKSUM=checksum), "mpu-upload", bucket, "mp/three", write(tmp, "in", data),
                  str(5 * MIB), expect_rc=0)
        assert res["parts"] == 3
        obj = s3.get_object(Bucket=bucket, Key="mp/three")
        assert obj["Body"].read() == data
        assert obj["ETag"].strip('"').endswith("-3") and obj["ContentType"] == "audio/mpeg"
        out = str(tmp / "out")
        run(env, "get", bucket, "mp/three", out, expect_rc=0)
        assert open(out, "rb").read() == data
        assert uploads(env, bucket, "mp/three")[0] == []  # completed: nothing left over

    def test_list_finds_an_unfinished_upload_and_abort_removes_it(self, env, s3, bucket, tmp):
        uid = run(env, "mpu-create", bucket, "mp/open/a", expect_rc=0)["upload_id"]
        run(env, "mpu-part", bucket, "mp/open/a", uid, "1", write(tmp, "in", os.urandom(1000)), expect_rc=0)
        theirs = s3.create_multipart_upload(Bucket=bucket, Key="mp/open/b")["UploadId"]
        found, res = uploads(env, bucket, "mp/open/")
        assert res["rc"] == 0
        assert sorted((u["key"], u["upload_id"]) for u in found) == [("mp/open/a", uid), ("mp/open/b", theirs)]
        run(env, "mpu-abort", bucket, "mp/open/a", uid, expect_rc=0)
        run(env, "mpu-abort", bucket, "mp/open/b", theirs, expect_rc=0)
        run(env, "mpu-abort", bucket, "mp/open/a", uid, expect_rc=0)  # again: idempotent
        assert uploads(env, bucket, "mp/open/")[0] == []
        assert s3.list_multipart_uploads(Bucket=bucket, Prefix="mp/open/").get("Uploads", []) == []

    def test_list_follows_pages_and_stops_when_asked(self, env, s3, bucket):
        made = {s3.create_multipart_upload(Bucket=bucket, Key=f"mp/many/{i % 7}/{i:03d}")["UploadId"]
                for i in range(130)}  # more than one page of 100
        found, res = uploads(env, bucket, "mp/many/")
        assert res["rc"] == 0 and {u["upload_id"] for u in found} == made and len(found) == 130
        found, res = uploads(env, bucket, "mp/many/", "3")
        assert res["rc"] == S3_ERR_ABORTED and len(found) == 3
        for u in uploads(env, bucket, "mp/many/")[0]:
            run(env, "mpu-abort", bucket, u["key"], u["upload_id"], expect_rc=0)
        assert uploads(env, bucket, "mp/many/")[0] == []

    def test_complete_with_a_wrong_etag_fails(self, env, s3, bucket, tmp):
        uid = run(env, "mpu-create", bucket, "mp/wrong", expect_rc=0)["upload_id"]
        part = run(env, "mpu-part", bucket, "mp/wrong", uid, "1", write(tmp, "in", os.urandom(1000)), expect_rc=0)
        assert part["etag"]
        assert part["checksum"]  # the upload was created with CRC32C: complete must name it
        res = run(env, "mpu-complete", bucket, "mp/wrong", uid, f"1:{'0' * 32}:{part['checksum']}",
                  expect_rc=S3_ERR_INVALID)
        assert res["s3_code"] == "InvalidPart"
        res = run(env, "mpu-complete", bucket, "mp/wrong", uid, f"1:{part['etag']}")  # without the checksum
        assert res["rc"] != 0 and res["http_status"] == 400, res
        with pytest.raises(botocore.exceptions.ClientError):
            s3.head_object(Bucket=bucket, Key="mp/wrong")
        run(env, "mpu-complete", bucket, "mp/wrong", uid, f"1:{part['etag']}:{part['checksum']}",
            expect_rc=0)  # the right one works
        assert s3.head_object(Bucket=bucket, Key="mp/wrong")["ContentLength"] == 1000

    def test_a_failing_read_mid_part_leaves_no_part(self, env, s3, bucket, tmp):
        uid = run(env, "mpu-create", bucket, "mp/fail", expect_rc=0)["upload_id"]
        data = os.urandom(6 * MIB)
        path = write(tmp, "in", data)
        res = run(env, "mpu-part", bucket, "mp/fail", uid, "1", path, str(3 * MIB), expect_rc=S3_ERR_IO)
        assert res["http_status"] == 0
        assert s3.list_parts(Bucket=bucket, Key="mp/fail", UploadId=uid).get("Parts", []) == []
        assert [u["upload_id"] for u in uploads(env, bucket, "mp/fail")[0]] == [uid]  # the upload is as it was
        part = run(env, "mpu-part", bucket, "mp/fail", uid, "1", path, expect_rc=0)
        run(env, "mpu-complete", bucket, "mp/fail", uid, f"1:{part['etag']}:{part['checksum']}", expect_rc=0)
        assert s3.get_object(Bucket=bucket, Key="mp/fail")["Body"].read() == data

    def test_copy_sized_by_parts_is_identical(self, env, s3, bucket, tmp):
        data = os.urandom(2 * 5 * MIB + 999)
        s3.put_object(Bucket=bucket, Key="cp/src", Body=data, ContentType="audio/mpeg")
        run(env, "copy-sized", bucket, "cp/src", bucket, "cp/dst", str(len(data)), str(MIB), str(5 * MIB),
            expect_rc=0)
        obj = s3.get_object(Bucket=bucket, Key="cp/dst")
        assert obj["Body"].read() == data
        assert obj["ETag"].strip('"').endswith("-3")  # three UploadPartCopy pieces, not CopyObject
        assert obj["ContentType"] == "audio/mpeg"
        assert uploads(env, bucket, "cp/")[0] == []
        # at or under single_max it is one CopyObject
        run(env, "copy-sized", bucket, "cp/src", bucket, "cp/one", str(len(data)), str(len(data)), str(5 * MIB),
            expect_rc=0)
        obj = s3.get_object(Bucket=bucket, Key="cp/one")
        assert obj["Body"].read() == data and "-" not in obj["ETag"]

    def test_copy_sized_failure_leaves_no_upload(self, env, s3, bucket):
        data = os.urandom(3 * MIB)
        s3.put_object(Bucket=bucket, Key="cp/small-src", Body=data)
        # 1 MiB pieces are under the store's 5 MiB minimum: complete fails, the upload is aborted
        res = run(env, "copy-sized", bucket, "cp/small-src", bucket, "cp/small-dst", str(len(data)), "1000",
                  str(MIB), expect_rc=S3_ERR_INVALID)
        assert res["s3_code"] == "EntityTooSmall"
        assert uploads(env, bucket, "cp/small-dst")[0] == []
        run(env, "copy-sized", bucket, "cp/missing", bucket, "cp/x", "20000000", "1000", str(5 * MIB),
            expect_rc=S3_ERR_NOT_FOUND)
        assert uploads(env, bucket, "cp/x")[0] == []


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
        # the multipart calls' query strings, and UploadPartCopy (signed by lib/s3, not curl)
        big = os.urandom(5 * MIB + 1000)
        run(env, "mpu-upload", "signed", "m/p", write(tmp, "big", big), str(5 * MIB), expect_rc=0)
        run(env, "copy-sized", "signed", "m/p", "signed", "m/q", str(len(big)), "1000", str(5 * MIB), expect_rc=0)
        assert boto(env).get_object(Bucket="signed", Key="m/q")["Body"].read() == big
        uid = run(env, "mpu-create", "signed", "m/open", expect_rc=0)["upload_id"]
        assert [u["upload_id"] for u in uploads(env, "signed", "m/")[0]] == [uid]
        run(env, "mpu-abort", "signed", "m/open", uid, expect_rc=0)
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
