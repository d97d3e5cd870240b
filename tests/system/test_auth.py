"""Authentication on: `FERMATA_AUTH=jwt make run` (scripts/run.sh on a private stack,
tests/system/privatestack.py), its local issuer (scripts/stack.d/35-issuer.sh) and
scripts/token.sh.

* Every route, through the gateway and on the service's own port, with no token, an
  expired one, a wrong issuer, a wrong audience, a missing scope, a forged signature,
  alg=none, and the right token: 401 / 403 in the contract's shape with RFC 6750's
  WWW-Authenticate, or the route's own answer; a refused request changes nothing.
* JWKS rotation: a new key verifies once the set is refetched, the old one until it is
  retired.
* The internal ports (service to service) carry only the routes the services call.
* The contract tests (song, resource and storage API, both routes) pass against this stack
  with a token added to every request (FERMATA_TEST_BEARER, conftest.py).
"""
import base64
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, SANITIZER_PATTERNS, wait_until
from mp3gen import make_mp3
from privatestack import PrivateRun, running

BUILD = os.environ.get("FERMATA_BUILD_DIR") or str(ROOT / "build" / "debug")
TOOL = os.path.join(BUILD, "tests", "tools", "jwt_tool")
MP3 = {"Content-Type": "audio/mpeg"}
READ, WRITE, ADMIN = "fermata.read", "fermata.write", "fermata.admin"


@pytest.fixture(scope="module")
def stack():
    run = PrivateRun(ROOT, PRIVATE_PORT_BASE + 800, BUILD, data_dir=RUN_DIR / "auth",
                     log_path=RUN_DIR / "auth-run.log", FERMATA_AUTH="jwt", FERMATA_AUTH_JWKS_MIN_REFRESH="1s")
    yield from running(run, "Authentication: ON", SANITIZER_PATTERNS)


def token_sh(stack, *args):
    return stack.script("token.sh", *args).stdout.strip()


def issuer(stack):
    return f"http://127.0.0.1:{stack.env['ISSUER_PORT']}"


def mint(stack, *extra, kid=None, scope=f"{READ} {WRITE} {ADMIN}", iss=None, aud="fermata"):
    """A token from the stack's issuer key (kid: the current one); extra: more jwt_tool
    options (--exp, --iat, --kid to name another kid in the header)."""
    d = stack.data_dir() / "issuer"
    kid = kid or (d / "current").read_text().strip()
    args = [TOOL, "mint", "--key", str(d / "keys" / f"{kid}.pem"), "--iss", iss or issuer(stack),
            "--aud", aud, "--scope", scope]
    if "--kid" not in extra:
        args += ["--kid", kid]
    if "--exp" not in extra:
        args += ["--ttl", "600"]
    return subprocess.run(args + list(extra), check=True, capture_output=True, text=True).stdout.strip()


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def variants(stack, scope):
    """name -> (Authorization header or None, status, WWW-Authenticate must contain)."""
    good = mint(stack, scope=scope)
    head, payload, sig = good.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}"
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    alg_none = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    other_scope = {READ: WRITE, WRITE: READ, ADMIN: f"{READ} {WRITE}"}[scope]
    now = int(time.time())
    return {
        "none": (None, 401, 'Bearer'),
        "expired": ("Bearer " + mint(stack, "--exp", str(now - 3600), "--iat", str(now - 7200), scope=scope), 401,
                    'error="invalid_token"'),
        "wrong issuer": ("Bearer " + mint(stack, iss="http://evil.example", scope=scope), 401,
                         'error="invalid_token"'),
        "wrong audience": ("Bearer " + mint(stack, aud="someone-else", scope=scope), 401, 'error="invalid_token"'),
        "missing scope": ("Bearer " + mint(stack, scope=other_scope), 403, 'error="insufficient_scope"'),
        "forged signature": ("Bearer " + forged, 401, 'error="invalid_token"'),
        "alg none": ("Bearer " + alg_none, 401, 'error="invalid_token"'),
        "right": ("Bearer " + good, None, None),
    }


def ids_of(stack, table):
    db = {"resources": "RESOURCE_DB_URL", "songs": "SONG_DB_URL", "storages": "STORAGE_DB_URL"}[table]
    return set(stack.psql(db, f"SELECT id FROM {table}"))


