"""The gateway (nginx, deploy/nginx/fermata.conf.template).

Two parts:

* ``TestStackGateway`` talks to the gateway of the running stack, ``GATEWAY_URL`` (printed
  by ``scripts/stack.sh env``): unknown routes, hidden actuator, request ids, and that
  each prefix reaches its service (an invalid id gets the service's own 400; the services
  are started through conftest's ``services`` fixture).
* ``TestPrivateGateway`` starts a second gateway of its own through
  ``scripts/stack.sh start gateway`` (own run directory, free ports) in front of echo
  servers run by this test and one port where nothing listens. That makes routing, byte
  for byte bodies, 502/504/413 and the actuator switch deterministic, whatever state the
  real services are in.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import openapi_recorder

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(ROOT, "scripts", "stack.sh")
NOT_FOUND = {"errorMessage": "Not found", "errorCode": "404"}


def gateway_url():
    url = os.environ.get("GATEWAY_URL")
    if not url:
        pytest.fail("GATEWAY_URL is not set: start the stack (scripts/stack.sh start) and "
                    "export what `scripts/stack.sh env` prints, e.g. "
                    "GATEWAY_URL=http://127.0.0.1:8080")
    return url.rstrip("/")


def assert_error(resp, status, message=None):
    """The contract's error shape, exactly."""
    assert resp.status_code == status, resp.text
    assert resp.headers.get("Content-Type") == "application/json"
    body = resp.json()
    assert set(body) <= {"errorMessage", "errorCode", "details"}, body
    assert body["errorCode"] == str(status)
    assert isinstance(body["errorMessage"], str) and body["errorMessage"]
    if message is not None:
        assert body["errorMessage"] == message
    assert "<html" not in resp.text.lower()
    return body


# --------------------------------------------------------------------------------------
# The stack's gateway
# --------------------------------------------------------------------------------------

class TestStackGateway:
    @pytest.mark.parametrize("path", ["/", "/nothing", "/resourcesX", "/song", "/storages-x",
                                      "/_fm_error/502", "/gateway"])
    @pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
    def test_unknown_route_is_404_json(self, path, method):
        resp = requests.request(method, gateway_url() + path, timeout=10)
        body = assert_error(resp, 404)
        assert body == NOT_FOUND

    @pytest.mark.parametrize("path", ["/actuator", "/actuator/health", "/actuator/prometheus",
                                      "/actuator/circuitbreakers"])
    def test_actuator_hidden(self, path):
        if os.environ.get("GATEWAY_EXPOSE_ACTUATOR", "0").lower() in ("1", "true", "yes", "on"):
            pytest.skip("the stack was started with GATEWAY_EXPOSE_ACTUATOR")
        resp = requests.get(gateway_url() + path, timeout=10)
        assert assert_error(resp, 404) == NOT_FOUND

    def test_own_health(self):
        resp = requests.get(gateway_url() + "/gateway/health", timeout=10)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.json() == {"status": "UP"}

    def test_request_id_generated(self):
        a = requests.get(gateway_url() + "/nothing", timeout=10).headers.get("X-Request-Id")
        b = requests.get(gateway_url() + "/nothing", timeout=10).headers.get("X-Request-Id")
        assert a and b and a != b

    def test_request_id_kept(self):
        resp = requests.get(gateway_url() + "/nothing", headers={"X-Request-Id": "test-rid-42"},
                            timeout=10)
        assert resp.headers.get("X-Request-Id") == "test-rid-42"

    def test_request_id_not_a_token_is_replaced(self):
        resp = requests.get(gateway_url() + "/nothing",
                            headers={"X-Request-Id": "has spaces <and> quotes\""}, timeout=10)
        rid = resp.headers.get("X-Request-Id")
        assert rid and " " not in rid

    @pytest.mark.parametrize("name,path", [("resource", "/resources/ABC"), ("song", "/songs/ABC")])
    def test_routed_to_service(self, services, name, path):
        """An invalid id is answered by the service itself (the gateway only knows 404)."""
        services[name].ensure()
        resp = requests.get(gateway_url() + path, timeout=10)
        if resp.status_code in (502, 503, 504):
            pytest.fail(f"{path}: the gateway cannot reach the {name} service: {resp.text}")
        assert_error(resp, 400, "Invalid value 'ABC' for ID. Must be a positive integer")

    def test_storages_routed(self, services):
        services["storage"].ensure()
        resp = requests.get(gateway_url() + "/storages", timeout=10)
        if resp.status_code in (502, 503, 504):
            pytest.fail(f"/storages: the gateway cannot reach the storage service: {resp.text}")
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert isinstance(resp.json(), list)


