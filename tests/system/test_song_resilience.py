"""Song Service under faults: the database going away and coming back, graceful shutdown."""
import threading
import time

import requests

from conftest import wait_until
from test_song_api import assert_error, song_body


def test_database_down_gives_503_and_recovers(song, stack, new_id):
    i = new_id()
    assert song.post("/songs", json=song_body(i)).status_code == 200
    stack.kill("postgres")
    try:
        r = song.get(f"/songs/{i}")
        assert_error(r, 503)
        assert "postgres" not in r.text.lower() and "sql" not in r.text.lower()
        assert_error(song.post("/songs", json=song_body(new_id())), 503)
        h = song.get("/actuator/health")
        assert h.status_code == 503
        live = song.get("/actuator/health/liveness")  # the process serves: no restart wanted
        assert live.status_code == 200 and live.json() == {"status": "UP"}
        assert h.json()["status"] == "DOWN"
        assert h.json()["components"]["db"]["status"] == "DOWN"
    finally:
        stack.start("postgres")
    # no restart of the service: it reconnects by itself
    wait_until(lambda: song.get(f"/songs/{i}").status_code == 200, timeout=20, message="song readable again")
    assert song.get(f"/songs/{i}").json() == song_body(i)
    assert song.get("/actuator/health").json()["status"] == "UP"


def test_service_starts_with_database_down(services, stack, new_id):
    svc = services["song"]
    svc.stop()
    stack.kill("postgres")
    try:
        svc.start()  # starts and answers health even without its database
        assert svc.get("/actuator/health").status_code == 503
    finally:
        stack.start("postgres")
    i = new_id()
    wait_until(lambda: svc.post("/songs", json=song_body(i)).status_code == 200, timeout=20,
               message="song service serving after the database came up")


def test_sigterm_lets_in_flight_requests_finish(services, new_id):
    svc = services["song"].ensure()
    results = []
    stop = threading.Event()

    def client():
        s = requests.Session()
        while not stop.is_set():
            try:
                i = new_id()
                r = s.post(svc.url + "/songs", json=song_body(i), timeout=10)
                results.append((i, r.status_code))
            except requests.ConnectionError:
                results.append((None, "refused"))
                time.sleep(0.01)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    svc.stop()  # SIGTERM, waits for exit
    stop.set()
    for t in threads:
        t.join()
    svc.start()
    answered = [(i, c) for i, c in results if c != "refused"]
    assert answered, "no request got through before the stop"
    # every request that got an answer got a real one, and each 200 was stored
    assert all(c == 200 for _, c in answered), [c for _, c in answered if c != 200]
    for i, _ in answered[-20:]:
        assert svc.get(f"/songs/{i}").status_code == 200
    assert "stopped" in svc.log()
