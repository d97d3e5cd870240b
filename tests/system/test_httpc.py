"""lib/httpc against a real HTTP server run by this test (http.server in a thread).

The C side runs through ``tests/tools/httpc_driver`` (built in
``httpc_driver`` in ``$FERMATA_BUILD_DIR/tests/tools``, default ``build/debug``). Checked:
statuses and bodies come back as sent, JSON bodies and X-Request-Id reach the server, the
body cap holds, a refused port is a connect error, a slow answer a timeout, 5xx counts as
a breaker failure and 4xx does not, and kept-alive connections are reused.
"""

import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HTTPC_OK, HTTPC_ERR_CONNECT, HTTPC_ERR_TIMEOUT, HTTPC_ERR_IO, HTTPC_ERR_TOO_LARGE = (
    0, -3, -4, -5, -6)


def driver_path():
    path = os.environ.get("HTTPC_DRIVER") or os.path.join(
        os.environ.get("FERMATA_BUILD_DIR", os.path.join(ROOT, "build", "debug")),
        "tests", "tools", "httpc_driver")
    if not os.access(path, os.X_OK):
        pytest.fail(f"httpc_driver not found at {path}: build it (make build, or cmake "
                    "--build <dir> --target httpc_driver) and set FERMATA_BUILD_DIR")
    return path