# --------------------------------------------------------------------------------------
# A private gateway in front of echo servers
# --------------------------------------------------------------------------------------

class _Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON describing what arrived. GET .../big?n=N answers N
    bytes instead; a request whose path holds "watch" sets the event watch_events[path]
    as soon as the first body bytes arrived (a streaming gateway passes them on before the
    client has sent the rest)."""
    protocol_version = "HTTP/1.1"
    name = "?"
    watch_events = {}

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
                self._seen(body)
        n = int(self.headers.get("Content-Length") or 0)
        body = b""
        while len(body) < n:
            part = self.rfile.read1(n - len(body))
            if not part:
                break
            body += part
            self._seen(body)
        return body

    def _seen(self, body):
        if "watch" in self.path and body and self.path in self.watch_events:
            self.watch_events[self.path].set()

    def _any(self):
        if "slow" in self.path:
            time.sleep(3)
        if "/big?n=" in self.path:
            n = int(self.path.rsplit("=", 1)[1])
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = b"\x55" * 65536
            for _ in range(n // len(block)):
                self.wfile.write(block)
            self.wfile.write(block[:n % len(block)])
            return
        body = self._read_body()
        out = json.dumps({
            "service": self.name, "method": self.command, "path": self.path,
            "requestId": self.headers.get("X-Request-Id"),
            "b3": self.headers.get("b3"), "traceparent": self.headers.get("traceparent"),
            "contentType": self.headers.get("Content-Type"),
            "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

    def log_message(self, *args):
        pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nginx_pids(run_dir):
    """The private gateway's master and its workers."""
    with open(os.path.join(run_dir, "nginx", "nginx.pid")) as f:
        master = int(f.read().strip())
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def _open_files_under(pids, directory):
    """Files below directory that the processes pids hold open (deleted ones too)."""
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(directory + "/"):
                found.append(target)
    return found


