"""Tracing (issue 15): one upload is one trace across HTTP and AMQP, read back from a real
Zipkin; with Zipkin stopped, uploads go on and the dropped spans are counted.

A private stack started as `FERMATA_TRACING=1 make run` starts it (tests/system/
privatestack.py): Zipkin on its own ZIPKIN_PORT, every service exporting to it with
sampling 1.0. The upload carries a known `traceparent`; the trace read back from
GET /api/v2/trace/{traceId} must hold spans of the resource, storage, processor and song
services, every parent link must resolve to a span of the trace (except the root's, which
is the client's span), and the AMQP hops (outbox relay -> processor -> processed consumer)
must be PRODUCER/CONSUMER spans in the same trace.
"""
import os
import random
import time

import pytest
import requests

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, SANITIZER_PATTERNS, wait_until
from mp3gen import make_mp3
from privatestack import PrivateRun, running
from test_chaos import _strip_id3v2, tagged

BUILD = os.environ.get("FERMATA_BUILD_DIR") or str(ROOT / "build" / "debug")
MP3 = {"Content-Type": "audio/mpeg"}


@pytest.fixture(scope="module")
def traced():
    run = PrivateRun(ROOT, PRIVATE_PORT_BASE + 1200, BUILD, data_dir=RUN_DIR / "tracing",
                     log_path=RUN_DIR / "tracing-run.log", FERMATA_TRACING="1", FERMATA_REPLICAS="1")
    yield from running(run, "Traces: http://127.0.0.1:", SANITIZER_PATTERNS)


def zipkin(run):
    return f"http://127.0.0.1:{run.env['ZIPKIN_PORT']}"


def new_traceparent():
    return "%032x" % random.getrandbits(128), "%016x" % random.getrandbits(64)


def upload(run, tag, traceparent):
    audio = _strip_id3v2(make_mp3(seconds=1.0, title="base", freq=700))
    data = tagged(audio, f"Traced {tag}", "Tracer", "Zipkin", "2015")
    t0 = time.monotonic()
    r = run.post("/resources", data=data, headers={**MP3, "traceparent": traceparent})
    assert r.status_code == 200, r.text
    return r.json()["id"], time.monotonic() - t0


def wait_permanent(run, rid):
    wait_until(lambda: run.psql("RESOURCE_DB_URL", f"SELECT state FROM resources WHERE id={rid}") == ["PERMANENT"],
               timeout=120, interval=0.5, message=f"resource {rid} PERMANENT")
    wait_until(lambda: run.get(f"/songs/{rid}").status_code == 200, timeout=60, message=f"song {rid} stored")


def prometheus(run, service, name):
    text = requests.get(f"http://127.0.0.1:{run.env[service.upper() + '_PORT']}/actuator/prometheus", timeout=10).text
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name))


