#!/usr/bin/env python3
"""bigupload.py: large uploads, streamed (issue 13), for bench/run-all.sh's "big" phase.

    bigupload.py make  DIR SIZES                  -> DIR/<size>.mp3 (CBR frames repeated), prints paths
    bigupload.py speed RES_URL S3_URL FILE REPS OUT.jsonl
        REPS uploads of FILE, alternating POST RES_URL/resources and a raw streaming PUT
        (UNSIGNED-PAYLOAD, SigV4 like lib/s3) of the same bytes to S3_URL/fermata-bench/;
        one JSON line per upload: target, bytes, seconds, status
    bigupload.py rss RES_URL FILE N PIDS_DIR PROM_URL OUT.json
        N concurrent uploads of FILE; the resource's and the processor's peak RSS (VmHWM,
        reset first through /proc/PID/clear_refs) until every upload is PERMANENT (polled
        through GET /resources/{id}... via the database URL in RESOURCE_DB_URL), and the bytes
        the processor fetched (processor_fetched_bytes_total at PROM_URL) per file; then one of
        them is checked as issue 13 asks: byte-identical whole and by ranges, its tags and exact
        duration in the Song Service (SONG_PORT)

Bodies are sent from the file in 1 MiB blocks, never read whole into memory.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "system"))
import s3sign  # noqa: E402

BLOCK = 1 << 20


def make(directory, sizes):
    import mp3gen
    for sz in sizes.split():
        want = int(subprocess.run(["numfmt", "--from=iec", sz], capture_output=True, text=True, check=True).stdout)
        path = os.path.join(directory, f"big-{sz}.mp3")
        if not os.path.exists(path) or os.path.getsize(path) < want * 0.9:
            src, _ = mp3gen.long_mp3_file(max(1, int(want * 0.97 / 16000 / 60)), title=f"Big {sz}", artist="Fermata",
                                          album="Bench", year="2026")
            _copy(src, path)
            os.unlink(src)
            mp3gen.long_mp3_file.cache_clear()
        print(path)


def _copy(src, dst):
    with open(src, "rb") as a, open(dst, "wb") as b:
        for block in iter(lambda: a.read(BLOCK), b""):
            b.write(block)


def send(method, url, path, headers):
    u = urllib.parse.urlsplit(url)
    size = os.path.getsize(path)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600, blocksize=BLOCK)
    t0 = time.monotonic()
    with open(path, "rb") as f:
        c.request(method, u.path, body=f, headers={**headers, "Content-Length": str(size)})
        r = c.getresponse()
        body = r.read()
    dt = time.monotonic() - t0
    c.close()
    return r.status, dt, body


def speed(res_url, s3_url, path, reps, out):
    size = os.path.getsize(path)
    region = os.environ.get("S3_REGION", "us-east-1")
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID", "test"), os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    with open(out, "a") as o:
        for i in range(reps):
            for target in (("service", "s3") if i % 2 == 0 else ("s3", "service")):
                if target == "service":
                    st, dt, _ = send("POST", res_url + "/resources", path, {"Content-Type": "audio/mpeg"})
                else:
                    url = f"{s3_url}/fermata-bench/big-{size}.mp3"
                    h = s3sign.sign("PUT", url, "UNSIGNED-PAYLOAD", region, key, secret)
                    st, dt, _ = send("PUT", url, path, h)
                o.write(json.dumps({"target": target, "bytes": size, "seconds": dt, "status": st}) + "\n")
                o.flush()


def hwm_reset(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def fetched(prom_url):
    try:
        u = urllib.parse.urlsplit(prom_url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("GET", u.path)
        text = c.getresponse().read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("processor_fetched_bytes_total"):
            return float(line.split()[-1])
    return None


def expected_seconds(path):
    """The exact duration of a file long_mp3_file made: its frames x 1152 / 44100."""
    import mmap
    rates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = 10 + ((m[6] << 21) | (m[7] << 14) | (m[8] << 7) | m[9])
        n = 0
        while pos + 4 <= len(m) and m[pos] == 0xFF:
            pos += 144 * rates[m[pos + 2] >> 4] * 1000 // 44100 + ((m[pos + 2] >> 1) & 1)
            n += 1
    return n * 1152 / 44100


def verify(res_url, song_url, path, rid):
    """What issue 13 asks of a big upload: byte-identical whole and by ranges, the tags and
    the exact duration in the Song Service. Returns a list of what failed."""
    import hashlib
    failed = []
    size = os.path.getsize(path)
    u = urllib.parse.urlsplit(res_url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    c.request("GET", f"/resources/{rid}")
    r = c.getresponse()
    h = hashlib.sha256()
    for block in iter(lambda: r.read(BLOCK), b""):
        h.update(block)
    want = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            want.update(block)
        if r.status != 200 or h.hexdigest() != want.hexdigest():
            failed.append("download")
        for first, last in ((0, 999), (size // 2, size // 2 + 999_999), (size - 128, size - 1)):
            c.request("GET", f"/resources/{rid}", headers={"Range": f"bytes={first}-{last}"})
            r = c.getresponse()
            body = r.read()
            f.seek(first)
            if r.status != 206 or body != f.read(last - first + 1):
                failed.append(f"range {first}-{last}")
    c.close()
    u = urllib.parse.urlsplit(song_url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", f"/songs/{rid}")
    song = json.loads(c.getresponse().read())
    c.close()
    secs = int(expected_seconds(path) + 0.5)
    sz = os.path.basename(path)[len("big-"):-len(".mp3")]
    want_song = {"id": rid, "name": f"Big {sz}", "artist": "Fermata", "album": "Bench", "year": "2026",
                 "duration": "%02d:%02d" % divmod(secs, 60) if secs < 6000 else "99:59"}
    if song != want_song:
        failed.append(f"song {song} != {want_song}")
    return failed


def rss(res_url, path, n, pids_dir, prom_url, out):
    pids = {s: int(open(os.path.join(pids_dir, f"{s}.pid")).read()) for s in ("resource", "processor")}
    for pid in pids.values():
        hwm_reset(pid)
    before = fetched(prom_url)
    ids, statuses = [], []
    lock = threading.Lock()

    def one():
        st, _, body = send("POST", res_url + "/resources", path, {"Content-Type": "audio/mpeg"})
        with lock:
            statuses.append(st)
            if st == 200:
                ids.append(json.loads(body)["id"])

    t0 = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    upload_s = time.monotonic() - t0
    db = os.environ["RESOURCE_DB_URL"]
    left = len(ids)
    deadline = time.monotonic() + 1800
    while ids and time.monotonic() < deadline:
        q = "SELECT count(*) FROM resources WHERE state <> 'PERMANENT' AND id IN (%s)" % ",".join(map(str, ids))
        left = int(subprocess.run(["psql", db, "-tAc", q], capture_output=True, text=True).stdout.strip() or -1)
        if left == 0:
            break
        time.sleep(0.5)
    after = fetched(prom_url)
    size = os.path.getsize(path)
    song_url = os.environ.get("BENCH_SONG_URL", "http://127.0.0.1:%s" % os.environ.get("SONG_PORT", "8082"))
    failed = verify(res_url, song_url, path, ids[0]) if ids and left == 0 else ["not processed"]
    res = {"bytes": size, "uploads": n, "ok": statuses.count(200), "upload_seconds": upload_s,
           "processed_seconds": time.monotonic() - t0, "left_staging": left,
           "peak_rss_kb": {s: status_kb(pid, "VmHWM") for s, pid in pids.items()},
           "fetched_per_file": (after - before) / max(1, len(ids)) if before is not None and after is not None else None,
           "verify_failed": failed}
    with open(out, "a") as o:
        o.write(json.dumps(res) + "\n")
    print(json.dumps(res))


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], sys.argv[3])
    elif cmd == "speed":
        speed(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif cmd == "rss":
        rss(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
