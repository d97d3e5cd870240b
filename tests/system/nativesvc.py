"""One of our service binaries started by a test with exactly the environment the test
gives it (nothing inherited but the sanitizers' options), on a port of the test's choosing,
optionally inside a private mount namespace whose /etc/hosts maps the host names of a
deployment file to the test stack. Stopped with SIGTERM; its log is kept and searched for
sanitizer reports.
"""
import os
import pathlib
import signal
import subprocess
import time

import requests

from conftest import ROOT, RUN_DIR, SANITIZER_PATTERNS

BUILD = pathlib.Path(os.environ.get("FERMATA_BUILD_DIR") or ROOT / "build" / "debug")

# What the debug build's sanitizers read: test machinery, not configuration.
_HARNESS_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def binary(name):
    path = BUILD / "services" / name / f"fermata-{name}"
    assert path.exists(), f"{path} not built (make build)"
    return path


class NativeService:
    def __init__(self, name, env, port, label=None, hosts=None):
        """env: the whole environment (str -> str). hosts: {name: address} written to an
        /etc/hosts seen by this process only (needs root: unshare + a bind mount)."""
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {k: str(v) for k, v in env.items()}
        for k in _HARNESS_VARS:
            if k in os.environ:
                self.env.setdefault(k, os.environ[k])
        self.hosts = hosts
        self.log_path = RUN_DIR / "logs" / f"{name}-{label or 'native'}.log"
        self.proc = None

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [str(binary(self.name))]
        if self.hosts:
            hosts_file = self.log_path.with_suffix(".hosts")
            hosts_file.write_text("127.0.0.1 localhost\n" + "".join(f"{a} {h}\n" for h, a in self.hosts.items()))
            # a mount namespace of its own: the bind mount is seen by this process alone
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts_file), *argv]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self

    def health(self, timeout=5):
        return requests.get(self.url + "/actuator/health", timeout=timeout)

    def wait_healthy(self, timeout=60):
        """Waits for /actuator/health to answer 200 UP; fails with the log when the process
        exits or the time runs out."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                r = self.health(timeout=2)
                last = (r.status_code, r.text)
                if r.status_code == 200 and r.json().get("status") == "UP":
                    return r.json()
            except requests.RequestException as e:
                last = e
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not healthy in {timeout}s; last {last!r}; log:\n{self.log()[-3000:]}")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout=30):
        """SIGTERM, waits; returns the exit code. Fails on sanitizer reports in the log."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert not SANITIZER_PATTERNS.search(self.log()), f"sanitizer report in {self.log_path}:\n{self.log()[-4000:]}"
        return self.proc.returncode
