"""lib/db's connection pool against the stack's PostgreSQL, and its gauges on each service.

The C side runs through ``tests/tools/db_driver`` (``db_driver`` in
``$FERMATA_BUILD_DIR/tests/tools``, default ``build/debug``) with a pool of one connection, so
every caller but one has to wait: what a user sees under load as a request that waits its
turn, or one that waits behind later arrivals for as long as they keep coming.
"""

import json
import os
import re
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DB_BUSY = -5


def driver(*args):
    path = os.path.join(os.environ.get("FERMATA_BUILD_DIR", os.path.join(ROOT, "build", "debug")), "tests", "tools",
                        "db_driver")
    if not os.access(path, os.X_OK):
        pytest.fail(f"db_driver not found at {path}: build it (make build) and set FERMATA_BUILD_DIR")
    p = subprocess.run([path, *args, os.environ["SONG_DB_URL"]], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_waiters_get_the_connection_in_arrival_order(services):
    # waiters 1..4 queue one after another behind the holder (0), which releases and asks
    # again at once: it must wait behind all four (a plain condition variable lets it
    # barge in first, and the longest waiter ends up last)
    for _ in range(3):
        r = driver("fifo")
        assert r["order"] == [1, 2, 3, 4, 0], r
        assert r["holder_rc"] == 0
        assert (r["open"], r["idle"], r["pending"]) == (1, 1, 0), r


def test_a_waiter_that_gives_up_leaves_the_queue_and_loses_nothing(services):
    r = driver("timeout")
    assert r["waiter_rc"] == DB_BUSY, r
    assert r["pending_after_timeout"] == 0 and r["timeouts"] == 1, r
    # the connection released after the timeout went back to the pool, not to the departed waiter
    assert (r["open_after_release"], r["idle_after_release"]) == (1, 1), r
    assert r["again_rc"] == 0 and r["exec_rc"] == 0, r


@pytest.mark.parametrize("name", ["song", "storage", "resource"])
def test_pool_gauges_under_hikaricp_names(services, name):
    svc = services[name]
    svc.ensure()
    assert svc.get("/actuator/health").status_code == 200  # uses a connection, so one is open
    r = svc.get("/actuator/prometheus")
    assert r.status_code == 200
    text = r.text
    values = {}
    for metric in ("hikaricp_connections_active", "hikaricp_connections_idle", "hikaricp_connections_pending",
                   "hikaricp_connections", "hikaricp_connections_max", "hikaricp_connections_timeout_total"):
        assert f"# TYPE {metric} " in text, metric
        m = re.search(rf'^{metric}{{pool="{name}"}} (\d+)\.0$', text, re.M)
        assert m, metric
        values[metric] = int(m.group(1))
    assert values["hikaricp_connections_max"] == int(os.environ.get("DB_POOL_SIZE", "16"))
    assert 1 <= values["hikaricp_connections"] <= values["hikaricp_connections_max"]
    assert values["hikaricp_connections"] == values["hikaricp_connections_active"] + values["hikaricp_connections_idle"]
