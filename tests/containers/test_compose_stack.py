"""The Compose stack as `make containers` runs it (scripts/containers.sh: our images built
from deploy/, podman-compose, deploy/containers/compose.here.yaml): what a user of
`docker compose -f deploy/compose.yaml up --build` relies on.

Run by scripts/containers.sh only (it sets FERMATA_CONTAINERS, GATEWAY_URL, podman's
configuration, and runs the healthchecks podman 4.3 does not run by itself). In file
order, on a stack started from empty volumes: every container turns healthy (Zipkin and
Prometheus too; Grafana is not run here); Prometheus scrapes every service; ours run as
non-root on a read-only root; an upload is processed and downloads whole through the
gateway; a restarted and a recreated service container are served again; no log holds a
password of deploy/.env; `down` then `up` keeps every file and row; last, the API suite
(schemathesis against docs/openapi.yaml, as tests/apifuzz) passes through the gateway.
"""
import os
import pathlib
import subprocess
import sys
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
from mp3gen import make_mp3  # noqa: E402

pytestmark = pytest.mark.skipif(not os.environ.get("FERMATA_CONTAINERS"), reason="run by scripts/containers.sh")

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:28080")
KEYCLOAK = os.environ.get("KEYCLOAK_URL", "http://localhost:28180")
ALL = ("postgres", "rabbitmq", "localstack", "keycloak", "storage", "song", "resource", "processor", "gateway",
       "zipkin", "prometheus")
OURS = ("storage", "song", "resource", "processor", "gateway")
FUZZ_DIR = ROOT / "tests" / "apifuzz"
STATE = {}


def env_values():
    out = {}
    for line in (ROOT / "deploy" / ".env").read_text().splitlines():
        k, eq, v = line.partition("=")
        if eq and not k.startswith("#"):
            out[k.strip()] = v
    return out


_TOKENS = {}


def token(client="fermata-admin"):
    """An access token of one of the realm's clients (client-credentials grant, secret from
    deploy/.env), fetched from the Compose Keycloak and reused until a minute before it
    expires."""
    t = _TOKENS.get(client)
    if t and t[1] - 60 > time.monotonic():
        return t[0]
    secret = env_values()[{"fermata-reader": "FERMATA_READER_SECRET", "fermata-writer": "FERMATA_WRITER_SECRET",
                           "fermata-admin": "FERMATA_ADMIN_SECRET"}[client]]
    r = requests.post(f"{KEYCLOAK.replace('localhost', '127.0.0.1')}/realms/fermata/protocol/openid-connect/token",
                      data={"grant_type": "client_credentials", "client_id": client, "client_secret": secret},
                      timeout=30)
    assert r.status_code == 200, f"Keycloak token for {client}: {r.status_code} {r.text[:300]}"
    body = r.json()
    _TOKENS[client] = (body["access_token"], time.monotonic() + body["expires_in"])
    return body["access_token"]


@pytest.fixture(autouse=True)
def _bearer(monkeypatch):
    """Every request to the gateway without an Authorization header gets the admin
    client's token: the stack requires one (compose.yaml)."""
    original = requests.sessions.Session.request

    def request(self, method, url, *args, **kw):
        headers = dict(kw.get("headers") or {})
        if isinstance(url, str) and url.startswith(GATEWAY) and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {token()}"
        kw["headers"] = headers
        return original(self, method, url, *args, **kw)

    monkeypatch.setattr(requests.sessions.Session, "request", request)


def podman(*args, check=True, timeout=120):
    r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"podman {' '.join(args)}: {r.stderr}"
    return r