def routes(stack, rid, sid):
    """(name, method, url base key, path, scope, kwargs, table it changes or None)."""
    song = {"id": 999000 + int(time.time()) % 1000, "name": "Auth", "artist": "A", "album": "B",
            "duration": "01:00", "year": "2001"}
    storage = {"storageType": "STAGING", "bucket": f"auth-{int(time.time() * 1000) % 10**9}", "path": "/files"}
    return [
        ("GET resource", "GET", f"/resources/{rid}", READ, {}, None),
        ("POST resource", "POST", "/resources", WRITE, {"data": make_mp3(seconds=1.0), "headers": MP3}, "resources"),
        ("DELETE resources", "DELETE", "/resources?id=2147483000", WRITE, {}, None),
        ("GET song", "GET", f"/songs/{rid}", READ, {}, None),
        ("POST song", "POST", "/songs", WRITE, {"json": song}, "songs"),
        ("DELETE songs", "DELETE", "/songs?id=2147483000", WRITE, {}, None),
        ("GET storages", "GET", "/storages", READ, {}, None),
        ("POST storage", "POST", "/storages", ADMIN, {"json": storage}, "storages"),
        ("DELETE storages", "DELETE", f"/storages?id={sid}", ADMIN, {}, "storages"),
    ]


def test_every_route_and_every_kind_of_token(stack):
    right = "Bearer " + mint(stack)
    r = stack.post("/resources", data=make_mp3(seconds=1.0, title="Auth seed"), headers={**MP3, "Authorization": right})
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    wait_until(lambda: stack.get(f"/songs/{rid}", headers={"Authorization": right}).status_code == 200,
               message="the processor storing metadata through the internal ports")
    spare = stack.post("/storages", json={"storageType": "PERMANENT", "bucket": f"auth-spare-{rid}", "path": "/x"},
                       headers={"Authorization": right})
    assert spare.status_code == 200, spare.text
    sid = spare.json()["id"]
    bases = {"gateway": stack.gateway}
    problems = []
    for name, method, path, scope, kw, table in routes(stack, rid, sid):
        service = {"/resources": "RESOURCE_PORT", "/songs": "SONG_PORT", "/storages": "STORAGE_PORT"}[
            "/" + path.split("/")[1].split("?")[0]]
        bases["direct"] = f"http://127.0.0.1:{stack.env[service]}"
        for route, base in bases.items():
            for kind, (auth, status, challenge) in variants(stack, scope).items():
                if kind == "right":
                    continue  # last, below: it may change the state
                before = ids_of(stack, table) if table else None
                headers = dict(kw.get("headers", {}))
                if auth:
                    headers["Authorization"] = auth
                resp = requests.request(method, base + path, timeout=30, **{**kw, "headers": headers})
                where = f"{name} {route} {kind}"
                if resp.status_code != status:
                    problems.append(f"{where}: {resp.status_code} {resp.text[:200]}")
                    continue
                body = resp.json()
                if resp.headers.get("Content-Type") != "application/json" or body.get("errorCode") != str(status) \
                        or not body.get("errorMessage") or set(body) != {"errorMessage", "errorCode"}:
                    problems.append(f"{where}: not the contract's error shape: {resp.headers} {resp.text[:200]}")
                www = resp.headers.get("WWW-Authenticate", "")
                if not www.startswith("Bearer") or challenge not in www:
                    problems.append(f"{where}: WWW-Authenticate {www!r}")
                if status == 403 and f'scope="{scope}"' not in www:
                    problems.append(f"{where}: the challenge does not name {scope}: {www!r}")
                if table and ids_of(stack, table) != before:
                    problems.append(f"{where}: a refused request changed {table}")
            auth, _, _ = variants(stack, scope)["right"]
            headers = dict(kw.get("headers", {}), Authorization=auth)
            if name == "POST song":
                kw = {"json": dict(kw["json"], id=kw["json"]["id"] + (route == "direct"))}
            if name == "POST storage":
                kw = {"json": dict(kw["json"], bucket=kw["json"]["bucket"] + ("-d" if route == "direct" else "-g"))}
            if name == "DELETE storages" and route == "direct":
                continue  # deleted through the gateway already
            resp = requests.request(method, base + path, timeout=30, **{**kw, "headers": headers})
            if resp.status_code in (401, 403) or resp.status_code >= 500:
                problems.append(f"{name} {route} right token: {resp.status_code} {resp.text[:200]}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_actuator_writes_need_admin_even_on_the_service_port(stack):
    url = f"http://127.0.0.1:{stack.env['RESOURCE_PORT']}/actuator/circuitbreakers/storageService"
    body = {"updateState": "FORCE_OPEN"}
    r = requests.post(url, json=body, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = requests.post(url, json=body, headers={"Authorization": "Bearer " + mint(stack, scope=f"{READ} {WRITE}")},
                      timeout=10)
    assert r.status_code == 403, r.text
    state = requests.get(f"http://127.0.0.1:{stack.env['RESOURCE_PORT']}/actuator/circuitbreakers", timeout=10).json()
    assert state["circuitBreakers"]["storageService"]["state"] == "CLOSED"
    admin = {"Authorization": "Bearer " + mint(stack, scope=ADMIN)}
    for s in ("FORCE_OPEN", "CLOSE"):
        r = requests.post(url, json={"updateState": s}, headers=admin, timeout=10)
        assert r.status_code == 200, r.text
    # reads and the probes stay open
    for p in ("/actuator/health", "/actuator/health/liveness", "/actuator/prometheus", "/actuator/circuitbreakers"):
        assert requests.get(f"http://127.0.0.1:{stack.env['RESOURCE_PORT']}{p}", timeout=10).status_code == 200, p


def test_jwks_rotation(stack):
    old = mint(stack)
    assert stack.get("/storages", headers={"Authorization": "Bearer " + old}).status_code == 200
    new_kid = token_sh(stack, "--rotate")
    new = token_sh(stack, READ)
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "==="))["kid"] == new_kid
    # a kid the cached set lacks makes the service refetch it (at most once a second here)
    wait_until(lambda: stack.get("/storages", headers={"Authorization": "Bearer " + new}).status_code == 200,
               timeout=20, message="the new key verifying")
    assert stack.get("/storages", headers={"Authorization": "Bearer " + old}).status_code == 200  # still published
    token_sh(stack, "--retire")
    # the next unknown kid refetches the set; from then on the retired key is gone
    stranger = mint(stack, "--kid", "no-such-kid", kid=new_kid)

    def old_refused():
        stack.get("/storages", headers={"Authorization": "Bearer " + stranger})
        return stack.get("/storages", headers={"Authorization": "Bearer " + old}).status_code == 401

    wait_until(old_refused, timeout=90, interval=1.0, message="the retired key refused")
    assert stack.get("/storages", headers={"Authorization": "Bearer " + new}).status_code == 200


