"""The OpenAPI conformance check itself (tests/system/openapi_check.py): it accepts what the
spec describes and refuses deliberately wrong responses, both called directly and through
the recorder that watches requests (a throwaway HTTP server of this test stands in for a
service). Needs no stack."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import openapi_recorder

V = openapi_recorder.validator
JSON = {"Content-Type": "application/json"}
SONG = {"id": 1, "name": "We are the champions", "artist": "Queen", "album": "News of the world",
        "duration": "02:59", "year": "1977"}
STORAGE = {"id": 1, "storageType": "STAGING", "bucket": "fermata-staging", "path": "/files"}


def j(doc):
    return json.dumps(doc).encode()


def err(status, message="x", **extra):
    return j({"errorMessage": message, "errorCode": str(status), **extra})


@pytest.mark.parametrize("method,path,status,headers,body", [
    ("GET", "/songs/1", 200, JSON, j(SONG)),
    ("GET", "/songs/ABC", 400, JSON, err(400, "Invalid value 'ABC' for ID. Must be a positive integer")),
    ("GET", "/songs/", 400, JSON, err(400)),
    ("POST", "/songs", 200, JSON, j({"id": 7})),
    ("POST", "/songs", 400, JSON, j({"errorMessage": "Validation error", "details": {"year": "Year must be"},
                                     "errorCode": "400"})),
    ("POST", "/songs", 409, JSON, err(409)),
    ("DELETE", "/songs?id=1,2", 200, JSON, j({"ids": [1, 2]})),
    ("DELETE", "/songs?id=3", 200, JSON, j({"ids": []})),
    ("GET", "/storages", 200, JSON, j([STORAGE])),
    ("GET", "/resources/5", 200, {"Content-Type": "audio/mpeg", "Content-Length": "417"}, b"\xff\xfb" * 200),
    ("GET", "/resources/5", 206, {"Content-Type": "audio/mpeg", "Content-Range": "bytes 0-9/417"}, b"0123456789"),
    ("GET", "/resources/5", 416, {"Content-Type": "application/json", "Content-Range": "bytes */417"}, err(416)),
    ("GET", "/nothing-here", 404, JSON, err(404)),
    ("PUT", "/songs", 405, JSON, err(405)),
    ("GET", "/actuator/health", 200, JSON, j({"status": "UP", "components": {"db": {"status": "UP"}}})),
    ("GET", "/actuator/health", 503, JSON, j({"status": "DOWN", "components": {"db": {"status": "DOWN"}}})),
    ("GET", "/actuator/prometheus", 200, {"Content-Type": "text/plain; version=0.0.4"}, b"# TYPE x gauge\n"),
    ("GET", "/actuator/circuitbreakerevents", 200, JSON,
     j({"circuitBreakerEvents": [{"circuitBreakerName": "storageService", "type": "ERROR",
                                  "creationTime": "2024-01-01T00:00:00Z", "durationInMs": None}]})),
])
def test_conforming_responses_pass(method, path, status, headers, body):
    assert V.check(method, path, status, headers, body) == []


@pytest.mark.parametrize("method,path,status,headers,body,expected", [
    # status not declared for the operation
    ("GET", "/songs/1", 418, JSON, err(418), "status 418 not declared for GET /songs/{id}"),
    # Content-Type: not exactly application/json; not declared at all
    ("GET", "/songs/1", 200, {"Content-Type": "application/json; charset=utf-8"}, j(SONG), "Content-Type"),
    ("GET", "/songs/1", 404, {"Content-Type": "text/html"}, b"<html>", "Content-Type 'text/html' not declared"),
    ("GET", "/resources/1", 200, {"Content-Type": "application/octet-stream"}, b"\xff", "not declared"),
    ("GET", "/songs/1", 200, {}, j(SONG), "no Content-Type"),
    # body against the schema
    ("GET", "/songs/1", 200, JSON, j({**SONG, "extra": 1}), "Additional properties are not allowed"),
    ("GET", "/songs/1", 200, JSON, j({**SONG, "id": "1"}), "body['id']: '1' is not of type 'integer'"),
    ("GET", "/songs/1", 200, JSON, j({**SONG, "id": 1.0}), "is not of type 'integer'"),
    ("GET", "/songs/1", 200, JSON, j({k: v for k, v in SONG.items() if k != "year"}), "'year' is a required"),
    ("POST", "/songs", 200, JSON, j({"id": 0}), "less than the minimum"),
    ("DELETE", "/songs?id=1", 200, JSON, j({"ids": ["1"]}), "body['ids'][0]"),
    ("GET", "/storages", 200, JSON, j([{**STORAGE, "storageType": "COLD"}]), "'COLD' is not one of"),
    ("GET", "/storages", 200, JSON, b"[{\"id\": 1,", "body is not JSON"),
    ("GET", "/storages", 200, JSON, b"NaN", "body is not JSON"),
    # error bodies: exact keys, errorCode a string equal to the status
    ("GET", "/songs/1", 404, JSON, j({"errorMessage": "x", "errorCode": 404}), "is not of type 'string'"),
    ("GET", "/songs/1", 404, JSON, err(404, timestamp="now"), "Additional properties are not allowed"),
    ("GET", "/songs/1", 404, JSON, j({"errorCode": "404"}), "'errorMessage' is a required"),
    ("GET", "/songs/1", 404, JSON, err(400), "body['errorCode'] is '400', the status is 404"),
    ("POST", "/songs", 400, JSON, err(400, details={"year": 5}), "body['details']['year']"),
    # headers
    ("GET", "/resources/5", 206, {"Content-Type": "audio/mpeg"}, b"0", "header Content-Range missing"),
    ("GET", "/resources/5", 206, {"Content-Type": "audio/mpeg", "Content-Range": "0-9/10"}, b"0", "does not match"),
    ("GET", "/resources/5", 200, {"Content-Type": "audio/mpeg", "Content-Length": "0"}, b"", "header Content-Length"),
    # conventions: unknown route 404, wrong method 405, both in the error shape
    ("GET", "/nothing-here", 200, JSON, j({}), "unknown route: expected 404"),
    ("DELETE", "/songs/1", 404, JSON, err(404), "DELETE not declared for /songs/{id}: expected 405"),
    ("GET", "/nothing-here", 404, {"Content-Type": "text/html"}, b"<html>", "Content-Type 'text/html'"),
])
def test_wrong_responses_fail(method, path, status, headers, body, expected):
    problems = V.check(method, path, status, headers, body)
    assert problems, "accepted a wrong response"
    assert any(expected in p for p in problems), problems


def test_gateway_hides_actuator_and_has_own_health():
    assert V.check("GET", "/actuator/health", 404, JSON, err(404, "Not found"), origin="gateway") == []
    assert V.check("GET", "/actuator/health", 200, JSON, j({"status": "UP"}), origin="gateway")
    assert V.check("GET", "/actuator/health", 200, JSON, j({"status": "UP"}), origin="gateway",
                   actuator_exposed=True) == []
    assert V.check("GET", "/gateway/health", 200, JSON, j({"status": "UP"}), origin="gateway") == []
    assert V.check("GET", "/gateway/health", 200, JSON, j({"status": "UP"}), origin="service")


class _Wrong(BaseHTTPRequestHandler):
    """Answers GET /songs/{id} with a song that has an extra key, anything else 404 in HTML."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/songs/"):
            status, ctype, body = 200, "application/json", j({**SONG, "internal": "x"})
        else:
            status, ctype, body = 404, "text/html", b"<html>not found</html>"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def wrong_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Wrong)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_recorder_sees_requests_calls_and_reports_them(wrong_server):
    with openapi_recorder.isolated() as failures, openapi_recorder.watching(wrong_server, "service"):
        requests.get(wrong_server + "/songs/1", timeout=5)                       # requests.api
        with requests.Session() as s:
            s.get(wrong_server + "/nope", timeout=5)                             # a Session
        requests.get(wrong_server + "/songs/2", timeout=5, stream=True).close()  # streamed: headers only
        report = openapi_recorder.report()
    assert [(f["method"], f["path"], f["status"]) for f in failures] == [("GET", "/songs/1", 200), ("GET", "/nope", 404)]
    assert "Additional properties are not allowed ('internal' was unexpected)" in failures[0]["problem"]
    assert "Content-Type 'text/html' not declared" in failures[1]["problem"]
    assert "GET /songs/1 -> 200 [service]" in report and "test_recorder_sees_requests_calls" in report
    # outside the block: not watched, and the session's own list is untouched
    n = len(openapi_recorder.failures)
    requests.get(wrong_server + "/songs/3", timeout=5)
    assert len(openapi_recorder.failures) == n