def compose(*args, timeout=300):
    r = subprocess.run([str(ROOT / "scripts" / "containers.sh"), "compose", *args], capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"compose {' '.join(args)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def name(svc):
    return f"fermata_{svc}_1"


def health(svc):
    r = podman("inspect", "--format", "{{.State.Health.Status}}", name(svc), check=False)
    return r.stdout.strip() if r.returncode == 0 else "missing"


def wait_healthy(svcs, timeout=420):
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        states = {s: health(s) for s in svcs}
        if all(v == "healthy" for v in states.values()):
            return
        time.sleep(2)
    logs = "\n".join(f"--- {s}\n{podman('logs', '--tail', '15', name(s), check=False).stderr}"
                     for s, v in states.items() if v != "healthy")
    raise AssertionError(f"not healthy in {timeout}s: {states}\n{logs}")


def wait_ok(path, timeout=90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(GATEWAY + path, timeout=5)
            if r.status_code == 200:
                return r
            last = (r.status_code, r.text[:200])
        except requests.RequestException as e:
            last = e
        time.sleep(1)
    raise AssertionError(f"GET {path} through the gateway: no 200 in {timeout}s; last {last}")


def test_every_container_turns_healthy():
    for svc in ALL:
        test = podman("inspect", "--format", "{{.Config.Healthcheck.Test}}", name(svc)).stdout.strip()
        assert test and test not in ("[]", "<nil>"), f"{svc} has no healthcheck"
    wait_healthy(ALL)


def test_the_api_requires_a_keycloak_token_with_the_right_scope():
    """compose.yaml requires authentication: the realm's clients get what their scopes
    allow, and nothing without a token."""
    plain = requests.get(GATEWAY + "/songs/1", headers={"Authorization": ""}, timeout=10)
    # an empty header is no credential: 401 in the contract's shape
    assert plain.status_code == 401 and plain.json()["errorCode"] == "401", plain.text
    assert "Bearer" in plain.headers.get("WWW-Authenticate", "")
    reader = {"Authorization": f"Bearer {token('fermata-reader')}"}
    writer = {"Authorization": f"Bearer {token('fermata-writer')}"}
    assert requests.get(GATEWAY + "/storages", headers=reader, timeout=10).status_code == 200
    song = {"id": 999001, "name": "Auth", "artist": "Keycloak", "album": "Realm", "duration": "01:00", "year": "2026"}
    denied = requests.post(GATEWAY + "/songs", json=song, headers=reader, timeout=10)
    assert denied.status_code == 403 and "insufficient_scope" in denied.headers.get("WWW-Authenticate", ""), denied.text
    assert requests.get(GATEWAY + "/songs/999001", headers=reader, timeout=10).status_code == 404, "a refused write changed something"
    bad = requests.post(GATEWAY + "/storages", json={"storageType": "STAGING", "bucket": "x-auth", "path": "/x"},
                        headers=writer, timeout=10)
    assert bad.status_code == 403, bad.text
    forged = reader["Authorization"][:-4] + ("AAAA" if not reader["Authorization"].endswith("AAAA") else "BBBB")
    assert requests.get(GATEWAY + "/storages", headers={"Authorization": forged}, timeout=10).status_code == 401


def test_prometheus_scrapes_every_service():
    """Compose's Prometheus (compose.here.yaml: 127.0.0.1:28090) has every service as a
    target, and each answered its last scrape of /actuator/prometheus."""
    deadline = time.monotonic() + 60
    jobs = {}
    while time.monotonic() < deadline:
        r = requests.get("http://127.0.0.1:28090/api/v1/targets", timeout=5)
        assert r.status_code == 200, r.text[:300]
        jobs = {t["labels"]["job"]: t["health"] for t in r.json()["data"]["activeTargets"]}
        if jobs == {s: "up" for s in ("resource", "song", "storage", "processor")}:
            return
        time.sleep(2)
    raise AssertionError(f"Prometheus targets: {jobs}")


def test_our_containers_run_as_non_root_on_a_read_only_root():
    for svc in OURS:
        uid = podman("exec", name(svc), "id", "-u").stdout.strip()
        assert uid != "0", f"{svc} runs as root"
        r = podman("exec", name(svc), "sh", "-c", "touch /usr/local/bin/x", check=False)
        assert r.returncode != 0, f"{svc}: the root filesystem is writable"


def test_an_upload_is_processed_and_downloads_whole():
    data = make_mp3(seconds=2.0, title="Containers", artist="Podman", album="Compose", year="2024")
    r = requests.post(GATEWAY + "/resources", data=data, headers={"Content-Type": "audio/mpeg"}, timeout=60)
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    song = wait_ok(f"/songs/{rid}", timeout=60).json()
    assert (song["name"], song["artist"], song["album"], song["year"]) == ("Containers", "Podman", "Compose", "2024")
    got = requests.get(f"{GATEWAY}/resources/{rid}", timeout=30)
    assert got.status_code == 200 and got.content == data
    part = requests.get(f"{GATEWAY}/resources/{rid}", headers={"Range": "bytes=0-9"}, timeout=30)
    assert part.status_code == 206 and part.content == data[:10]
    STATE.update(id=rid, data=data, song=song)


def test_a_restarted_service_container_is_served_again():
    assert "id" in STATE, "needs the upload above"
    for svc in ("song", "resource"):
        podman("restart", name(svc))
        wait_healthy([svc], timeout=120)
    assert wait_ok(f"/songs/{STATE['id']}").json() == STATE["song"]
    assert requests.get(f"{GATEWAY}/resources/{STATE['id']}", timeout=30).content == STATE["data"]


def test_a_recreated_service_container_is_found_again():
    compose("up", "-d", "--force-recreate", "--no-deps", "storage")
    wait_healthy(["storage"], timeout=120)
    kinds = {s["storageType"] for s in wait_ok("/storages").json()}
    assert {"STAGING", "PERMANENT"} <= kinds


def secrets():
    out = []
    for line in (ROOT / "deploy" / ".env").read_text().splitlines():
        k, _, v = line.partition("=")
        if (k.endswith("PASSWORD") or k.endswith("SECRET")) and v:
            out.append(v)
    assert out, "deploy/.env holds no password"
    return out


def test_logs_hold_no_password():
    pw = secrets()
    for svc in ALL:
        r = podman("logs", name(svc), check=False, timeout=60)
        text = r.stdout + r.stderr
        leaked = [p[:4] + "..." for p in pw if p in text]
        assert not leaked, f"{svc}'s log holds passwords of deploy/.env ({leaked})"


def test_down_and_up_keep_every_file_and_row():
    assert "id" in STATE, "needs the upload above"
    storages = requests.get(GATEWAY + "/storages", timeout=10).json()
    compose("down")
    assert podman("ps", "-a", "--format", "{{.Names}}").stdout.strip() == ""
    compose("up", "-d")
    wait_healthy(ALL)
    assert wait_ok(f"/songs/{STATE['id']}").json() == STATE["song"]
    got = requests.get(f"{GATEWAY}/resources/{STATE['id']}", timeout=30)
    assert got.status_code == 200 and got.content == STATE["data"], "the file did not survive down and up"
    assert requests.get(GATEWAY + "/storages", timeout=10).json() == storages


# Last: it creates and deletes songs, resources and storages at will.
def test_api_suite_through_the_gateway(tmp_path):
    protected = [s["id"] for s in requests.get(GATEWAY + "/storages", timeout=10).json()]
    env = dict(os.environ, PYTHONPATH=str(FUZZ_DIR), SCHEMATHESIS_HOOKS="fermata_hooks",
               APIFUZZ_PROTECTED_STORAGES=",".join(map(str, protected)), NO_COLOR="1")
    # the admin client's token as the spec's bearerAuth value (it lives 5 minutes: the run takes ~1)
    conf = (FUZZ_DIR / "schemathesis.toml").read_text()
    assert 'bearer = "fuzz-run-token"' in conf
    (tmp_path / "schemathesis.toml").write_text(conf.replace('bearer = "fuzz-run-token"', f'bearer = "{token()}"'))
    cmd = [str(ROOT / ".venv" / "bin" / "schemathesis"), "--config-file", str(tmp_path / "schemathesis.toml"),
           "--no-color", "run", str(ROOT / "docs" / "openapi.yaml"), "--url", GATEWAY,
           "--max-examples", os.environ.get("CONTAINERS_API_EXAMPLES", "20"), "--seed", "1", "--workers", "1",
           "--request-timeout", "30", "--exclude-tag", "Actuator"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, "schemathesis through the Compose gateway:\n" + r.stdout[-15000:] + r.stderr[-3000:]
    wait_healthy(ALL, timeout=60)  # nothing crashed