def test_internal_ports_carry_only_what_services_call(stack):
    song = f"http://127.0.0.1:{stack.env['SONG_INTERNAL_PORT']}"
    storage = f"http://127.0.0.1:{stack.env['STORAGE_INTERNAL_PORT']}"
    resource = f"http://127.0.0.1:{stack.env['RESOURCE_INTERNAL_PORT']}"
    assert requests.get(f"{storage}/storages", timeout=10).status_code == 200
    assert requests.delete(f"{storage}/storages?id=1", timeout=10).status_code == 405
    assert requests.post(f"{storage}/storages", json={}, timeout=10).status_code == 405
    assert requests.get(f"{song}/songs/1", timeout=10).status_code == 404  # no such route
    assert requests.post(f"{resource}/resources", data=b"x", headers=MP3, timeout=10).status_code in (404, 405)
    assert requests.post(f"{resource}/actuator/circuitbreakers/storageService", json={"updateState": "FORCE_OPEN"},
                         timeout=10).status_code == 404
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    for port in (stack.env[p] for p in ("SONG_INTERNAL_PORT", "STORAGE_INTERNAL_PORT", "RESOURCE_INTERNAL_PORT")):
        listening = [l.split()[3] for l in out.splitlines() if l.split()[3].endswith(f":{port}")]
        assert listening == [f"127.0.0.1:{port}"], listening


def test_contract_suite_with_a_token(stack):
    """The song, resource and storage contract tests, unchanged, against this stack: each
    request gets a token with every scope (FERMATA_TEST_BEARER, conftest.py)."""
    # as in the shared test stack, where these modules run without the processor (one of
    # them checks the STAGING bucket right after an upload)
    stack.services("stop", "processor")
    env = dict(stack.env)
    env.update(stack.stack_env())
    env["FERMATA_DATA_DIR"] = str(stack.data_dir())
    env["GATEWAY_URL"] = stack.gateway
    env["FERMATA_TEST_BEARER"] = mint(stack)
    env["FERMATA_ROOT"] = str(ROOT)
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
                        "tests/system/test_song_api.py", "tests/system/test_resource_api.py",
                        "tests/system/test_storage_api.py"],
                       cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900)
    tail = (p.stdout + p.stderr)[-6000:]
    assert p.returncode == 0, tail
    print(tail.splitlines()[-1])
