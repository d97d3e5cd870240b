"""Shared fixtures for the system tests.

The stack (PostgreSQL, RabbitMQ, S3 emulator, gateway) is started by
scripts/test-system.sh before pytest runs; these fixtures start the services on demand and
give tests handles to stop, kill, pause and restart services and stack components, always
through scripts/services.sh and scripts/stack.sh (one place knows how).

At the end of the session every service log is searched for sanitizer reports: a leak,
an invalid access or undefined behaviour fails the run even if every request looked fine.
"""
import copy
import itertools
import os
import pathlib
import random
import re
import subprocess
import time

import pytest
import requests

ROOT = pathlib.Path(os.environ.get("FERMATA_ROOT") or pathlib.Path(__file__).resolve().parents[2])
RUN_DIR = pathlib.Path(os.environ.get("FERMATA_DATA_DIR") or os.environ.get("FERMATA_RUN_DIR") or ROOT / "run" / "test")
PORTS = {"resource": 8081, "song": 8082, "storage": 8083, "processor": 8084}
for _name in PORTS:
    PORTS[_name] = int(os.environ.get(f"{_name.upper()}_PORT", PORTS[_name]))

# Private stacks that tests start themselves (tests/system/privatestack.py) take their
# ports from this base (each from its own block of 200 above it), so two test runs on one
# machine can be given apart bases, as the shared stack's ports are moved with *_PORT.
PRIVATE_PORT_BASE = int(os.environ.get("FERMATA_TEST_PORT_BASE", "21000"))

SANITIZER_PATTERNS = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer")


def _script(name, *args, check=True, timeout=180):
    return subprocess.run([str(ROOT / "scripts" / name), *args], check=check, timeout=timeout,
                          capture_output=True, text=True)


class Service:
    """One of our C services, controlled through scripts/services.sh."""

    def __init__(self, name):
        self.name = name
        self.port = PORTS[name]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        r = _script("services.sh", "start", self.name, check=False)
        assert r.returncode == 0, f"{self.name} failed to start:\n{r.stdout}\n{r.stderr}"
        return self

    def stop(self):
        _script("services.sh", "stop", self.name)

    def kill(self, sig="KILL"):
        _script("services.sh", "kill", self.name, sig)

    def ensure(self):
        return self.start()

    def log(self):
        p = RUN_DIR / "logs" / f"{self.name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def delete(self, path, **kw):
        return requests.delete(self.url + path, timeout=kw.pop("timeout", 10), **kw)


class Stack:
    """The stack's components (postgres, rabbitmq, s3, gateway), through scripts/stack.sh."""

    def start(self, component):
        r = _script("stack.sh", "start", component, check=False)
        assert r.returncode == 0, f"stack start {component} failed:\n{r.stdout}\n{r.stderr}"

    def stop(self, component):
        _script("stack.sh", "stop", component)

    def kill(self, component):
        _script("stack.sh", "kill", component)

    def env(self):
        out = _script("stack.sh", "env").stdout
        env = {}
        for line in out.splitlines():
            m = re.match(r"export (\w+)='?(.*?)'?$", line)
            if m:
                env[m.group(1)] = m.group(2)
        return env


@pytest.fixture(scope="session")
def stack():
    return Stack()


@pytest.fixture(scope="session")
def services():
    svcs = {name: Service(name) for name in PORTS}
    yield svcs
    for name in ("processor", "resource", "song", "storage"):
        _script("services.sh", "stop", name, check=False)
    reports = []
    for name, svc in svcs.items():
        log = svc.log()
        if SANITIZER_PATTERNS.search(log):
            reports.append(f"--- {name} ---\n" + "\n".join(l for l in log.splitlines()[-60:]))
    assert not reports, "sanitizer reports in service logs:\n" + "\n".join(reports)


@pytest.fixture(scope="session")
def song(services):
    return services["song"].ensure()


_ids = itertools.count(random.randint(1, 1_000_000) * 1000)