def call(*args, timeout=30):
    p = subprocess.run([driver_path(), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode in (0, 1), p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["stderr"] = p.stderr
    return res


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so reuse can be observed

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle plus the client's
        # delayed ACK add 40 ms to every kept-alive call and hide the client's own cost
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path.startswith("/status/"):
            self.reply(int(url.path.split("/")[2]), {"status": int(url.path.split("/")[2])})
        elif url.path == "/echo":
            self.reply(200, {"method": self.command, "body": body.decode(),
                             "content_type": self.headers.get("Content-Type"),
                             "content_length": self.headers.get("Content-Length"),
                             "request_id": self.headers.get("X-Request-Id"),
                             "expect": self.headers.get("Expect")})
        elif url.path == "/slow":
            time.sleep(int(q["ms"]) / 1000)
            self.reply(200, {"slow": True})
        elif url.path == "/big":
            self.reply(200, b"x" * int(q["n"]), "application/octet-stream")
        elif url.path == "/ranged":
            # "0123456789" served by Range (bytes=a-b only), as the Resource Service does
            data, rng = b"0123456789", self.headers.get("Range") or ""
            a, _, b = rng.removeprefix("bytes=").partition("-")
            if not rng.startswith("bytes=") or int(a) >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            last = min(int(b), len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{last}/{len(data)}")
            self.send_header("Content-Length", str(last - int(a) + 1))
            self.end_headers()
            self.wfile.write(data[int(a):last + 1])
        elif url.path == "/cut":
            # promises more than it sends, then closes: a broken exchange
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"{")
            self.close_connection = True
        else:
            self.reply(404, {"errorMessage": "Not found"})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that time out on purpose leave broken pipes behind


@pytest.fixture(scope="module")
def server():
    srv = QuietServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("status,failure", [(200, False), (201, False), (204, False),
                                            (400, False), (404, False), (409, False),
                                            (500, True), (502, True), (503, True)])
def test_status_and_failure_rule(server, status, failure):
    res = call("GET", f"{server}/status/{status}")
    assert res["rc"] == HTTPC_OK and res["status"] == status
    assert res["failure"] is failure
    if status != 204:
        assert json.loads(res["body"]) == {"status": status}
        assert res["content_type"] == "application/json"


def test_post_json_and_request_id(server):
    body = '{"name":"song","year":"2020"}'
    res = call("--request-id", "req-abc-123", "POST", f"{server}/echo", body)
    assert res["rc"] == 0 and res["status"] == 200
    seen = json.loads(res["body"])
    assert seen == {"method": "POST", "body": body, "content_type": "application/json",
                    "content_length": str(len(body)), "request_id": "req-abc-123",
                    "expect": None}


def test_delete_and_get_without_request_id(server):
    seen = json.loads(call("DELETE", f"{server}/echo")["body"])
    assert seen["method"] == "DELETE" and seen["request_id"] is None
    seen = json.loads(call("GET", f"{server}/echo")["body"])
    assert seen["method"] == "GET" and seen["body"] == ""


def test_post_without_body_sends_length_zero(server):
    seen = json.loads(call("POST", f"{server}/echo")["body"])
    assert seen["content_length"] == "0"


def test_large_json_body_without_expect(server, tmp_path):
    # curl would add "Expect: 100-continue" above 1 MB and wait for the server's go-ahead
    body = json.dumps({"pad": "y" * (2 * 1024 * 1024)})
    (tmp_path / "body.json").write_text(body)
    res = call("--max-bytes", 4 * 1024 * 1024, "POST", f"{server}/echo",
               f"@{tmp_path / 'body.json'}")
    seen = json.loads(res["body"])
    assert res["rc"] == 0 and seen["expect"] is None and seen["body"] == body


def test_body_cap(server):
    res = call("--max-bytes", 1000, "GET", f"{server}/big?n=1000")
    assert res["rc"] == 0 and res["body_len"] == 1000
    res = call("--max-bytes", 1000, "GET", f"{server}/big?n=1001")
    assert res["rc"] == HTTPC_ERR_TOO_LARGE and res["failure"] is False
    res = call("GET", f"{server}/big?n=600000")  # default cap 1 MiB
    assert res["rc"] == 0 and res["body_len"] == 600000


def test_range_into_caller_buffer(server):
    res = call("--range", "bytes=2-5", "--into", 4, "GET", f"{server}/ranged")
    assert res["rc"] == 0 and res["status"] == 206
    assert res["body"] == "2345" and res["content_range"] == "bytes 2-5/10"
    # a last byte past the end is clipped; the caller's buffer may be larger
    res = call("--range", "bytes=8-100", "--into", 64, "GET", f"{server}/ranged")
    assert res["status"] == 206 and res["body"] == "89" and res["content_range"] == "bytes 8-9/10"
    res = call("--range", "bytes=10-19", "--into", 64, "GET", f"{server}/ranged")
    assert res["status"] == 416 and res["body_len"] == 0 and res["content_range"] == "bytes */10"
    # over the caller's buffer: too large, and what fitted is there; the client's own
    # cap does not apply to a caller's buffer
    res = call("--range", "bytes=0-9", "--into", 6, "GET", f"{server}/ranged")
    assert res["rc"] == HTTPC_ERR_TOO_LARGE and res["body_len"] <= 6
    res = call("--max-bytes", 1000, "--into", 5000, "GET", f"{server}/big?n=4000")
    assert res["rc"] == 0 and res["body_len"] == 4000
    # no Range asked, no Content-Range answered
    res = call("GET", f"{server}/status/200")
    assert res["content_range"] == ""


def test_connection_refused(server):
    t0 = time.monotonic()
    res = call("GET", f"http://127.0.0.1:{free_port()}/x")
    assert res["rc"] == HTTPC_ERR_CONNECT and res["status"] == 0 and res["failure"] is True
    assert time.monotonic() - t0 < 2


def test_slow_answer_is_timeout(server):
    t0 = time.monotonic()
    res = call("--timeout-ms", 300, "GET", f"{server}/slow?ms=2000")
    took = time.monotonic() - t0
    assert res["rc"] == HTTPC_ERR_TIMEOUT and res["failure"] is True, res
    assert 0.25 < took < 1.9, took
    assert call("--timeout-ms", 2000, "GET", f"{server}/slow?ms=100")["rc"] == 0


def test_silent_listener_is_timeout_not_connect():
    # the kernel completes the handshake from the backlog; nobody ever answers
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        res = call("--timeout-ms", 400, "GET", f"http://127.0.0.1:{srv.getsockname()[1]}/")
        assert res["rc"] == HTTPC_ERR_TIMEOUT, res


def test_cut_answer_is_io_error(server):
    res = call("GET", f"{server}/cut")
    assert res["rc"] == HTTPC_ERR_IO and res["failure"] is True, res


def test_connections_are_reused(server):
    res = call("--repeat", 50, "GET", f"{server}/status/200")
    assert res["errors"] == 0 and res["statuses_2xx"] == 50
    assert res["new_connections"] == 1, res
    res = call("--repeat", 50, "--threads", 4, "GET", f"{server}/status/200")
    assert res["errors"] == 0 and res["statuses_2xx"] == 200
    assert res["new_connections"] <= 4, res
    print(f"httpc: 200 calls on 4 threads in {res['seconds']} s, "
          f"{res['new_connections']} connections")
