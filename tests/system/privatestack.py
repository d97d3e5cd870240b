"""A whole private Fermata, started the way a user starts one: `scripts/run.sh` (what
`make run` runs once it has built), from this checkout or from a copy of it, on its own
ports and data directory, stopped with Ctrl-C (SIGINT to its process group, as a terminal
sends it) or killed like a power loss (SIGKILL to every process at once).

The environment of the test stack (its database URLs, ports, data directory) is removed
first, so nothing of the private stack reaches the shared one.
"""
import os
import pathlib
import signal
import subprocess
import time

import requests

# What scripts/stack.sh env and test-system.sh export for the shared stack.
_SCRUB = ("SONG_DB_URL", "STORAGE_DB_URL", "RESOURCE_DB_URL", "AMQP_URL", "S3_ENDPOINT", "S3_REGION",
          "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GATEWAY_URL", "STORAGE_SERVICE_URL",
          "SONG_SERVICE_URL", "RESOURCE_SERVICE_URL", "FERMATA_DATA_DIR", "FERMATA_RUN_DIR",
          "S3_DATA_DIR", "FERMATA_AUTH", "FERMATA_REPLICAS", "FERMATA_TEST_BEARER",
          "SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_ISSUER_URI",
          "SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_JWK_SET_URI")


def ports(base):
    """The stack's ports from one base (RabbitMQ uses AMQP_PORT .. +11; a second replica of
    each service uses its port + 100); all below 32768."""
    return {"PROMETHEUS_PORT": base + 66, "PG_PORT": base, "AMQP_PORT": base + 20, "S3_PORT": base + 40, "GATEWAY_PORT": base + 50,
            "RESOURCE_PORT": base + 51, "SONG_PORT": base + 52, "STORAGE_PORT": base + 53,
            "PROCESSOR_PORT": base + 54, "GATEWAY_INTERNAL_PORT": base + 55, "ISSUER_PORT": base + 60, "RESOURCE_INTERNAL_PORT": base + 61,
            "SONG_INTERNAL_PORT": base + 62, "STORAGE_INTERNAL_PORT": base + 63, "ZIPKIN_PORT": base + 65}


class PrivateRun:
    def __init__(self, root, base_port, build_dir, data_dir=None, log_path=None, **extra):
        self.root = pathlib.Path(root)
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.endswith("_PORT")}
        self.env.update({k: str(v) for k, v in ports(base_port).items()})
        self.env["FERMATA_BUILD_DIR"] = str(build_dir)
        if data_dir is not None:
            self.env["FERMATA_DATA_DIR"] = str(data_dir)
        self.env.update({k: str(v) for k, v in extra.items()})
        self.gateway = f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"
        self.log_path = pathlib.Path(log_path or f"/tmp/fermata-private-{base_port}.log")
        self.proc = None
        self.runs = 0

    # ---- scripts of this stack
    def script(self, name, *args, check=True, timeout=180):
        return subprocess.run([str(self.root / "scripts" / name), *args], env=self.env, check=check,
                              capture_output=True, text=True, timeout=timeout, cwd=str(self.root))

    def stack(self, *args, **kw):
        return self.script("stack.sh", *args, **kw)

    def services(self, *args, **kw):
        return self.script("services.sh", *args, **kw)

    def data_dir(self):
        return pathlib.Path(self.stack("dir").stdout.strip())

    def stack_env(self):
        out = {}
        for line in self.stack("env").stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            out[name] = value.strip("'")
        return out

    def psql(self, url_var, sql):
        url = self.stack_env()[url_var]
        out = subprocess.run(["psql", url, "-tAc", sql], check=True, capture_output=True, text=True,
                             timeout=60).stdout
        return [line for line in out.splitlines() if line]

    # ---- run.sh
    def start(self, timeout=240, expect_running=True):
        """Starts run.sh in its own session (like a terminal's foreground job) and waits for
        its "Press Ctrl-C" line. Returns the output of this run so far."""
        self.runs += 1
        log = open(self.log_path, "a")
        log.write(f"\n==== run {self.runs} ====\n")
        log.flush()
        self._mark = self.log_path.stat().st_size
        self.proc = subprocess.Popen([str(self.root / "scripts" / "run.sh")], env=self.env, cwd=str(self.root),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if "Press Ctrl-C to stop." in out:
                return out
            if self.proc.poll() is not None:
                if expect_running:
                    raise AssertionError(f"run.sh exited with {self.proc.returncode}:\n{out[-4000:]}")
                return out
            time.sleep(0.2)
        raise AssertionError(f"run.sh did not come up in {timeout}s:\n{self.output()[-4000:]}")

    def output(self):
        with open(self.log_path, errors="replace") as f:
            f.seek(self._mark)
            return f.read()

    def ctrl_c(self, timeout=180):
        """SIGINT to run.sh's process group, as Ctrl-C in its terminal; waits for it to end."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=timeout)
        return self.output()

    def server_pids(self):
        """The processes of the stack's servers and of the services."""
        pids = {int(p) for p in self.stack("pids").stdout.split()}
        return pids | {int(p) for p in self.services("pids").stdout.split()}

    def every_pid(self):
        """server_pids and run.sh's process group (run.sh itself, its sleep)."""
        pids = self.server_pids()
        if self.proc is not None and self.proc.poll() is None:
            pgid = self.proc.pid
            for d in os.listdir("/proc"):
                if d.isdigit():
                    try:
                        if os.getpgid(int(d)) == pgid:
                            pids.add(int(d))
                    except OSError:
                        pass
        return pids

    def power_loss(self):
        """SIGKILL to every process of this stack at once (run.sh, the services, every
        server and its helpers); returns once they are all gone."""
        pids = self.every_pid()
        assert len(pids) >= 8, f"too few processes found: {pids}"
        # parents before their children: a supervisor that outlives a child by a moment
        # starts a new one (nginx's master does), which nothing would kill
        for p in sorted(pids, key=lambda p: _depth(p, pids)):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait(timeout=30)
        # gone means reaped: a zombie still holds its pid, and pg_ctl takes a live pid in
        # postmaster.pid for a running server
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
            if not alive:
                return pids
            time.sleep(0.1)
        raise AssertionError(f"still there after SIGKILL: {[(p, _state(p)) for p in alive]}")

    def stop(self):
        """Best effort, for teardown: Ctrl-C if running, then stop whatever is left."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.ctrl_c(timeout=120)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self.services("stop", check=False)
        self.stack("stop", check=False)

    # ---- HTTP through its gateway
    def get(self, path, **kw):
        return requests.get(self.gateway + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path, **kw):
        return requests.post(self.gateway + path, timeout=kw.pop("timeout", 60), **kw)

    def delete(self, path, **kw):
        return requests.delete(self.gateway + path, timeout=kw.pop("timeout", 30), **kw)


def running(run, expect, sanitizer_patterns):
    """A module fixture's body for a PrivateRun: from an empty data directory, started
    (its output must name `expect`), yielded, stopped, then emptied again; fails when a
    log holds a sanitizer report."""
    run.stack("reset", check=False)
    out = run.start()
    assert expect in out, out[-2000:]
    yield run
    run.stop()
    logs = run.data_dir() / "logs"
    bad = [p.name for p in logs.glob("*.log") if sanitizer_patterns.search(p.read_text(errors="replace"))]
    run.stack("reset", check=False)
    assert not bad, f"sanitizer reports in {bad}"


def _depth(pid, among):
    """How many of pid's ancestors are in `among` (0 for the top ones)."""
    d, seen = 0, set()
    while pid not in seen:
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return d
        if pid in among:
            d += 1
        elif pid <= 1:
            return d
    return d


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
