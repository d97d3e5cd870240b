"""API fuzzing with schemathesis (pinned in tests/requirements.txt) against docs/openapi.yaml,
through the gateway: no 5xx, no response outside the described statuses, shapes and
content types, no crashed service.

A bounded run for `make test` (APIFUZZ_EXAMPLES per operation, default 30; about a
minute); tests/apifuzz/run.sh is the long run. The actuator operations are fuzzed directly
on the Resource Service (the gateway hides them; the POST that changes a breaker's state
is left out so later tests find the breaker as configured).

schemathesis's configuration (checks, per-operation exceptions) is
tests/apifuzz/schemathesis.toml, its hooks tests/apifuzz/fermata_hooks.py (the MP3
serializer, the seeded storages kept out of DELETE /storages). What the run creates is
removed afterwards: storages and songs that did not exist before, so the rest of the
session sees the stack as it was (a fuzzed song with the id of a future upload would
otherwise answer that upload's metadata).

Knobs: APIFUZZ_EXAMPLES (30), APIFUZZ_SEED (1; fixed so `make test` is repeatable).
"""
import os
import pathlib
import subprocess

import pytest
import requests

from conftest import ROOT

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
EXAMPLES = os.environ.get("APIFUZZ_EXAMPLES", "30")
SEED = os.environ.get("APIFUZZ_SEED", "1")
FUZZ_DIR = ROOT / "tests" / "apifuzz"


@pytest.fixture(scope="module")
def everything_up(stack, services):
    for c in ("postgres", "rabbitmq", "s3", "gateway"):
        stack.start(c)
    for name in ("storage", "song", "resource", "processor"):
        services[name].ensure()
    return services


def song_ids():
    out = subprocess.run(["psql", os.environ["SONG_DB_URL"], "-tAc", "SELECT id FROM songs"], check=True,
                         capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


def delete_ids(path, ids):
    ids = sorted(ids)
    while ids:
        chunk, size = [], 0
        while ids and size + len(str(ids[0])) + 1 <= 200:
            size += len(str(ids[0])) + 1
            chunk.append(ids.pop(0))
        r = requests.delete(f"{GATEWAY}{path}?id={','.join(map(str, chunk))}", timeout=30)
        assert r.status_code == 200, r.text


def schemathesis(tmp_path, base_url, *args, protected=()):
    env = dict(os.environ, PYTHONPATH=str(FUZZ_DIR), SCHEMATHESIS_HOOKS="fermata_hooks",
               APIFUZZ_PROTECTED_STORAGES=",".join(map(str, protected)), NO_COLOR="1")
    cmd = [str(ROOT / ".venv" / "bin" / "schemathesis"), "--config-file", str(FUZZ_DIR / "schemathesis.toml"),
           "--no-color", "run", str(ROOT / "docs" / "openapi.yaml"), "--url", base_url, "--max-examples", EXAMPLES,
           "--seed", SEED, "--workers", "1", "--request-timeout", "30", *args]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    summary = r.stdout[r.stdout.rfind("SUMMARY"):] if "SUMMARY" in r.stdout else r.stdout[-3000:]
    print(f"\n$ {' '.join(cmd[3:])}\n{summary}")
    return r


def test_schemathesis_through_gateway(everything_up, tmp_path):
    storages_before = requests.get(f"{GATEWAY}/storages", timeout=10).json()
    songs_before = song_ids()
    try:
        r = schemathesis(tmp_path, GATEWAY, "--exclude-tag", "Actuator",
                         protected=[s["id"] for s in storages_before])
    finally:
        # put the storages and songs back as they were
        now = requests.get(f"{GATEWAY}/storages", timeout=10).json()
        keep = {(s["storageType"], s["bucket"], s["path"]) for s in storages_before}
        delete_ids("/storages", {s["id"] for s in now if (s["storageType"], s["bucket"], s["path"]) not in keep})
        have = {(s["storageType"], s["bucket"], s["path"]) for s in now}
        for s in storages_before:
            if (s["storageType"], s["bucket"], s["path"]) not in have:
                p = requests.post(f"{GATEWAY}/storages", json={k: s[k] for k in ("storageType", "bucket", "path")},
                                  timeout=10)
                assert p.status_code == 200, p.text
        delete_ids("/songs", song_ids() - songs_before)
    assert r.returncode == 0, "schemathesis found problems:\n" + r.stdout[-20000:] + r.stderr[-3000:]
    for name, svc in everything_up.items():
        assert svc.get("/actuator/health").status_code in (200, 503), f"{name} does not answer after the run"


def test_schemathesis_actuator_on_resource_service(everything_up, tmp_path):
    r = schemathesis(tmp_path, everything_up["resource"].url, "--include-tag", "Actuator",
                     "--exclude-method", "POST")
    assert r.returncode == 0, "schemathesis found problems:\n" + r.stdout[-20000:] + r.stderr[-3000:]