@pytest.fixture
def new_id():
    """Fresh ids per call, random per session so reruns against the same database never collide."""
    return lambda: next(_ids)


def wait_until(predicate, timeout=30.0, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except requests.RequestException as e:  # a service may be restarting
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")


# ---- Routes: direct to a service, or through the gateway ----

GATEWAY_URL = (os.environ.get("GATEWAY_URL") or "http://127.0.0.1:8080").rstrip("/")
ROUTES = ("direct", "gateway")


def via(service, route):
    """The service as seen through `route`: itself ("direct"), or a copy whose base URL is the
    gateway's ("gateway"; the gateway routes /resources, /songs and /storages, not /actuator).
    Start, stop, kill and log still act on the service itself."""
    if route == "direct":
        return service
    routed = copy.copy(service)
    routed.url = GATEWAY_URL
    return routed


@pytest.fixture(params=ROUTES)
def route(request):
    """Parametrises a test over ("direct", "gateway"); contract test modules build their
    service fixture on it with `via(...)`, so each contract test runs both ways."""
    return request.param


# ---- OpenAPI conformance of every response the system tests see ----
#
# Every response from our services (PORTS) and the stack's gateway (GATEWAY_URL) that goes
# through requests (requests.get/post/..., Service.get/post/delete, sessions) is checked
# against docs/openapi.yaml as it arrives (tests/system/openapi_check.py says what is
# checked). At the end of the session the non-conforming ones fail the run, listed.

from openapi_check import OpenApiValidator, ResponseRecorder  # noqa: E402

OPENAPI_SPEC = ROOT / "docs" / "openapi.yaml"
openapi_recorder = ResponseRecorder(OpenApiValidator(OPENAPI_SPEC))


def _add_bearer(token, origins):
    """With FERMATA_TEST_BEARER set (the contract tests run against a stack with
    authentication on, tests/system/test_auth.py), every request to our services or the
    gateway that has no Authorization header gets that token."""
    original = requests.sessions.Session.request

    def request(self, method, url, *args, **kw):
        if isinstance(url, str) and url.startswith(origins):
            headers = dict(kw.get("headers") or {})
            if not any(k.lower() == "authorization" for k in headers):
                headers["Authorization"] = f"Bearer {token}"
            kw["headers"] = headers
        return original(self, method, url, *args, **kw)

    requests.sessions.Session.request = request


def pytest_configure(config):
    for _name, _port in PORTS.items():
        openapi_recorder.watch(f"http://127.0.0.1:{_port}", "service")
    openapi_recorder.watch(GATEWAY_URL, "gateway")
    openapi_recorder.install()
    if os.environ.get("FERMATA_TEST_BEARER"):
        _add_bearer(os.environ["FERMATA_TEST_BEARER"],
                    tuple(f"http://127.0.0.1:{p}" for p in PORTS.values()) + (GATEWAY_URL,))


def pytest_unconfigure(config):
    openapi_recorder.uninstall()


@pytest.fixture(scope="session", autouse=True)
def openapi_conformance():
    """Fails the session (at teardown of its last test) when any response seen did not
    conform to docs/openapi.yaml."""
    yield openapi_recorder
    assert not openapi_recorder.failures, (
        f"{len(openapi_recorder.failures)} responses do not conform to {OPENAPI_SPEC.relative_to(ROOT)}:\n"
        + openapi_recorder.report())


def pytest_terminal_summary(terminalreporter):
    seen = openapi_recorder.seen
    if not seen:
        return
    by_origin = {}
    for (origin, *_), n in seen.items():
        by_origin[origin] = by_origin.get(origin, 0) + n
    terminalreporter.write_line(
        f"openapi: {sum(seen.values())} responses checked against {OPENAPI_SPEC.relative_to(ROOT)} "
        f"({', '.join(f'{o} {n}' for o, n in sorted(by_origin.items()))}; {openapi_recorder.unread} streamed, "
        f"body not read), {len({k[1:] for k in seen})} (method, operation, status) combinations, "
        f"{len(openapi_recorder.failures)} non-conforming")
