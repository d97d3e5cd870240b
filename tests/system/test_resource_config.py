"""The Resource Service as the deployment files configure it (issue 18):

- it takes the bucket variables Compose and Kubernetes give it (STORAGE_STAGING_BUCKET,
  STORAGE_PERMANENT_BUCKET): its stub storages, used while the Storage Service is out of
  reach, and its health probe aim at those buckets, not at a global AWS bucket of the
  built-in name;
- its health check answers within the 2 s an orchestrator's probe waits even when every
  request to the object store is slow (each takes 0.7 s): a slow store is DOWN, not a
  probe timeout.
"""
import http.server
import os
import threading
import time
import uuid

import boto3
import requests

from conftest import PRIVATE_PORT_BASE, wait_until
from mp3gen import make_mp3
from nativesvc import NativeService

PORT = PRIVATE_PORT_BASE + 810


def resource_env(**over):
    env = {
        "SERVER_PORT": str(PORT),
        "RESOURCE_DB_URL": os.environ["RESOURCE_DB_URL"],
        "AMQP_URL": os.environ["AMQP_URL"],
        "S3_ENDPOINT": os.environ["S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        # nothing listens there: the breaker's fallback (the stub storages) decides
        "STORAGE_SERVICE_URL": "http://127.0.0.1:1",
        "SONG_SERVICE_URL": "http://127.0.0.1:1",
    }
    env.update(over)
    return env


def object_store(name):
    comp = name.get("components", {}).get("objectStore", {})
    return comp.get("status"), comp.get("details", {}).get("error")


def test_stub_storages_and_health_use_the_storage_bucket_variables(tmp_path):
    tag = uuid.uuid4().hex[:10]
    staging, permanent = f"cfg-{tag}-staging", f"cfg-{tag}-permanent"
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    svc = NativeService("resource", resource_env(STORAGE_STAGING_BUCKET=staging, STORAGE_PERMANENT_BUCKET=permanent),
                        PORT, label="buckets").start()
    try:
        # the buckets do not exist yet: the probe names the missing one
        body = wait_until(lambda: svc.health().json() if svc.health().status_code == 503 else None,
                          timeout=30, message="resource answering health")
        assert object_store(body) == ("DOWN", "bucket missing"), body
        s3.create_bucket(Bucket=staging)
        s3.create_bucket(Bucket=permanent)
        svc.wait_healthy(timeout=30)
        r = requests.post(svc.url + "/resources", data=make_mp3(title=f"cfg {tag}"),
                          headers={"Content-Type": "audio/mpeg"}, timeout=30)
        assert r.status_code == 200, r.text
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=staging).get("Contents", [])]
        assert [k for k in keys if not k.startswith("fermata-health/")], \
            f"upload with the Storage Service unreachable did not land in {staging}: {keys}"
    finally:
        assert svc.stop() == 0, svc.log()[-3000:]


class SlowStore:
    """An 'object store' that answers every request correctly for the probe (the bucket is
    there, writes succeed) but takes `delay` seconds for each."""

    def __init__(self, delay):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                time.sleep(outer.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):
                self._answer(200)

            def do_PUT(self):
                self._answer(200)

            def do_DELETE(self):
                self._answer(204)

            def log_message(self, *a):
                pass

        self.delay = delay
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_health_answers_within_a_probe_timeout_when_the_store_is_slow():
    store = SlowStore(0.7)  # three probe requests: 2.1 s in all, past a 2 s probe
    svc = NativeService("resource", resource_env(S3_ENDPOINT=store.url), PORT, label="slowstore").start()
    try:
        wait_until(lambda: svc.proc.poll() is not None or svc.health(timeout=10).status_code in (200, 503),
                   timeout=30, message="resource answering")
        for _ in range(3):  # fresh probes (their results are cached for 2 s)
            time.sleep(2.1)
            r = svc.health(timeout=2)  # the kubelet's timeoutSeconds: 2
            assert r.status_code == 503 and object_store(r.json()) == ("DOWN", "object store unreachable"), r.text
    finally:
        store.close()
        assert svc.stop() == 0, svc.log()[-3000:]


def test_bad_broker_settings_stop_resource_and_processor_at_start():
    """lib/mq refuses bad URLs clearly: exit 2, the variable named (README: configuration)."""
    cases = [({"AMQP_URL": "amqpx://fermata@127.0.0.1:1/"}, "AMQP_URL"),
             ({"AMQP_URL": "amqps://fermata@localhost:1/", "AMQP_TLS_CA_FILE": "/nonexistent/ca.pem"}, "AMQP_TLS_CA_FILE"),
             ({"AMQP_PASSWORD": "x" * 200}, "AMQP_PASSWORD")]
    for svc in ("resource", "processor"):
        for over, var in cases:
            env = resource_env(**over) if svc == "resource" else {
                "SERVER_PORT": str(PORT), "AMQP_URL": os.environ["AMQP_URL"], **over}
            s = NativeService(svc, env, PORT, label="badamqp").start()
            try:
                rc = s.proc.wait(timeout=30)
            finally:
                s.stop()
            assert rc == 2 and "bad configuration" in s.log() and var in s.log(), (svc, over, rc, s.log()[-2000:])
