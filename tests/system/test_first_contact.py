"""First contact: the stack runs from a checkout its servers' users cannot enter, the way
people clone it: into /root (mode 700) or into a `mktemp -d` folder (mode 700).

For each place, a copy of this checkout (its tracked and untracked files, as `git clone`
would give plus what is not committed yet, and the services already built by this test
run) is made there, and then, as a user would:
  run.sh (what `make run` runs once it has built) -> upload an MP3 through the gateway ->
  its metadata and PERMANENT -> a second run.sh refuses and says what runs -> Ctrl-C ->
  run.sh again: the file and its metadata are there -> Ctrl-C -> reset: the data is gone.
Prometheus (on in make run) scrapes every instance of every service.
Also checked: the data went to /var/lib/fermata/<name> (reported by run.sh), created
safely; no server process has its program, its working directory or an open file inside
the checkout; the services run from copies of their binaries in the data directory.
"""
import os
import pwd
import pathlib
import shutil
import stat
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, SANITIZER_PATTERNS
from mp3gen import make_mp3
from privatestack import PrivateRun

BUILD = pathlib.Path(os.environ.get("FERMATA_BUILD_DIR") or ROOT / "build" / "debug")
SERVICES = ("storage", "song", "resource", "processor")

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="as a user, every server runs as that user: nothing to traverse")