def test_one_upload_is_one_trace_across_http_and_amqp(traced):
    trace_id, client_span = new_traceparent()
    rid, _ = upload(traced, trace_id[:8], f"00-{trace_id}-{client_span}-01")
    wait_permanent(traced, rid)

    def complete():
        r = requests.get(f"{zipkin(traced)}/api/v2/trace/{trace_id}", timeout=10)
        if r.status_code != 200:
            return None
        spans = r.json()
        names = {(s["localEndpoint"]["serviceName"], s.get("name")) for s in spans}
        # the last hop: the Resource Service's consumer of "processed" and its copy
        return spans if ("resource", "on processed") in names and ("resource", "s3 copy") in names else None

    spans = wait_until(complete, timeout=60, interval=1.0, message="the whole trace in Zipkin")
    assert {s["traceId"] for s in spans} == {trace_id}
    services = {s["localEndpoint"]["serviceName"] for s in spans}
    assert {"resource", "storage", "processor", "song"} <= services, services

    ids = {s["id"] for s in spans}
    dangling = [s for s in spans if s.get("parentId") and s["parentId"] not in ids]
    assert [s.get("parentId") for s in dangling] == [client_span], dangling  # only the root's parent: the client
    root = dangling[0]
    assert root["localEndpoint"]["serviceName"] == "resource" and root["kind"] == "SERVER"
    assert root["name"] == "post /resources"  # Zipkin keeps names lowercase
    assert root["tags"]["http.status_code"] == "200"

    by_id = {s["id"]: s for s in spans}

    def chain(s):  # the services from s up to the root
        out = []
        while s is not None:
            out.append((s["localEndpoint"]["serviceName"], s.get("kind", "LOCAL")))
            s = by_id.get(s.get("parentId"))
        return out

    # upload -> outbox relay (PRODUCER) -> processor (CONSUMER) -> its calls -> processed -> resource
    consumer = next(s for s in spans if s["localEndpoint"]["serviceName"] == "resource" and s["name"] == "on processed")
    assert consumer["kind"] == "CONSUMER"
    hops = chain(consumer)
    assert hops[0] == ("resource", "CONSUMER")
    assert ("processor", "PRODUCER") in hops and ("processor", "CONSUMER") in hops
    assert ("resource", "PRODUCER") in hops and hops[-1] == ("resource", "SERVER")
    song_post = [s for s in spans if s["localEndpoint"]["serviceName"] == "song" and s.get("kind") == "SERVER"]
    assert song_post and by_id[song_post[0]["parentId"]]["localEndpoint"]["serviceName"] == "processor"
    fetches = [s for s in spans if s["localEndpoint"]["serviceName"] == "resource" and s.get("kind") == "SERVER"
               and s["name"].startswith("get /resources")]
    assert fetches and all(by_id[s["parentId"]]["localEndpoint"]["serviceName"] == "processor" for s in fetches)

    # the storage lookups through the breaker: state and fallback on the span
    lookups = [s for s in spans if s.get("name") == "storage lookup"]
    assert len(lookups) >= 2  # STAGING at upload, PERMANENT at the move
    for s in lookups:
        assert s["tags"]["breaker.state"] == "CLOSED"
        assert s["tags"]["fallback"] == "false" and s["tags"]["storage.source"] == "live"
    storage_server = [s for s in spans if s["localEndpoint"]["serviceName"] == "storage"]
    assert storage_server and all(by_id[s["parentId"]]["localEndpoint"]["serviceName"] == "resource"
                                  for s in storage_server)

    # the log lines of the upload name the trace
    logs = (traced.data_dir() / "logs")
    text = "".join(p.read_text(errors="replace") for p in logs.glob("resource*.log"))
    lines = [l for l in text.splitlines() if f"trace_id={trace_id}" in l]
    assert any('msg="request"' in l and "/resources" in l for l in lines), lines  # the access log
    assert any('msg="resource stored"' in l for l in lines), lines
    assert any('msg="resource moved"' in l for l in lines), lines  # the consumer, same trace


def test_delete_reaches_the_song_service_in_the_same_trace(traced):
    trace_id, span = new_traceparent()
    rid, _ = upload(traced, "delete " + trace_id[:8], f"00-{trace_id}-{span}-01")
    wait_permanent(traced, rid)
    del_trace, del_span = new_traceparent()
    r = traced.delete(f"/resources?id={rid}", headers={"traceparent": f"00-{del_trace}-{del_span}-01"})
    assert r.status_code == 200 and r.json()["ids"] == [rid], r.text

    def song_delete():
        r = requests.get(f"{zipkin(traced)}/api/v2/trace/{del_trace}", timeout=10)
        spans = r.json() if r.status_code == 200 else []
        return spans if any(s["localEndpoint"]["serviceName"] == "song" for s in spans) else None

    spans = wait_until(song_delete, timeout=30, interval=1.0, message="the deletion's trace in Zipkin")
    by_id = {s["id"]: s for s in spans}
    song = next(s for s in spans if s["localEndpoint"]["serviceName"] == "song")
    assert song["kind"] == "SERVER" and song["name"] == "delete /songs"
    call = by_id[song["parentId"]]
    assert call["localEndpoint"]["serviceName"] == "resource" and call["kind"] == "CLIENT"
    assert call["remoteEndpoint"]["serviceName"] == "song"
    root = by_id[call["parentId"]]
    assert root["name"] == "delete /resources" and root["parentId"] == del_span


def test_zipkin_down_uploads_go_on_and_drops_are_counted(traced):
    traced.stack("stop", "zipkin")
    try:
        before = prometheus(traced, "resource", "fermata_tracing_spans_dropped_total")
        exported = prometheus(traced, "resource", "fermata_tracing_spans_exported_total")
        took = []
        for i in range(3):
            trace_id, span = new_traceparent()
            rid, secs = upload(traced, f"down {trace_id[:8]} {i}", f"00-{trace_id}-{span}-01")
            took.append(secs)
            wait_permanent(traced, rid)
        assert max(took) < 5.0, took  # the collector's absence costs the requests nothing
        wait_until(lambda: prometheus(traced, "resource", "fermata_tracing_spans_dropped_total") > before,
                   timeout=30, interval=0.5, message="dropped spans counted")
        assert prometheus(traced, "resource", "fermata_tracing_spans_exported_total") == exported
    finally:
        traced.stack("start", "zipkin")
