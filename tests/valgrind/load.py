"""Short load for the valgrind run (tests/valgrind/run.sh): a few dozen requests per
endpoint of every service, good and bad, and uploads through the whole pipeline
(gateway -> Resource Service -> broker -> Resource Processor -> Song Service -> move to
PERMANENT), so every code path that allocates in normal operation runs at least once.
Fails (exit 1) when an answer is not what the contract says, so a valgrind-clean run is
also a working one."""
import os
import pathlib
import subprocess
import sys
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "system"))
from mp3gen import make_mp3  # noqa: E402

GW = os.environ["GATEWAY_URL"]
PORTS = {s: int(os.environ[f"{s.upper()}_PORT"]) for s in ("resource", "song", "storage", "processor")}
MP3 = {"Content-Type": "audio/mpeg"}
T = 60  # seconds: everything is slow under valgrind
problems = []


def expect(what, r, *codes):
    if r.status_code not in codes:
        problems.append(f"{what}: {r.status_code} {r.text[:200]}")
    return r


def db(sql):
    return subprocess.run(["psql", os.environ["RESOURCE_DB_URL"], "-tAc", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


base = int(time.time()) % 1000000 * 1000
# ---- Storage Service
for i in range(10):
    expect("GET /storages", requests.get(f"{GW}/storages", timeout=T), 200)
created = []
for i in range(10):
    r = expect("POST /storages", requests.post(f"{GW}/storages", json={"storageType": "PERMANENT", "bucket": f"vg-{base}-{i}",
                                                                       "path": "/files"}, timeout=T), 200)
    if r.status_code == 200:
        created.append(r.json()["id"])
for body in ('{"storageType":"X","bucket":"A","path":"x"}', "not json", "[]", '{"bucket":1}'):
    expect("POST /storages bad", requests.post(f"{GW}/storages", data=body, headers={"Content-Type": "application/json"},
                                               timeout=T), 400)
expect("POST /storages dup", requests.post(f"{GW}/storages", json={"storageType": "PERMANENT", "bucket": f"vg-{base}-0",
                                                                   "path": "/files"}, timeout=T), 409)
expect("DELETE /storages", requests.delete(f"{GW}/storages?id={','.join(map(str, created))}", timeout=T), 200)
for q in ("", "?id=", "?id=a", "?id=" + "1," * 150):
    expect("DELETE /storages bad", requests.delete(f"{GW}/storages{q}", timeout=T), 400)

# ---- Song Service
for i in range(20):
    song = {"id": base + i, "name": f"Song {i} é", "artist": "Valgrind", "album": "Memcheck", "duration": "01:23",
            "year": "1999"}
    expect("POST /songs", requests.post(f"{GW}/songs", json=song, timeout=T), 200)
    expect("POST /songs dup", requests.post(f"{GW}/songs", json=song, timeout=T), 409)
    expect("GET /songs", requests.get(f"{GW}/songs/{base + i}", timeout=T), 200)
for body in ('{"id":0,"name":"","duration":"1:2","year":"01977"}', "{", '"x"', '{"id":"1"}'):
    expect("POST /songs bad", requests.post(f"{GW}/songs", data=body, headers={"Content-Type": "application/json"},
                                            timeout=T), 400)
for raw in ("ABC", "0", "-1", "2147483648", "1.1"):
    expect("GET /songs bad id", requests.get(f"{GW}/songs/{raw}", timeout=T), 400)
expect("GET /songs 404", requests.get(f"{GW}/songs/2147483000", timeout=T), 404)
expect("DELETE /songs", requests.delete(f"{GW}/songs?id={','.join(str(base + i) for i in range(20))}", timeout=T), 200)
expect("PUT /songs", requests.put(f"{GW}/songs", timeout=T), 405)

# ---- Resource Service, and the pipeline through the processor
ids = {}
for i in range(24):
    data = make_mp3(seconds=1.0, title=f"VG {i}", artist="Valgrind", album="Pipeline", year="2001", freq=300 + 10 * i)
    r = expect("POST /resources", requests.post(f"{GW}/resources", data=data, headers=MP3, timeout=T), 200)
    if r.status_code == 200:
        ids[r.json()["id"]] = data
expect("POST /resources wrong type", requests.post(f"{GW}/resources", data=b"x", headers={"Content-Type": "text/plain"},
                                                   timeout=T), 400)
for body in (b"", b"\xff\xfb" * 10, os.urandom(4096)):
    expect("POST /resources not mp3", requests.post(f"{GW}/resources", data=body, headers=MP3, timeout=T), 400)
for rid, data in list(ids.items())[:8]:
    g = expect("GET /resources", requests.get(f"{GW}/resources/{rid}", timeout=T), 200)
    if g.status_code == 200 and g.content != data:
        problems.append(f"GET /resources/{rid}: bytes differ")
    expect("GET range", requests.get(f"{GW}/resources/{rid}", headers={"Range": "bytes=0-99"}, timeout=T), 206)
    expect("GET suffix range", requests.get(f"{GW}/resources/{rid}", headers={"Range": "bytes=-100"}, timeout=T), 206)
    expect("GET bad range", requests.get(f"{GW}/resources/{rid}", headers={"Range": "bytes=999999-"}, timeout=T), 416)
for raw in ("ABC", "0", "2147483648"):
    expect("GET /resources bad id", requests.get(f"{GW}/resources/{raw}", timeout=T), 400)
expect("GET /resources 404", requests.get(f"{GW}/resources/2147483000", timeout=T), 404)

deadline = time.monotonic() + 600
id_list = ",".join(map(str, ids))
while time.monotonic() < deadline:
    n = int(db(f"SELECT count(*) FROM resources WHERE id IN ({id_list}) AND state='PERMANENT'") or 0)
    if n == len(ids):
        break
    time.sleep(2)
else:
    problems.append(f"only {n} of {len(ids)} uploads PERMANENT after 600 s")
for rid in ids:
    s = expect("GET /songs (processed)", requests.get(f"{GW}/songs/{rid}", timeout=T), 200)
    if s.status_code == 200 and s.json().get("artist") != "Valgrind":
        problems.append(f"song {rid}: {s.text}")
half = list(ids)[: len(ids) // 2]
r = expect("DELETE /resources", requests.delete(f"{GW}/resources?id={','.join(map(str, half))}", timeout=T), 200)
if r.status_code == 200 and r.json() != {"ids": half}:
    problems.append(f"DELETE /resources: {r.text}")
expect("DELETE /resources bad", requests.delete(f"{GW}/resources?id=1,x", timeout=T), 400)

# ---- actuator of every service
for s, port in PORTS.items():
    for path in ("/actuator/health", "/actuator/prometheus"):
        expect(f"{s} {path}", requests.get(f"http://127.0.0.1:{port}{path}", timeout=T), 200)
R = f"http://127.0.0.1:{PORTS['resource']}"
for path in ("/actuator/circuitbreakers", "/actuator/circuitbreakerevents", "/actuator/circuitbreakerevents/storageService",
             "/actuator/circuitbreakerevents/storageService/success"):
    expect(f"resource {path}", requests.get(R + path, timeout=T), 200)
expect("breaker state", requests.post(R + "/actuator/circuitbreakers/storageService", json={"updateState": "CLOSE"},
                                      timeout=T), 200)
expect("breaker bad state", requests.post(R + "/actuator/circuitbreakers/storageService", json={"updateState": "NO"},
                                          timeout=T), 400)
expect("unknown route", requests.get(f"http://127.0.0.1:{PORTS['song']}/nope", timeout=T), 404)

print(f"load: {len(ids)} uploads processed, {len(problems)} problems")
for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
