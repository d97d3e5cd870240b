"""Slow and idle clients against the event-loop HTTP core (lib/http): a Song Service of its
own, on the shared stack's database.

- 2,000 connections that are idle or trickle a request a byte at a time cost no thread each,
  and while they are open other clients are served as before;
- over HTTP_MAX_CONNECTIONS a new client gets a clear 503 in the contract's error shape (and
  the connection is closed), and is served again once connections are freed.
"""
import os
import random
import socket
import threading
import time

import requests

from conftest import PRIVATE_PORT_BASE
from nativesvc import NativeService

PORT = PRIVATE_PORT_BASE + 890
SONG = {"name": "Slow", "artist": "Loris", "album": "Idle", "duration": "03:00", "year": "2001"}


def song_env(**over):
    env = {"SERVER_PORT": str(PORT), "SONG_DB_URL": os.environ["SONG_DB_URL"]}
    env.update({k: str(v) for k, v in over.items()})
    return env


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


def connect(n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        socks.append(s)
    return socks


def test_two_thousand_idle_and_trickling_connections_cost_no_thread_and_starve_no_one():
    svc = NativeService("song", song_env(HTTP_IDLE_TIMEOUT=120), PORT, label="slowclients").start()
    idle, trickle = [], []
    stop = threading.Event()
    try:
        svc.wait_healthy()
        r = requests.post(svc.url + "/songs", json=dict(SONG, id=random.randint(10**8, 2 * 10**9)), timeout=10)
        assert r.status_code == 200, r.text
        sid = r.json()["id"]
        base_threads = threads(svc.proc.pid)

        idle = connect(1000)
        trickle = connect(1000)
        request = b"GET /songs/%d HTTP/1.1\r\nHost: x\r\nX-Slow: " % sid + b"a" * 64

        def drip():
            # one byte per connection per round, a round every 0.5 s: a slowloris
            i = 0
            while not stop.is_set() and i < len(request):
                for s in trickle:
                    try:
                        s.send(request[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(0.5)

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(2)  # every connection accepted and some bytes in
        assert svc.proc.poll() is None, svc.log()[-3000:]

        # others are served: fresh connections and one keep-alive client, each answer in
        # well under the 2 s a starved server would miss
        session = requests.Session()
        for i in range(100):
            r = session.get(f"{svc.url}/songs/{sid}", timeout=2)
            assert r.status_code == 200 and r.json()["name"] == "Slow", (i, r.status_code, r.text)
            r = requests.get(f"{svc.url}/songs/{sid}", timeout=2, headers={"Connection": "close"})
            assert r.status_code == 200, (i, r.status_code, r.text)

        # no thread per connection: 2,000 open connections, a handful of threads more at most
        now = threads(svc.proc.pid)
        assert now <= base_threads + 8, f"{now} threads with 2000 slow connections open (was {base_threads})"

        # the slow ones are still connected (not dropped to make room)
        for s in idle[:50] + trickle[:50]:
            s.setblocking(False)
            try:
                assert s.recv(1) != b"", "the server closed a slow connection"
            except BlockingIOError:
                pass  # nothing to read, still open
    finally:
        stop.set()
        for s in idle + trickle:
            s.close()
        svc.stop()


def test_over_the_connection_limit_new_clients_get_a_clear_503_then_are_served_again():
    limit = 20
    svc = NativeService("song", song_env(HTTP_MAX_CONNECTIONS=limit, HTTP_IDLE_TIMEOUT=120), PORT,
                        label="connlimit").start()
    held = []
    try:
        svc.wait_healthy()
        held = connect(limit)
        time.sleep(0.5)  # the loop accepted them
        r = requests.get(svc.url + "/songs/1", timeout=5)
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/json"
        assert r.json() == {"errorMessage": f"Too many connections: the server's limit is {limit}",
                            "errorCode": "503"}
        assert r.headers.get("Connection", "").lower() == "close"
        # the held connections are still served
        held[0].sendall(b"GET /actuator/health/liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        held[0].settimeout(5)
        reply = b""
        while chunk := held[0].recv(4096):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]

        for s in held:
            s.close()
        held = []
        deadline = time.monotonic() + 10
        while True:
            r = requests.get(svc.url + "/songs/999999999", timeout=5)
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 404, (r.status_code, r.text)
    finally:
        for s in held:
            s.close()
        svc.stop()
