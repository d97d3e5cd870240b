"""lib/mq against the real private RabbitMQ of the stack, with pika as the independent client.

The C side is driven through tests/tools/mq_driver (one JSON event per line on stdout):
publishing with confirms, consuming with each verdict, reconnecting after the broker is
stopped or SIGKILLed. The broker is restarted through scripts/stack.sh, with this process's
FERMATA_DATA_DIR, so the test and the stack agree on which node that is.

Needs: AMQP_URL (exported by `scripts/stack.sh env`, as the system test runner does) and
the driver binary: $FERMATA_MQ_DRIVER, else $FERMATA_BUILD_DIR/tests/tools/mq_driver, else
<repo>/build/debug/tests/tools/mq_driver. The stack script is $FERMATA_ROOT/scripts/stack.sh
(FERMATA_ROOT defaults to the repository holding this file).
"""
import json
import os
import pathlib
import queue
import subprocess
import threading
import time
import urllib.parse
import uuid

import pika
import pytest

REPO = pathlib.Path(os.environ.get("FERMATA_ROOT") or pathlib.Path(__file__).resolve().parents[2])
EXCHANGE = "fm.test"


def amqp_url():
    url = os.environ.get("AMQP_URL")
    if not url:
        pytest.fail("AMQP_URL is not set: start the broker with `scripts/stack.sh start rabbitmq` "
                    "and export the output of `scripts/stack.sh env` (scripts/test-system.sh does)")
    return url


def driver_path():
    if os.environ.get("FERMATA_MQ_DRIVER"):
        return pathlib.Path(os.environ["FERMATA_MQ_DRIVER"])
    build = pathlib.Path(os.environ.get("FERMATA_BUILD_DIR", REPO / "build" / "debug"))
    return build / "tests" / "tools" / "mq_driver"


@pytest.fixture(scope="module")
def driver():
    p = driver_path()
    if not p.exists():
        pytest.fail(f"mq_driver not built at {p} (cmake --build ... --target mq_driver)")
    return str(p)


