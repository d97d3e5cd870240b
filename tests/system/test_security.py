"""Security basics a user can check from outside: services never run as root, credentials
never reach the logs, internal endpoints stay behind the gateway."""
import os
import pwd
import stat
import subprocess
import time

import pytest
import requests

from conftest import ROOT, RUN_DIR, SANITIZER_PATTERNS

BUILD = os.environ.get("FERMATA_BUILD_DIR") or str(ROOT / "build" / "debug")


@pytest.mark.skipif(os.geteuid() != 0, reason="the services run as the caller when the caller is not root")
def test_services_do_not_run_as_root(services):
    for name in ("storage", "song", "resource", "processor"):
        services[name].ensure()
        pid = int((RUN_DIR / "pids" / f"{name}.pid").read_text())
        uid = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("Uid:"))
        assert uid != 0, f"{name} runs as root"


def test_malformed_database_url_does_not_leak_its_password(tmp_path):
    env = dict(os.environ, SONG_DB_URL="postgresql://song:S3cretPassw0rd@[::1/songs", SERVER_PORT="0")
    p = subprocess.run(["timeout", "-s", "TERM", "3", f"{BUILD}/services/song/fermata-song"], env=env,
                       capture_output=True, text=True)
    assert "database connect failed" in p.stderr
    assert "S3cretPassw0rd" not in p.stderr and "***" in p.stderr


def test_credentials_absent_from_service_logs(services):
    """No connection URL with its password ever reaches a log (the services log hosts and
    ports, never the URLs they were configured with)."""
    urls = [os.environ[v] for v in ("SONG_DB_URL", "STORAGE_DB_URL", "RESOURCE_DB_URL", "AMQP_URL") if os.environ.get(v)]
    assert urls, "the stack exports no connection URLs"
    for name in ("storage", "song", "resource", "processor"):
        log = services[name].ensure().log()
        for url in urls:
            assert url not in log, f"{name} logged a connection URL with its password"


def test_gateway_hides_actuator():
    gw = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
    r = requests.get(f"{gw}/actuator/health", timeout=5)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"


def _pid(name):
    return int((RUN_DIR / "pids" / f"{name}.pid").read_text())


def _user(pid):
    uid = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("Uid:"))
    return pwd.getpwuid(uid).pw_name


@pytest.mark.skipif(os.geteuid() != 0, reason="the services run as the caller when the caller is not root")
def test_each_service_runs_as_its_own_user_distinct_from_nginx(services):
    users = {}
    for name in ("storage", "song", "resource", "processor"):
        services[name].ensure()
        users[name] = _user(_pid(name))
        assert users[name] == f"fermata-{name}"
    master = int((RUN_DIR / "nginx" / "nginx.pid").read_text())
    workers = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    assert workers, "no nginx worker found"
    worker_users = {_user(int(w)) for w in workers}
    assert not worker_users & set(users.values()), (worker_users, users)
    assert "root" not in worker_users


