"""The gateway image's entry point (deploy/nginx/gateway-entrypoint.sh) follows its
upstreams when their addresses change, as a recreated Compose container's does.

Run natively, as root: the entry point and Debian's nginx in a private mount namespace
whose /etc/hosts (a file this test rewrites) maps the upstream names. Upstream A answers on
127.0.0.2, then goes away; upstream B answers on 127.0.0.3 and the names move there. With
GATEWAY_RESOLVE_INTERVAL=1 the gateway reaches B within seconds; with 0 (nginx alone,
resolving once: what the gateway did before) it keeps answering 502, which is the defect
this entry point fixes.
"""
import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import PRIVATE_PORT_BASE, ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a private mount namespace for /etc/hosts")

ENTRYPOINT = ROOT / "deploy" / "nginx" / "gateway-entrypoint.sh"
TEMPLATE = ROOT / "deploy" / "nginx" / "fermata.conf.template"
LISTEN = PRIVATE_PORT_BASE + 850
UPSTREAM = PRIVATE_PORT_BASE + 851


class Upstream:
    def __init__(self, addr, who):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = json.dumps({"who": who}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                # no kept-alive connection outlives close(), as none outlives a container
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer((addr, UPSTREAM), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def write_hosts(path, addr):
    # rewritten in place: the bind mount holds this inode
    with open(path, "w") as f:
        f.write(f"127.0.0.1 localhost\n{addr} resource song storage\n")


def start_gateway(tmp_path, hosts, interval):
    run = tmp_path / f"run-{interval}"
    run.mkdir()
    os.chmod(run, 0o755)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "GATEWAY_TEMPLATE": str(TEMPLATE),
        "GATEWAY_LISTEN": f"127.0.0.1:{LISTEN}",
        "GATEWAY_USER_DIRECTIVE": "",
        "GATEWAY_WORKERS": "1",
        "GATEWAY_RUN_DIR": str(run),
        "GATEWAY_ACCESS_LOG": str(run / "access.log"),
        "GATEWAY_ERROR_LOG": str(run / "error.log"),
        "RESOURCE_UPSTREAM": f"resource:{UPSTREAM}",
        "SONG_UPSTREAM": f"song:{UPSTREAM}",
        "STORAGE_UPSTREAM": f"storage:{UPSTREAM}",
        "GATEWAY_MAX_BODY_SIZE": "1m",
        "GATEWAY_UPSTREAM_TIMEOUT": "5s",
        "GATEWAY_EXPOSE_ACTUATOR": "0",
        "GATEWAY_RESOLVE_INTERVAL": str(interval),
    }
    log = open(tmp_path / f"entrypoint-{interval}.log", "wb")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), str(ENTRYPOINT)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return proc


def who(timeout=2):
    r = requests.get(f"http://127.0.0.1:{LISTEN}/songs/1", timeout=timeout)
    return r.json().get("who") if r.status_code == 200 else r.status_code


def wait_for(expect, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = who()
            if last == expect:
                return last
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    return last


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("the entry point did not stop within 15 s of SIGTERM")


@pytest.mark.parametrize("interval,follows", [(1, True), (0, False)], ids=["re-resolving", "resolve-once"])
def test_gateway_follows_a_moved_upstream(tmp_path, interval, follows):
    hosts = tmp_path / "hosts"
    write_hosts(hosts, "127.0.0.2")
    os.chmod(hosts, 0o644)
    a = Upstream("127.0.0.2", "A")
    b = None
    gw = start_gateway(tmp_path, hosts, interval)
    log = tmp_path / f"entrypoint-{interval}.log"
    try:
        assert wait_for("A", 20) == "A", log.read_text()
        # the container is recreated: A goes away, B comes up at another address
        a.close()
        a = None
        b = Upstream("127.0.0.3", "B")
        write_hosts(hosts, "127.0.0.3")
        if follows:
            assert wait_for("B", 20) == "B", log.read_text()
            assert "upstream addresses changed" in log.read_text()
        else:
            assert wait_for("B", 4) == 502, "nginx alone re-resolved after all: " + log.read_text()
    finally:
        for u in (a, b):
            if u:
                u.close()
        rc = stop(gw)
    # SIGTERM reaches nginx (the entry point passes it on; with 0 nginx is the process)
    assert rc == 0, log.read_text()
