"""Security basics a user can check from outside: services never run as root, credentials
never reach the logs, internal endpoints stay behind the gateway."""
import os
import pwd
import stat
import subprocess

import pytest
import requests

from conftest import ROOT, RUN_DIR

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
