"""Shared fixtures for the system tests.

The stack (PostgreSQL, RabbitMQ, S3 emulator, gateway) is started by
scripts/test-system.sh before pytest runs; these fixtures start the services on demand and
give tests handles to stop, kill, pause and restart services and stack components, always
through scripts/services.sh and scripts/stack.sh (one place knows how).

At the end of the session every service log is searched for sanitizer reports: a leak,
an invalid access or undefined behaviour fails the run even if every request looked fine.
"""
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
RUN_DIR = pathlib.Path(os.environ.get("FERMATA_RUN_DIR") or ROOT / "run" / "test")
PORTS = {"resource": 8081, "song": 8082, "storage": 8083, "processor": 8084}
for _name in PORTS:
    PORTS[_name] = int(os.environ.get(f"{_name.upper()}_PORT", PORTS[_name]))

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
