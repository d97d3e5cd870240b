"""Security basics a user can check from outside: services never run as root, credentials
never reach the logs, internal endpoints stay behind the gateway."""
import os
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