def _echo_server(name):
    handler = type(f"Echo_{name}", (_Echo,), {"name": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def private_gateway():
    if not os.path.exists(os.environ.get("NGINX_BIN", "/usr/sbin/nginx")):
        pytest.fail("nginx not installed (Debian nginx-light): run scripts/deps.sh")
    resource, song = _echo_server("resource"), _echo_server("song")
    # mkdtemp + 755: nginx workers run as nobody when the tests run as root.
    run_dir = tempfile.mkdtemp(prefix="fm-gw-test-")
    os.chmod(run_dir, 0o755)
    port = _free_port()
    env = dict(os.environ,
               FERMATA_DATA_DIR=run_dir, GATEWAY_PORT=str(port), GATEWAY_HOST="127.0.0.1",
               RESOURCE_PORT=str(resource.server_address[1]),
               SONG_PORT=str(song.server_address[1]),
               STORAGE_PORT=str(_free_port()),          # nothing listens there
               GATEWAY_MAX_BODY_SIZE="2m", GATEWAY_UPSTREAM_TIMEOUT="1s",
               GATEWAY_EXPOSE_ACTUATOR="0")
    subprocess.run([STACK, "start", "gateway"], env=env, check=True, timeout=60)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "run_dir": run_dir}
    finally:
        subprocess.run([STACK, "stop", "gateway"], env=env, timeout=60)
        resource.shutdown()
        song.shutdown()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def checked(private_gateway):
    """The private gateway's own answers (errors, unknown routes) are checked against
    docs/openapi.yaml like the stack's; its echo servers' answers are not the API, so only
    tests that see no echo answer ask for this."""
    with openapi_recorder.watching(private_gateway["url"], "gateway"):
        yield private_gateway


class TestPrivateGateway:
    @pytest.mark.parametrize("method,path,service", [
        ("GET", "/resources/1", "resource"),
        ("GET", "/resources/ABC", "resource"),
        ("DELETE", "/resources?id=1,2,3", "resource"),
        ("POST", "/resources", "resource"),
        ("GET", "/songs/7", "song"),
        ("DELETE", "/songs?id=1%2C2", "song"),
        ("POST", "/songs", "song"),
        ("PUT", "/songs/1", "song"),
    ])
    def test_routing_keeps_method_path_and_query(self, private_gateway, method, path, service):
        resp = requests.request(method, private_gateway["url"] + path, timeout=10)
        assert resp.status_code == 200, resp.text
        seen = resp.json()
        assert seen["service"] == service
        assert seen["method"] == method
        assert seen["path"] == path

    def test_body_passed_byte_identical(self, private_gateway):
        body = os.urandom(1_500_000)
        resp = requests.post(private_gateway["url"] + "/resources", data=body,
                             headers={"Content-Type": "audio/mpeg"}, timeout=30)
        assert resp.status_code == 200
        seen = resp.json()
        assert seen["length"] == len(body)
        assert seen["sha256"] == hashlib.sha256(body).hexdigest()
        assert seen["contentType"] == "audio/mpeg"

    def test_chunked_body_passed(self, private_gateway):
        parts = [os.urandom(100_000) for _ in range(5)]
        resp = requests.post(private_gateway["url"] + "/resources", data=iter(parts),
                             headers={"Content-Type": "audio/mpeg"}, timeout=30)
        assert resp.status_code == 200
        assert resp.json()["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()

    def test_upload_reaches_the_service_while_the_client_still_sends(self, private_gateway):
        """proxy_request_buffering off on /resources: the service sees the first bytes
        before the client sent the rest (a buffering gateway would wait for the whole
        body). Half the body, then nothing until the service saw bytes."""
        path = "/resources?watch=1"
        seen = _Echo.watch_events[path] = threading.Event()
        body = os.urandom(1_500_000)
        port = int(private_gateway["url"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\n"
                       f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
            s.sendall(body[:700_000])
            streamed = seen.wait(10)
            s.sendall(body[700_000:])
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert streamed, "the service saw nothing before the client finished: the gateway buffered"
        head, _, answer = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(answer)["sha256"] == hashlib.sha256(body).hexdigest()

    def test_download_to_a_slow_client_makes_no_temp_file(self, private_gateway):
        """/resources/ answers go to the client as they come: a client reading slowly does
        not make nginx spool the answer to proxy_temp (it does with proxy_buffering on and
        a temp file allowed), nor does it say it buffered one. nginx unlinks a temp file
        as it opens it, so the workers' open files are looked at, not the directory."""
        proxy_temp = os.path.join(private_gateway["run_dir"], "nginx", "proxy")
        error_log = os.path.join(private_gateway["run_dir"], "nginx", "error.log")
        n = 40 * 1024 * 1024
        with requests.get(private_gateway["url"] + f"/resources/big?n={n}", stream=True,
                          timeout=30) as resp:
            assert resp.status_code == 200
            got = len(resp.raw.read(1024 * 1024))
            time.sleep(0.5)  # the service has long sent what the socket buffers take (send_timeout is 1 s)
            spooled = _open_files_under(_nginx_pids(private_gateway["run_dir"]), proxy_temp)
            for chunk in resp.iter_content(1024 * 1024):
                got += len(chunk)
        assert got == n
        assert spooled == [], spooled
        with open(error_log, errors="replace") as f:
            assert "buffered to a temporary file" not in f.read()

    def test_request_id_passed_upstream_and_returned(self, private_gateway):
        resp = requests.get(private_gateway["url"] + "/songs/1", timeout=10)
        rid = resp.headers.get("X-Request-Id")
        assert rid and resp.json()["requestId"] == rid
        resp = requests.get(private_gateway["url"] + "/songs/1",
                            headers={"X-Request-Id": "abc-123"}, timeout=10)
        assert resp.headers.get("X-Request-Id") == "abc-123"
        assert resp.json()["requestId"] == "abc-123"
        raw = [h for h in resp.raw.headers.keys() if h.lower() == "x-request-id"]
        assert len(raw) == 1

    def test_a_trace_is_started_when_the_client_sent_none(self, private_gateway):
        """No trace context from the client: the gateway starts a trace (its request id as the
        trace id, a b3 header with no sampling decision); a client's own context passes as is."""
        resp = requests.get(private_gateway["url"] + "/songs/1", timeout=10)
        rid = resp.headers["X-Request-Id"]
        assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid)
        assert resp.json()["b3"] == f"{rid}-{rid[:16]}" and resp.json()["traceparent"] is None
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        resp = requests.get(private_gateway["url"] + "/songs/1", headers={"traceparent": tp}, timeout=10)
        assert resp.json()["traceparent"] == tp and resp.json()["b3"] is None
        b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
        resp = requests.get(private_gateway["url"] + "/songs/1", headers={"b3": b3}, timeout=10)
        assert resp.json()["b3"] == b3

    def test_upstream_down_is_502_json(self, private_gateway, checked):
        for method, path in [("GET", "/storages"), ("POST", "/storages"),
                             ("DELETE", "/storages?id=1")]:
            resp = requests.request(method, private_gateway["url"] + path, timeout=10)
            assert_error(resp, 502, "Storage Service is unavailable")
            assert resp.headers.get("X-Request-Id")

    def test_upstream_timeout_is_504_json(self, private_gateway, checked):
        resp = requests.get(private_gateway["url"] + "/resources/slow", timeout=10)
        assert_error(resp, 504, "Resource Service did not answer in time")

    def test_body_over_limit_is_413_json(self, private_gateway, checked):
        resp = requests.post(private_gateway["url"] + "/resources", data=b"\0" * 3_000_000,
                             headers={"Content-Type": "audio/mpeg"}, timeout=30)
        assert_error(resp, 413)

    def test_unknown_route_and_hidden_actuator(self, private_gateway, checked):
        for path in ["/", "/resourcesX", "/actuator/health", "/actuator"]:
            resp = requests.get(private_gateway["url"] + path, timeout=10)
            assert assert_error(resp, 404) == NOT_FOUND

    def test_bad_request_line_is_json(self, private_gateway):
        port = int(private_gateway["url"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x01\x02 nonsense\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400")
        assert b"\r\nContent-Type: application/json\r\n" in head + b"\r\n"
        assert json.loads(body) == {"errorMessage": "Bad request", "errorCode": "400"}

    def test_long_uri_is_json(self, private_gateway, checked):
        resp = requests.get(private_gateway["url"] + "/songs/" + "9" * 10_000, timeout=10)
        assert_error(resp, 414)

    def test_actuator_exposed_when_configured(self, private_gateway):
        env = dict(private_gateway["env"], GATEWAY_EXPOSE_ACTUATOR="true")
        # start on a running gateway = render again and reload
        subprocess.run([STACK, "start", "gateway"], env=env, check=True, timeout=60)
        try:
            deadline = time.time() + 10
            while True:
                resp = requests.get(private_gateway["url"] + "/actuator/health", timeout=10)
                if resp.status_code == 200 or time.time() > deadline:
                    break
                time.sleep(0.2)
            assert resp.status_code == 200
            assert resp.json()["service"] == "resource"
            assert resp.json()["path"] == "/actuator/health"
        finally:
            subprocess.run([STACK, "start", "gateway"], env=private_gateway["env"], check=True,
                           timeout=60)
            deadline = time.time() + 10
            while requests.get(private_gateway["url"] + "/actuator/health",
                               timeout=10).status_code != 404 and time.time() < deadline:
                time.sleep(0.2)

    def test_writes_over_the_limits_get_429_and_reads_never(self, private_gateway):
        env = dict(private_gateway["env"], GATEWAY_WRITE_RATE="1r/s", GATEWAY_WRITE_BURST="2")
        subprocess.run([STACK, "start", "gateway"], env=env, check=True, timeout=60)  # reload
        try:
            time.sleep(1.5)  # a fresh second of budget
            codes = [requests.post(private_gateway["url"] + "/songs", json={}, timeout=10) for _ in range(8)]
            assert [r.status_code for r in codes].count(200) <= 4, [r.status_code for r in codes]
            limited = [r for r in codes if r.status_code == 429]
            assert limited, [r.status_code for r in codes]
            for r in limited:
                assert_error(r, 429)
                assert r.json()["errorMessage"] == "Too many requests, please retry later"
            # reads are not limited, even right after
            assert all(requests.get(private_gateway["url"] + "/songs/1", timeout=10).status_code == 200
                       for _ in range(10))
        finally:
            subprocess.run([STACK, "start", "gateway"], env=private_gateway["env"], check=True, timeout=60)

    def test_request_id_rule_is_the_services_rule(self, private_gateway):
        """The gateway passes on only the ids the services accept (lib/http: 1-64 of
        [A-Za-z0-9._-]), so both logs name a request the same way."""
        for rid, kept in (("valid-id_1.2", True), ("x" * 64, True), ("x" * 65, False), ("a:b", False),
                          ("a/b", False), ("a+b=", False)):
            resp = requests.get(private_gateway["url"] + "/songs/1", headers={"X-Request-Id": rid}, timeout=10)
            upstream = resp.json()["requestId"]
            assert upstream == resp.headers["X-Request-Id"]
            assert (upstream == rid) == kept, (rid, upstream)

    def test_kill_and_restart(self, private_gateway):
        env = private_gateway["env"]
        subprocess.run([STACK, "kill", "gateway"], env=env, check=True, timeout=60)
        with pytest.raises(requests.ConnectionError):
            requests.get(private_gateway["url"] + "/songs/1", timeout=5)
        subprocess.run([STACK, "start", "gateway"], env=env, check=True, timeout=60)
        assert requests.get(private_gateway["url"] + "/songs/1", timeout=10).status_code == 200
