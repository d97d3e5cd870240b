#!/usr/bin/env python3
"""loadgen.py: open-loop uploads at a fixed rate, one JSON line per request.

    loadgen.py upload URL MP3 RATE COUNT OUT.jsonl [--poll URL --poll-out FILE]

Request i is *scheduled* at t0 + i/RATE whatever happened to the earlier ones (open loop:
a slow server does not slow the client down, so queueing shows in the latency instead of
hiding in a lower rate; wrk's closed loop would hide it). A pool of worker threads (enough
for RATE * 10 s of latency) sends them with http.client, one keep-alive connection per
worker. Each line: {"i", "sched" (epoch s), "start", "end", "status", "id" (from
{"id":N}), "err"}; latency = end - sched (includes any wait for a free worker).

--poll URL samples GET URL every 0.25 s during the run (the Resource Service's
/actuator/circuitbreakers) and writes {"t", "state"} lines to --poll-out.
"""
import argparse
import http.client
import json
import queue
import re
import threading
import time
import urllib.parse


def worker(u, body, jobs, out, lock):
    conn = None
    while True:
        job = jobs.get()
        if job is None:
            return
        i, sched = job
        now = time.time()
        if sched > now:
            time.sleep(sched - now)
        start = time.time()
        rec = {"i": i, "sched": sched, "start": start, "status": 0, "id": None, "err": None}
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            conn.request("POST", u.path, body=body, headers={"Content-Type": "audio/mpeg"})
            r = conn.getresponse()
            data = r.read()
            rec["status"] = r.status
            m = re.search(rb'"id"\s*:\s*(\d+)', data)
            if m and r.status == 200:
                rec["id"] = int(m.group(1))
            if r.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception as e:  # connection refused, reset, timeout: an error, counted
            rec["err"] = type(e).__name__
            if conn is not None:
                conn.close()
            conn = None
        rec["end"] = time.time()
        with lock:
            out.write(json.dumps(rec) + "\n")


def poller(url, path, stop):
    u = urllib.parse.urlsplit(url)
    with open(path, "w") as f:
        while not stop.is_set():
            t = time.time()
            state = "DOWN"
            try:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=1)
                c.request("GET", u.path)
                d = json.loads(c.getresponse().read())
                c.close()
                state = next(iter(d["circuitBreakers"].values()))["state"]
            except Exception:
                pass
            f.write(json.dumps({"t": t, "state": state}) + "\n")
            f.flush()
            stop.wait(max(0.0, 0.25 - (time.time() - t)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["upload"])
    ap.add_argument("url")
    ap.add_argument("mp3")
    ap.add_argument("rate", type=float)
    ap.add_argument("count", type=int)
    ap.add_argument("out")
    ap.add_argument("--poll")
    ap.add_argument("--poll-out")
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    body = open(a.mp3, "rb").read()
    u = urllib.parse.urlsplit(a.url)
    nworkers = a.workers or max(8, min(256, int(a.rate * 4)))
    jobs = queue.Queue()
    lock = threading.Lock()
    stop = threading.Event()
    pt = None
    if a.poll:
        pt = threading.Thread(target=poller, args=(a.poll, a.poll_out, stop), daemon=True)
        pt.start()
    t0 = time.time() + 0.2
    with open(a.out, "w") as out:
        ts = [threading.Thread(target=worker, args=(u, body, jobs, out, lock), daemon=True)
              for _ in range(nworkers)]
        for t in ts:
            t.start()
        for i in range(a.count):
            jobs.put((i, t0 + i / a.rate))
        for _ in ts:
            jobs.put(None)
        for t in ts:
            t.join()
    if pt:
        time.sleep(0.5)
        stop.set()
        pt.join()


if __name__ == "__main__":
    main()