# What each service may see of the stack's credentials (scripts/services.sh).
OWN = {
    "song": {"SONG_DB_URL"},
    "storage": {"STORAGE_DB_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "resource": {"RESOURCE_DB_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AMQP_URL"},
    "processor": {"AMQP_URL"},
}
CREDENTIALS = set().union(*OWN.values())


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another user's /proc/PID/environ needs root")
def test_each_service_gets_only_its_own_credentials(services):
    for name, own in OWN.items():
        services[name].ensure()
        raw = open(f"/proc/{_pid(name)}/environ", "rb").read().split(b"\0")
        names = {kv.split(b"=", 1)[0].decode() for kv in raw if b"=" in kv}
        assert names & CREDENTIALS == own, f"{name} sees {sorted(names & CREDENTIALS)}"


def test_stack_files_holding_secrets_are_private():
    """The broker's config holds its password: readable by its owner only, in a directory
    only the broker's user may enter; the object store's data likewise."""
    conf = RUN_DIR / "rabbitmq" / "etc" / "rabbitmq.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    for d in ("rabbitmq", "postgres", "s3"):
        assert stat.S_IMODE((RUN_DIR / d).stat().st_mode) == 0o700, d


# ---- regression tests for the audit's findings (issue 19, items 4-9) -------------------

@pytest.mark.parametrize("path", ["/songs/%ff", "/resources/%ff", "/songs/%c3", "/songs?id=%ff"])
def test_invalid_utf8_in_the_request_is_a_400(services, path):
    services["song"].ensure()
    services["resource"].ensure()
    for base in (os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"),
                 f"http://127.0.0.1:{services['song' if 'songs' in path else 'resource'].port}"):
        method = "DELETE" if "?" in path else "GET"
        r = requests.request(method, base + path, timeout=10)
        assert r.status_code == 400, (base, path, r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/json"
        body = r.json()
        assert body["errorCode"] == "400" and "\ufffd" in body["errorMessage"], body


def test_a_forged_method_cannot_forge_log_fields(services):
    """Sent straight to a service: a method with a tab and a terminal escape in it."""
    song = services["song"].ensure()
    before = len(song.log())
    import socket
    with socket.create_connection(("127.0.0.1", song.port), timeout=5) as c:
        c.sendall(b"AUDIT\tlevel=error\x1b[31m /songs/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
    time.sleep(0.5)
    new = song.log()[before:]
    assert 'method="AUDIT?level=error?[31m"' in new, new[-500:]  # it was logged, quoted
    assert "\x1b" not in new and "AUDIT\tlevel" not in new, new[-500:]


def test_services_listen_on_loopback_only(services):
    for name in ("storage", "song", "resource", "processor"):
        services[name].ensure()
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    for name, svc in services.items():
        addrs = [l.split()[3] for l in out.splitlines() if l.split()[3].endswith(f":{svc.port}")]
        assert addrs == [f"127.0.0.1:{svc.port}"], (name, addrs)


def test_a_bad_server_address_refuses_to_start():
    env = dict(os.environ, SERVER_ADDRESS="not-an-address", SERVER_PORT="0")
    p = subprocess.run(["timeout", "-s", "TERM", "5", f"{BUILD}/services/song/fermata-song"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 2 and "SERVER_ADDRESS" in p.stderr, (p.returncode, p.stderr[-500:])


def test_storages_are_capped(services, tmp_path):
    """POST /storages creates a bucket each time: a cap (STORAGE_MAX_COUNT, counted in the
    database for every instance) answers 409 and creates nothing once it is reached."""
    services["storage"].ensure()
    ids = [s["id"] for s in services["storage"].get("/storages").json()]
    cap = len(ids) + 2
    port = _free_port()
    env = dict(os.environ, SERVER_PORT=str(port), STORAGE_MAX_COUNT=str(cap))
    log = open(tmp_path / "storage-capped.log", "w")
    p = subprocess.Popen([f"{BUILD}/services/storage/fermata-storage"], env=env, stdout=log, stderr=subprocess.STDOUT)
    made = []
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(url + "/actuator/health/liveness", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        for i in range(3):
            r = requests.post(url + "/storages", json={"storageType": "PERMANENT", "bucket": f"cap-{port}-{i}",
                                                        "path": "/files"}, timeout=10)
            if i < 2:
                assert r.status_code == 200, r.text
                made.append(r.json()["id"])
            else:
                assert r.status_code == 409, r.text
                assert r.json() == {"errorMessage": f"Storage limit reached: at most {cap} storages are allowed",
                                    "errorCode": "409"}
        assert len(requests.get(url + "/storages", timeout=10).json()) == cap
    finally:
        if made:
            requests.delete(f"http://127.0.0.1:{port}/storages?id=" + ",".join(map(str, made)), timeout=10)
        p.terminate()
        p.wait(timeout=30)
    assert not SANITIZER_PATTERNS.search(open(tmp_path / "storage-capped.log").read())


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