def copy_checkout(dest):
    """The checkout's files (tracked and untracked, not ignored) into dest, plus the built
    service binaries under dest/build/debug."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           check=True, capture_output=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        src = ROOT / f.decode()
        if not src.exists() or src.is_dir():
            continue
        out = dest / f.decode()
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out, follow_symlinks=False)
    for s in SERVICES:
        out = dest / "build" / "debug" / "services" / s / f"fermata-{s}"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(BUILD / "services" / s / f"fermata-{s}", out)
    return dest


def inside(path, root):
    try:
        return pathlib.Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def touches_checkout(pid, root):
    """What of process pid lies inside root: its program, its working directory, open files."""
    found = []
    for what in ("exe", "cwd"):
        try:
            if inside(os.readlink(f"/proc/{pid}/{what}"), root):
                found.append(what)
        except OSError:
            pass
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/") and inside(target, root):
                found.append(f"fd {fd} -> {target}")
    except OSError:
        pass
    return found


def make_parent(where):
    """A fresh directory only root may enter: a `mktemp -d` folder, or one in /root."""
    if where == "mktemp":
        return pathlib.Path(tempfile.mkdtemp(prefix="fermata-fc-"))
    if not pathlib.Path("/root").is_dir() or stat.S_IMODE(os.stat("/root").st_mode) & 0o001:
        pytest.skip("/root is missing or traversable by others here")
    d = pathlib.Path("/root") / f"fermata-fc-{os.getpid()}"
    d.mkdir(mode=0o755)  # reachable itself, but /root is not: nothing below is
    return d


@pytest.mark.parametrize("where", ["mktemp", "root"])
def test_make_run_from_an_unreachable_checkout_keeps_data_in_var_lib(where):
    parent = make_parent(where)
    checkout = copy_checkout(parent / "fermata")
    base = PRIVATE_PORT_BASE + (200 if where == "mktemp" else 400)
    run = PrivateRun(checkout, base, checkout / "build" / "debug", log_path=RUN_DIR / f"first-contact-{where}.log")
    try:
        out = run.start()
        data = run.data_dir()
        assert str(data).startswith("/var/lib/fermata/fermata-"), data
        assert f"Data: {data}" in out
        for d in ("/var/lib/fermata", str(data)):
            st = os.lstat(d)
            assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) & 0o022 == 0, d
        assert not (checkout / "run").exists(), "the stack wrote into the checkout"

        # nothing of a server lives in the checkout
        servers = run.server_pids()
        assert len(servers) >= 8, servers
        for pid in servers:
            assert not touches_checkout(pid, checkout), (pid, open(f"/proc/{pid}/cmdline").read(),
                                                         touches_checkout(pid, checkout))
        for s in SERVICES:
            pid = int((data / "pids" / f"{s}.pid").read_text())
            assert os.readlink(f"/proc/{pid}/exe") == str(data / "bin" / f"fermata-{s}")

        mp3 = make_mp3(seconds=2.0, title=f"First contact {where}", artist="Newcomer", album="Clone", year="2026")
        r = run.post("/resources", data=mp3, headers={"Content-Type": "audio/mpeg"})
        assert r.status_code == 200, r.text
        rid = r.json()["id"]
        want = {"id": rid, "name": f"First contact {where}", "artist": "Newcomer", "album": "Clone",
                "duration": "00:02", "year": "2026"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = run.psql("RESOURCE_DB_URL", f"SELECT state FROM resources WHERE id={rid}")
            if state == ["PERMANENT"] and run.get(f"/songs/{rid}").status_code == 200:
                break
            time.sleep(0.5)
        assert run.get(f"/songs/{rid}").json() == want

        # make run's Prometheus (on by default) scrapes every instance of every service (two
        # each), as Debian's prometheus user, with its data in the data directory
        prom = f"http://127.0.0.1:{run.env['PROMETHEUS_PORT']}"
        assert f"Metrics: {prom}" in out, out
        st = os.lstat(data / "prometheus")
        assert st.st_uid == pwd.getpwnam("prometheus").pw_uid and stat.S_IMODE(st.st_mode) == 0o700
        want_targets = {f"{s}{i}": "up" for s in SERVICES for i in ("", "@2")}
        targets = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            active = requests.get(f"{prom}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            targets = {t["labels"]["fermata_instance"]: t["health"] for t in active}
            if targets == want_targets:
                break
            time.sleep(1)
        assert targets == want_targets
        r = requests.get(f"{prom}/api/v1/query", params={"query": 'resilience4j_circuitbreaker_state{state="closed"}'},
                         timeout=5)
        assert {x["metric"]["fermata_instance"] for x in r.json()["data"]["result"]} == {"resource", "resource@2"}

        # a second `make run` leaves the first alone and says what runs
        second = PrivateRun(checkout, base, checkout / "build" / "debug",
                            log_path=RUN_DIR / f"first-contact-{where}-second.log")
        out2 = second.start(expect_running=False)
        assert second.proc.returncode == 1, out2
        assert "already running" in out2 and "postgres" in out2 and "pid" in out2, out2
        assert run.get(f"/resources/{rid}").content == mp3  # still serving

        out = run.ctrl_c()
        assert "run: stopped." in out
        run.start()
        assert run.get(f"/resources/{rid}").content == mp3
        assert run.get(f"/songs/{rid}").json() == want
        run.ctrl_c()

        logs = data / "logs"
        bad = [p.name for p in logs.glob("*.log") if SANITIZER_PATTERNS.search(p.read_text(errors="replace"))]
        assert not bad, f"sanitizer reports in {bad}"

        r = run.stack("reset")
        assert not data.exists(), r.stdout + r.stderr
    finally:
        run.stop()
        run.stack("reset", check=False)
        shutil.rmtree(parent, ignore_errors=True)


def test_data_dir_refuses_a_planted_symlink(tmp_path):
    """Another local user cannot steer the stack's data somewhere else by planting a link
    (or a directory of theirs) where /var/lib/fermata/<name> will be."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    name = f"/var/lib/fermata/planted-{os.getpid()}"
    pathlib.Path("/var/lib/fermata").mkdir(mode=0o755, exist_ok=True)
    os.symlink(target, name)
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("FERMATA_RUN_DIR",)}
        env["FERMATA_DATA_DIR"] = name
        p = subprocess.run([str(ROOT / "scripts" / "stack.sh"), "dir"], env=env, capture_output=True, text=True)
        assert p.returncode != 0 and "symbolic link" in p.stderr, (p.stdout, p.stderr)
    finally:
        os.unlink(name)
    os.mkdir(name)
    os.chown(name, 65534, 65534)  # someone else's directory
    try:
        p = subprocess.run([str(ROOT / "scripts" / "stack.sh"), "dir"], env=env, capture_output=True, text=True)
        assert p.returncode != 0 and "owned by uid 65534" in p.stderr, (p.stdout, p.stderr)
    finally:
        os.rmdir(name)