def stack(cmd):
    """scripts/stack.sh CMD rabbitmq with the broker's port taken from AMQP_URL."""
    env = dict(os.environ)
    env.setdefault("AMQP_PORT", str(urllib.parse.urlparse(amqp_url()).port or 5672))
    r = subprocess.run([str(REPO / "scripts" / "stack.sh"), cmd, "rabbitmq"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"stack.sh {cmd} rabbitmq failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture
def qname():
    """A fresh queue name per test; the queue and its companions are deleted afterwards."""
    name = "t." + uuid.uuid4().hex[:12]
    yield name
    try:
        with pika_channel() as ch:
            for q in (name, name + ".dlq", name + ".retry"):
                ch.queue_delete(q)
    except Exception:  # the broker may be down after a failed fault test
        pass


class pika_channel:
    def __enter__(self):
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
        return self.conn.channel()

    def __exit__(self, *exc):
        self.conn.close()


def run_driver(driver, *args, timeout=60):
    r = subprocess.run([driver, *args, "--url", amqp_url()], capture_output=True, text=True,
                       timeout=timeout)
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr
    return r.returncode, events, r.stderr


class Consumer:
    """mq_driver consume in the background; events arrive on a queue as they are printed."""

    def __init__(self, driver, *args):
        self.proc = subprocess.Popen([driver, "consume", *args, "--url", amqp_url()],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def next(self, kind, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no '{kind}' event within {timeout}s; seen {self.seen}")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(ev)
            if ev["event"] == kind:
                return ev

    def finish(self, timeout=30):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        err = self.proc.stderr.read()
        assert "runtime error" not in err and "Sanitizer" not in err, err
        return self.proc.returncode


def publish_with_pika(qname, body, headers=None):
    with pika_channel() as ch:
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, qname, body,
                         pika.BasicProperties(delivery_mode=2, headers=headers), mandatory=True)


def get_all(qname):
    out = []
    with pika_channel() as ch:
        while True:
            method, props, body = ch.basic_get(qname, auto_ack=True)
            if method is None:
                return out
            out.append((props, body))


def message_count(qname):
    with pika_channel() as ch:
        return ch.queue_declare(qname, passive=True).method.message_count


def test_publish_with_confirm_then_consume_with_pika(driver, qname):
    rc, events, err = run_driver(driver, "publish", "--queue", qname, "--body", '{"resourceId":1}',
                                 "--request-id", "req-42")
    assert rc == 0, (events, err)
    assert [e["rc"] for e in events] == [0]
    msgs = get_all(qname)
    assert len(msgs) == 1
    props, body = msgs[0]
    assert body == b'{"resourceId":1}'
    assert props.delivery_mode == 2
    assert props.content_type == "application/json"
    assert props.headers["x-request-id"] == "req-42"


def test_consume_what_pika_published(driver, qname):
    rc, _, err = run_driver(driver, "publish", "--queue", qname, "--count", "0")  # declare only
    assert rc == 0, err
    for i in range(3):
        publish_with_pika(qname, f'{{"resourceId":{i}}}', headers={"x-request-id": f"r{i}"})
    rc, events, err = run_driver(driver, "consume", "--queue", qname, "--count", "3",
                                 "--prefetch", "2", "--seconds", "20")
    assert rc == 0, err
    msgs = [e for e in events if e["event"] == "msg"]
    assert [m["body"] for m in msgs] == ['{"resourceId":0}', '{"resourceId":1}', '{"resourceId":2}']
    assert [m["request_id"] for m in msgs] == ["r0", "r1", "r2"]
    assert all(m["attempt"] == 1 and not m["redelivered"] for m in msgs)
    assert message_count(qname) == 0  # all acked


def test_unroutable_message_is_an_error(driver, qname):
    rc, events, _ = run_driver(driver, "publish", "--queue", qname, "--rk", "nobody.listens")
    assert rc == 1
    assert events[-1]["rc"] == -7  # MQ_EUNROUTABLE: confirmed, but it reached no queue


def test_persistent_messages_survive_broker_restart(driver, qname):
    rc, _, err = run_driver(driver, "publish", "--queue", qname, "--body", "keep", "--count", "5")
    assert rc == 0, err
    stack("stop")
    stack("start")
    assert message_count(qname) == 5
    rc, events, err = run_driver(driver, "consume", "--queue", qname, "--count", "5", "--seconds", "30")
    assert rc == 0, err
    assert sorted(e["body"] for e in events if e["event"] == "msg") == [f"keep-{i}" for i in range(5)]


def test_publisher_reports_broker_down_then_recovers(driver, qname):
    run_driver(driver, "publish", "--queue", qname, "--count", "0")
    stack("stop")
    try:
        rc, events, _ = run_driver(driver, "publish", "--queue", qname, "--body", "x")
        assert rc == 1 and events[-1]["rc"] == -3  # MQ_EDOWN, never a false success
    finally:
        stack("start")
    rc, events, _ = run_driver(driver, "publish", "--queue", qname, "--body", "y")
    assert rc == 0 and message_count(qname) == 1


def test_idle_publisher_survives_missed_heartbeats(driver, qname):
    # The driver asks for 5 s heartbeats; 18 s idle makes the broker drop the connection
    # ("missed heartbeats from client" in its log): the next publish must reconnect, not fail.
    rc, events, err = run_driver(driver, "publish", "--queue", qname, "--body", "idle",
                                 "--count", "2", "--gap-ms", "18000")
    assert rc == 0, (events, err)
    assert message_count(qname) == 2


def test_consumer_reconnects_after_broker_sigkill_and_gets_unacked_again(driver, qname):
    run_driver(driver, "publish", "--queue", qname, "--count", "0")
    publish_with_pika(qname, "m1")
    # The handler holds m1 for 2 s: the broker dies while it is unacknowledged.
    c = Consumer(driver, "--queue", qname, "--hold-ms", "2000", "--count", "3", "--seconds", "90")
    try:
        first = c.next("msg")
        assert first["body"] == "m1"
        stack("kill")
        stack("start")
        again = c.next("msg", timeout=60)
        assert again["body"] == "m1"  # came back: it was never acked
        publish_with_pika(qname, "m2")
        after = c.next("msg", timeout=30)
        assert after["body"] == "m2"
        assert c.finish() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
    assert message_count(qname) == 0


def test_reject_goes_to_dlq_with_reason(driver, qname):
    rc, _, err = run_driver(driver, "publish", "--queue", qname, "--body", "poison",
                            "--request-id", "rq-1")
    assert rc == 0, err
    rc, events, err = run_driver(driver, "consume", "--queue", qname, "--mode", "reject",
                                 "--reason", "resource 7 does not exist", "--count", "1",
                                 "--seconds", "20")
    assert rc == 0, err
    assert message_count(qname) == 0
    dead = get_all(qname + ".dlq")
    assert len(dead) == 1
    props, body = dead[0]
    assert body == b"poison"
    assert props.headers["x-reason"] == "resource 7 does not exist"
    assert props.headers["x-attempt"] == 1
    assert props.headers["x-request-id"] == "rq-1"  # original headers kept
    assert props.delivery_mode == 2


def test_retry_later_comes_back_after_ttl_with_next_attempt(driver, qname):
    run_driver(driver, "publish", "--queue", qname, "--body", "flaky")
    rc, events, err = run_driver(driver, "consume", "--queue", qname, "--mode", "retry-once",
                                 "--retry-ms", "1000", "--count", "2", "--seconds", "30")
    assert rc == 0, err
    msgs = [e for e in events if e["event"] == "msg"]
    assert [m["attempt"] for m in msgs] == [1, 2]
    delay = msgs[1]["t_ms"] - msgs[0]["t_ms"]
    assert 450 <= delay <= 3000, delay  # TTL drawn from [500, 1000] ms, plus dead-lettering
    assert message_count(qname) == 0 and message_count(qname + ".retry") == 0
    assert get_all(qname + ".dlq") == []


def test_retry_gives_up_after_max_attempts_into_dlq(driver, qname):
    run_driver(driver, "publish", "--queue", qname, "--body", "always-fails")
    rc, events, err = run_driver(driver, "consume", "--queue", qname, "--mode", "retry",
                                 "--retry-ms", "200", "--max-attempts", "3", "--reason", "song service 503",
                                 "--count", "3", "--seconds", "30")
    assert rc == 0, err
    assert [e["attempt"] for e in events if e["event"] == "msg"] == [1, 2, 3]
    dead = get_all(qname + ".dlq")
    assert len(dead) == 1
    props, body = dead[0]
    assert body == b"always-fails"
    assert props.headers["x-attempt"] == 3
    assert props.headers["x-reason"] == "max attempts (3): song service 503"


def test_requeue_redelivers_with_flag(driver, qname):
    run_driver(driver, "publish", "--queue", qname, "--body", "again")
    rc, events, err = run_driver(driver, "consume", "--queue", qname, "--mode", "requeue-once",
                                 "--count", "2", "--seconds", "20")
    assert rc == 0, err
    assert [(e["body"], e["redelivered"]) for e in events if e["event"] == "msg"] == \
        [("again", False), ("again", True)]
    assert message_count(qname) == 0


def test_consumer_stops_cleanly_on_sigterm(driver, qname):
    run_driver(driver, "publish", "--queue", qname, "--count", "0")
    c = Consumer(driver, "--queue", qname, "--count", "0", "--seconds", "60")
    c.next("connected")
    t0 = time.monotonic()
    c.proc.terminate()
    assert c.finish(timeout=10) == 0
    assert time.monotonic() - t0 < 3
    assert c.next("stopped", timeout=5)["handled"] == 0


# ---------------------------------------------------------------- amqps (TLS)
#
# The test stack's broker has a TLS listener (scripts/test-system.sh sets RABBITMQ_TLS=1)
# with a certificate for "localhost" from a private CA made by openssl at its start;
# AMQPS_URL and AMQPS_CA_FILE come from `scripts/stack.sh env`. pika (plain AMQP, same
# broker) checks what arrived.

def amqps():
    url, ca = os.environ.get("AMQPS_URL"), os.environ.get("AMQPS_CA_FILE")
    if not url or not ca:
        pytest.fail("AMQPS_URL / AMQPS_CA_FILE not set: the stack's RabbitMQ needs RABBITMQ_TLS=1 "
                    "(scripts/test-system.sh sets it) and `scripts/stack.sh env` exported")
    return url, ca


def run_driver_at(driver, url, *args, ca_file=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "AMQP_TLS_CA_FILE"}
    if ca_file:
        env["AMQP_TLS_CA_FILE"] = ca_file
    r = subprocess.run([driver, *args, "--url", url], capture_output=True, text=True, timeout=timeout, env=env)
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr
    return r.returncode, events, r.stderr


def test_amqps_publish_and_consume_verified_by_the_ca_file(driver, qname):
    url, ca = amqps()
    rc, events, err = run_driver_at(driver, url, "publish", "--queue", qname, "--body", "over tls", ca_file=ca)
    assert rc == 0 and [e["rc"] for e in events] == [0], (events, err)
    assert [body for _, body in get_all(qname)] == [b"over tls"]
    publish_with_pika(qname, "back")
    rc, events, err = run_driver_at(driver, url, "consume", "--queue", qname, "--count", "1", "--seconds", "20",
                                    ca_file=ca)
    assert rc == 0, err
    assert [e["body"] for e in events if e["event"] == "msg"] == ["back"]


def test_amqps_refuses_a_broker_the_system_store_does_not_trust(driver, qname):
    url, _ = amqps()
    rc, _, err = run_driver(driver, "publish", "--queue", qname, "--count", "0")  # the queue, over plain AMQP
    assert rc == 0, err
    # no CA file: the system's store, which does not know the test CA
    rc, events, err = run_driver_at(driver, url, "publish", "--queue", qname, "--body", "x")
    assert rc != 0 and [e["rc"] for e in events] != [0], (events, err)
    assert "certificate" in err.lower() or "verif" in err.lower(), err
    assert message_count(qname) == 0


def test_amqps_refuses_a_certificate_for_another_host(driver, qname):
    url, ca = amqps()
    rc, _, err = run_driver(driver, "publish", "--queue", qname, "--count", "0")
    assert rc == 0, err
    # same broker, same trusted CA, but the certificate names "localhost", not 127.0.0.1
    other = url.replace("@localhost:", "@127.0.0.1:")
    assert other != url
    rc, events, err = run_driver_at(driver, other, "publish", "--queue", qname, "--body", "x", ca_file=ca)
    assert rc != 0, (events, err)
    assert "hostname" in err.lower() or "verif" in err.lower(), err
    assert message_count(qname) == 0


def test_bad_ca_file_and_bad_urls_are_refused_clearly(driver, qname):
    url, _ = amqps()
    rc, _, err = run_driver_at(driver, url, "publish", "--queue", qname, "--body", "x", ca_file="/nonexistent/ca.pem")
    assert rc == 2 and "AMQP_TLS_CA_FILE" in err, err
    for bad in ("amqpx://h:1/", "amqps://h:0/", "http://h:1/"):
        rc, _, err = run_driver_at(driver, bad, "publish", "--queue", qname, "--body", "x")
        assert rc == 2 and "bad url" in err, (bad, err)
