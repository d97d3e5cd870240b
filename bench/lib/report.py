#!/usr/bin/env python3
"""report.py WORK OUT.md STAMP PLOTS: the report of bench/run-all.sh from its raw data.

WORK holds what the run wrote (get.jsonl, upload.jsonl, download.jsonl: one wrk summary
each; e2e-<rate>.jsonl + e2e-<rate>-db.tsv; failover*.jsonl; rss.tsv, rss100k.tsv,
startup.tsv, drain.tsv, meta.env, machine.md). Writes OUT.md, PNG plots next to it
(<STAMP>-*.png, gnuplot) and prints the summary table on stdout.
"""
import json
import os
import re
import shlex
import statistics
import subprocess
import sys

WORK, OUT, STAMP, PLOTS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
RESDIR = os.path.dirname(os.path.abspath(OUT))


def path(name):
    return os.path.join(WORK, name)


def jsonl(name):
    if not os.path.exists(path(name)):
        return []
    return [json.loads(l) for l in open(path(name)) if l.strip()]


def tsv(name):
    if not os.path.exists(path(name)):
        return []
    return [l.rstrip("\n").split("\t") for l in open(path(name)) if l.strip()]


meta = {}
for line in open(path("meta.env")):
    k, v = line.rstrip("\n").split("=", 1)
    meta[k] = shlex.split(v)[0] if v else ""


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def errs(d):
    return d["errors_connect"] + d["errors_read"] + d["errors_write"] + d["errors_status"] + d["errors_timeout"]


def r(a, b):
    return "%.2f" % (a / b) if b else "n/a"


def load1(d):
    return d["load"].split()[0]


ms = lambda us: "%.2f" % (us / 1000.0)
md = []
summary = []  # rows: figure, fermata, ceiling, ratio, load
plots = []

# ---- GET -------------------------------------------------------------------------------------
get = jsonl("get.jsonl")
if get:
    md += ["## GET: service vs nginx serving the same bytes", "",
           "wrk, %s per point, %s threads (1 at 1 connection), the two targets alternating. nginx %s workers, "
           "access log %s. ratio = service / nginx (req/s: higher is better; latency: lower is better)."
           % (meta["DURATION"], 2, meta["NGINX_WORKERS"], meta["NGINX_ACCESS_LOG"]), "",
           "| endpoint | conns | service req/s | nginx req/s | ratio | service p50 / p99 ms | nginx p50 / p99 ms | p50 ratio | p99 ratio | errors svc/nginx | load (1 min) svc / nginx |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    rows = {}
    for d in get:
        rows.setdefault((d["endpoint"], d["connections"]), {})[d["target"]] = d
    for (ep, c) in sorted(rows, key=lambda k: (k[0] != "/songs/{id}", k[1])):
        s, n = rows[(ep, c)]["service"], rows[(ep, c)]["nginx"]
        md.append("| `GET %s` | %d | %.0f | %.0f | %s | %s / %s | %s / %s | %s | %s | %d/%d | %s / %s |" % (
            ep, c, s["rps"], n["rps"], r(s["rps"], n["rps"]), ms(s["p50_us"]), ms(s["p99_us"]),
            ms(n["p50_us"]), ms(n["p99_us"]), r(s["p50_us"], n["p50_us"]), r(s["p99_us"], n["p99_us"]),
            errs(s), errs(n), load1(s), load1(n)))
    for ep in ("/songs/{id}", "/storages"):
        cs = sorted(c for (e, c) in rows if e == ep)
        if not cs:
            continue
        best = max(cs, key=lambda c: rows[(ep, c)]["service"]["rps"])
        s, n = rows[(ep, best)]["service"], rows[(ep, best)]["nginx"]
        summary.append(("`GET %s` peak req/s (at %d conns)" % (ep, best), "%.0f" % s["rps"], "%.0f" % n["rps"],
                        r(s["rps"], n["rps"]), load1(s)))
        c64 = 64 if 64 in cs else cs[-1]
        s, n = rows[(ep, c64)]["service"], rows[(ep, c64)]["nginx"]
        summary.append(("`GET %s` p50 / p99 ms at %d conns" % (ep, c64), "%s / %s" % (ms(s["p50_us"]), ms(s["p99_us"])),
                        "%s / %s" % (ms(n["p50_us"]), ms(n["p99_us"])),
                        "%s / %s" % (r(s["p50_us"], n["p50_us"]), r(s["p99_us"], n["p99_us"])), load1(s)))
    md.append("")
    # issue 16's targets, read from the rows above
    md += ["Targets (issue 16): service/nginx req/s >= 0.6 and p99 <= 2x nginx's at every point from 16 "
           "connections up; req/s at 256 connections no lower than at 16.", "",
           "| endpoint | lowest req/s ratio from 16 up (at conns) | highest p99 ratio (at conns) | req/s 256 / 16 |",
           "|---|---:|---:|---:|"]
    for ep in ("/songs/{id}", "/storages"):
        cs = [c for (e, c) in rows if e == ep and c >= 16]
        if not cs:
            continue
        rr = {c: rows[(ep, c)]["service"]["rps"] / max(rows[(ep, c)]["nginx"]["rps"], 1e-9) for c in cs}
        pr = {c: rows[(ep, c)]["service"]["p99_us"] / max(rows[(ep, c)]["nginx"]["p99_us"], 1e-9) for c in cs}
        lo, hi = min(rr, key=rr.get), max(pr, key=pr.get)
        flat = "-"
        if 16 in cs and 256 in cs:
            flat = "%.2f" % (rows[(ep, 256)]["service"]["rps"] / max(rows[(ep, 16)]["service"]["rps"], 1e-9))
        md.append("| `GET %s` | %.2f (%d) | %.2f (%d) | %s |" % (ep, rr[lo], lo, pr[hi], hi, flat))
        summary.append(("`GET %s` lowest req/s ratio from 16 conns up (target >= 0.6)" % ep, "", "", "%.2f (at %d)" % (rr[lo], lo), ""))
    md.append("")
    grss = tsv("get-rss.tsv")
    if grss:
        md += ["Service RSS and thread count while the GETs ran (peak of samples every 0.2 s):", "",
               "| service | connections | peak RSS kB | peak threads |", "|---|---:|---:|---:|"]
        for svc, c, kb, th in grss:
            md.append("| %s | %s | %s | %s |" % (svc, c, kb, th))
        for svc, c, kb, th in grss:
            if svc == "song" and c == str(max(int(x[1]) for x in grss)):
                summary.append(("song RSS MB / threads at %s connections" % c, "%.1f / %s" % (int(kb) / 1024.0, th), "", "", ""))
        md.append("")
    if PLOTS:
        dat = path("get.dat")
        with open(dat, "w") as f:
            for ep in ("/songs/{id}", "/storages"):
                for t in ("service", "nginx"):
                    f.write("# %s %s\n" % (ep, t))
                    for c in sorted(c for (e, c) in rows if e == ep):
                        d = rows[(ep, c)][t]
                        f.write("%d %.1f %.3f\n" % (c, d["rps"], d["p99_us"] / 1000.0))
                    f.write("\n\n")
        png = "%s-get.png" % STAMP
        plots.append((png, """
set terminal pngcairo size 900,420 font ",10"
set termoption noenhanced
set output '%s'
set multiplot layout 1,2 title "GET: service vs nginx serving the same bytes (wrk, %s per point)"
set logscale x 2; set xlabel "connections"; set key top left; set grid
set ylabel "req/s"; set yrange [0:*]
plot '%s' i 0 u 1:2 w lp lw 2 t "GET /songs/{id}", '' i 1 u 1:2 w lp dt 2 t "nginx, same bytes", \\
     '' i 2 u 1:2 w lp lw 2 t "GET /storages", '' i 3 u 1:2 w lp dt 2 t "nginx, same bytes"
set ylabel "p99 latency, ms"; set logscale y
set yrange [*:*]
plot '%s' i 0 u 1:3 w lp lw 2 t "GET /songs/{id}", '' i 1 u 1:3 w lp dt 2 t "nginx", \\
     '' i 2 u 1:3 w lp lw 2 t "GET /storages", '' i 3 u 1:3 w lp dt 2 t "nginx"
unset multiplot
""" % (os.path.join(RESDIR, png), meta["DURATION"], dat, dat)))
        md += ["![GET](%s)" % png, ""]

# ---- uploads and downloads -------------------------------------------------------------------
MB = 1e6
for kind, name, what in (("upload", "upload.jsonl", "`POST /resources` vs raw `PUT` of the same bytes to the object store"),
                         ("download", "download.jsonl", "`GET /resources/{id}` vs raw `GET` of the same object from the object store")):
    rows = {}
    for d in jsonl(name):
        rows.setdefault(d["size"], {})[d["target"]] = d
    if not rows:
        continue
    md += ["## %s" % what, "",
           "wrk (bench/lib/wrk-body.lua, the same script for both sides), %s connections, %s per point, the two "
           "alternating. The object store is versitygw: it, not our service, is the "
           "ceiling, and every service upload also runs through it and waits for its disk (one syncfs shared by the "
           "uploads in flight; the raw PUTs do not) (PUT into STAGING, then the processor's GET and "
           "the move to PERMANENT, which run in the background during the measurement)." % (meta["UPLOAD_CONNECTIONS"], meta["DURATION"]), "",
           "| size | service %s/s | MB/s | raw S3 %s/s | MB/s | ratio | service p50 / p99 ms | raw p50 / p99 ms | errors svc/raw | load svc / raw |"
           % ((kind + "s",) * 2),
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for sz in sorted(rows, key=lambda s: rows[s]["service"]["body_bytes"]):
        s, n = rows[sz]["service"], rows[sz].get("s3")
        b = s["body_bytes"]
        md.append("| %s (%d B) | %.1f | %.1f | %.1f | %.1f | %s | %s / %s | %s / %s | %d/%d | %s / %s |" % (
            sz, b, s["rps"], s["rps"] * b / MB, n["rps"], n["rps"] * b / MB, r(s["rps"], n["rps"]),
            ms(s["p50_us"]), ms(s["p99_us"]), ms(n["p50_us"]), ms(n["p99_us"]), errs(s), errs(n), load1(s), load1(n)))
        summary.append(("%s %s: %s/s (MB/s)" % ("`POST /resources`" if kind == "upload" else "`GET /resources/{id}`", sz, kind + "s"),
                        "%.1f (%.1f MB/s)" % (s["rps"], s["rps"] * b / MB), "%.1f (%.1f MB/s)" % (n["rps"], n["rps"] * b / MB),
                        r(s["rps"], n["rps"]), load1(s)))
    md.append("")
    if kind == "upload" and tsv("drain.tsv"):
        md += ["Processing backlog after each upload run (uploads counted by the database; seconds from the end of "
               "the run until none is left in STAGING):", "", "| size | uploads | drained after s |", "|---|---:|---:|"]
        md += ["| %s | %s | %s |" % tuple(x) for x in tsv("drain.tsv")]
        md.append("")

# ---- big uploads, streamed (issue 13) --------------------------------------------------------
big = jsonl("big-speed.jsonl")
big_rss = jsonl("big-rss.jsonl")
if big:
    md += ["## Big uploads, streamed: `POST /resources` vs a raw streaming `PUT` of the same file", "",
           "bench/lib/bigupload.py: one upload at a time, alternating service and raw PUT (UNSIGNED-PAYLOAD, "
           "SigV4) to the same object store; MB/s = bytes / median seconds; p50 = median seconds per upload.", "",
           "| size | service MB/s | raw PUT MB/s | ratio | service p50 s | raw p50 s | p50 ratio | failed |",
           "|---|---|---|---|---|---|---|---|"]
    for size in sorted({d["bytes"] for d in big}):
        sv = [d["seconds"] for d in big if d["bytes"] == size and d["target"] == "service" and d["status"] == 200]
        raw = [d["seconds"] for d in big if d["bytes"] == size and d["target"] == "s3" and d["status"] == 200]
        bad = sum(1 for d in big if d["bytes"] == size and d["status"] != 200)
        if not sv or not raw:
            md.append("| %d | n/a | n/a | n/a | | | | %d |" % (size, bad))
            continue
        ms, mr = statistics.median(sv), statistics.median(raw)
        md.append("| %.1f MB | %.1f | %.1f | %s | %.3f | %.3f | %s | %d |" % (
            size / 1e6, size / ms / 1e6, size / mr / 1e6, r(mr, ms), ms, mr, r(ms, mr), bad))
    md.append("")
if big_rss:
    md += ["### Peak RSS with concurrent big uploads (VmHWM from the first byte until every file is PERMANENT)", "",
           "| size | uploads at once | ok | resource peak MB | processor peak MB | processor fetched per file | "
           "fetched / size | seconds to PERMANENT | checked (download, ranges, tags, duration) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for d in big_rss:
        f = d.get("fetched_per_file")
        v = d.get("verify_failed")
        md.append("| %.1f MB | %d | %d | %.1f | %.1f | %s | %s | %.1f | %s |" % (
            d["bytes"] / 1e6, d["uploads"], d["ok"], d["peak_rss_kb"]["resource"] / 1024.0,
            d["peak_rss_kb"]["processor"] / 1024.0, "%.1f MB" % (f / 1e6) if f is not None else "n/a",
            "%.3f" % (f / d["bytes"]) if f is not None else "n/a", d["processed_seconds"],
            "n/a" if v is None else ("ok" if not v else "FAILED: " + "; ".join(v))))
    md.append("")
    if PLOTS:
        dat = os.path.join(WORK, "big-rss.dat")
        with open(dat, "w") as o:
            for d in big_rss:
                o.write("%f %f %f\n" % (d["bytes"] / 1e6, d["peak_rss_kb"]["resource"] / 1024.0,
                                         d["peak_rss_kb"]["processor"] / 1024.0))
        png = "%s-big-rss.png" % STAMP
        script = ("set terminal pngcairo size 800,450; set output '%s'; set logscale x; set xlabel 'file size (MB)';"
                  " set ylabel 'peak RSS (MB)'; set yrange [0:*]; set key top left;"
                  " plot '%s' using 1:2 with linespoints title 'resource', '' using 1:3 with linespoints title"
                  " 'processor', 64 with lines dashtype 2 title '64 MB target'") % (os.path.join(RESDIR, png), dat)
        if subprocess.run(["gnuplot", "-e", script], capture_output=True).returncode == 0:
            md += ["![peak RSS against file size](%s)" % png, ""]

# ---- tracing's cost (issue 15) ----------------------------------------------------------------
tr_get = jsonl("tracing-get.jsonl")
if tr_get:
    def up_p50(setting):
        lat = []
        for f in os.listdir(WORK):
            if f.startswith("tracing-up-%s-" % setting) and f.endswith(".jsonl"):
                lat += [(d["end"] - d["sched"]) * 1000 for d in jsonl(f) if d.get("status") == 200]
        return pct(lat, 50) if lat else float("nan"), pct(lat, 99) if lat else float("nan")
    md += ["## Tracing's cost: tracing off, sampling 0.1 and 1.0 (exported to a real Zipkin)", "",
           "`GET /songs/{id}` with wrk at %s connections (median of the rounds' req/s) and open-loop 100K uploads "
           "at 20/s (bench/lib/loadgen.py), the Song and Resource Services restarted with each setting, the "
           "settings in turn each round." % (tr_get[0].get("connections", "64")), "",
           "| setting | GET req/s | vs off | upload p50 ms | upload p99 ms | p50 vs off |", "|---|---|---|---|---|---|"]
    base = None
    base_up = None
    for setting in ("off", "0.1", "1.0"):
        rps = [d["rps"] for d in tr_get if d["setting"] == setting]
        if not rps:
            continue
        m = statistics.median(rps)
        p50, p99 = up_p50(setting)
        if setting == "off":
            base, base_up = m, p50
        md.append("| %s | %.0f | %s | %.1f | %.1f | %s |" % (setting, m, r(m, base), p50, p99, r(p50, base_up)))
    md.append("")

# ---- end to end ------------------------------------------------------------------------------
e2e_rates = sorted(int(f[4:-6]) for f in os.listdir(WORK) if f.startswith("e2e-") and f.endswith(".jsonl"))
if e2e_rates:
    md += ["## End to end: upload -> PERMANENT", "",
           "Open-loop uploads of the 100K MP3 at a fixed rate (bench/lib/loadgen.py, request i sent at t0 + i/rate "
           "whatever the earlier ones did). End to end = the row's `updated_at` when it turned PERMANENT (PostgreSQL's "
           "clock, same machine) minus the moment the upload was scheduled; it includes the upload itself, the "
           "outbox relay, RabbitMQ, the processor (GET, tags, POST /songs) and the move to the PERMANENT bucket.", "",
           "| rate | uploads (ok / sent) | songs stored | upload p50 / p99 ms | upload -> PERMANENT p50 / p99 ms | max ms | load before |",
           "|---:|---:|---:|---:|---:|---:|---|"]
    cdf = {}
    for rate in e2e_rates:
        reqs = jsonl("e2e-%d.jsonl" % rate)
        ok = [q for q in reqs if q["status"] == 200 and q["id"]]
        up = [(q["end"] - q["sched"]) * 1000 for q in ok]
        sched = {q["id"]: q["sched"] for q in ok}
        e2e = [(float(row[2]) - sched[int(row[0])]) * 1000 for row in tsv("e2e-%d-db.tsv" % rate) if row[3] == "PERMANENT"]
        cdf[rate] = sorted(e2e)
        songs = open(path("e2e-%d-songs" % rate)).read().strip()
        ld = open(path("e2e-%d.load" % rate)).read().split()[0]
        md.append("| %d/s | %d / %d | %s | %.1f / %.1f | %.0f / %.0f | %.0f | %s |" % (
            rate, len(ok), len(reqs), songs, pct(up, 50), pct(up, 99), pct(e2e, 50), pct(e2e, 99), max(e2e or [0]), ld))
        summary.append(("upload -> PERMANENT p50 / p99 ms, %d/s (%d uploads)" % (rate, len(reqs)),
                        "%.0f / %.0f" % (pct(e2e, 50), pct(e2e, 99)),
                        "upload alone: %.0f / %.0f" % (pct(up, 50), pct(up, 99)), "n/a", ld))
    md.append("")
    if PLOTS:
        dat = path("e2e.dat")
        with open(dat, "w") as f:
            for rate in e2e_rates:
                f.write("# %d/s\n" % rate)
                xs = cdf[rate]
                for i, x in enumerate(xs):
                    f.write("%.2f %.4f\n" % (x, (i + 1) / len(xs)))
                f.write("\n\n")
        png = "%s-e2e.png" % STAMP
        plots.append((png, """
set terminal pngcairo size 700,380 font ",10"
set termoption noenhanced
set output '%s'
set title "Upload -> PERMANENT latency (CDF)"
set xlabel "ms (log)"; set ylabel "fraction of uploads"; set logscale x; set grid; set key bottom right
plot %s
""" % (os.path.join(RESDIR, png), ", ".join("'%s' i %d u 1:2 w l lw 2 t '%d uploads/s'" % (dat, i, rate) for i, rate in enumerate(e2e_rates)))))
        md += ["![end to end](%s)" % png, ""]

# ---- failover --------------------------------------------------------------------------------
fo = jsonl("failover.jsonl")
if fo:
    ev = dict(l.split() for l in open(path("failover-events.txt")))
    t_kill, t_start, t_up = float(ev["kill"]), float(ev["start"]), float(ev["up"])
    t0 = min(q["sched"] for q in fo)
    br = jsonl("failover-breaker.jsonl")
    phases = (("before", lambda q: q["sched"] < t_kill),
              ("during (Storage Service down)", lambda q: t_kill <= q["sched"] < t_up),
              ("after (restarted)", lambda q: q["sched"] >= t_up))
    md += ["## Failover: uploads through a Storage Service outage", "",
           "Open-loop uploads of the 100K MP3 at %s/s; the Storage Service is SIGKILLed (`scripts/services.sh kill "
           "storage`) %.0f s in and started again %.0f s later (`scripts/services.sh start storage`, up %.1f s after "
           "the start command). The breaker state is read from `GET /actuator/circuitbreakers` every 0.25 s. "
           "latency = response - scheduled send." % (meta["FAILOVER"].split(":")[0], t_kill - t0, t_start - t_kill, t_up - t_start), "",
           "| phase | uploads | errors | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for name, sel in phases:
        qs = [q for q in fo if sel(q)]
        lat = [(q["end"] - q["sched"]) * 1000 for q in qs]
        e = sum(1 for q in qs if q["status"] != 200)
        md.append("| %s | %d | %d | %.1f | %.1f | %.1f |" % (name, len(qs), e, pct(lat, 50), pct(lat, 99), max(lat or [0])))
        summary.append(("failover, %s: upload p50 / p99 ms, errors" % name.split(" (")[0],
                        "%.0f / %.0f, %d errors" % (pct(lat, 50), pct(lat, 99), e), "", "", open(path("failover.load")).read().split()[0]))
    trans = []
    last = None
    for b in br:
        if b["state"] != last:
            trans.append((b["t"] - t0, b["state"]))
            last = b["state"]
    exact = []  # from /actuator/circuitbreakerevents: every transition, to the millisecond
    try:
        import datetime
        evs = json.load(open(path("failover-transitions.json"))).get("circuitBreakerEvents", [])
        for e in evs:
            ts = e["creationTime"].replace("Z", "+00:00")
            ts = re.sub(r"\[.*\]$", "", ts)
            t = datetime.datetime.fromisoformat(ts).timestamp()
            if t0 - 1 <= t <= max(q["end"] for q in fo) + 1:
                exact.append((t - t0, e["stateTransition"].split("_TO_", 1)[1]))
    except Exception as e:
        print("report: no breaker events (%s)" % e, file=sys.stderr)
    if exact:
        md += ["", "Breaker transitions (`/actuator/circuitbreakerevents`, s from the first upload): "
               + ", ".join("%.2f -> %s" % t for t in exact), ""]
        br = [{"t": t0 - 0.2, "state": "CLOSED"}] + [{"t": t0 + t, "state": st} for t, st in exact] \
             + [{"t": max(q["end"] for q in fo), "state": exact[-1][1]}]
    else:
        md += ["", "Breaker states seen (polled every 0.25 s; s from the first upload): " + ", ".join("%.1f %s" % t for t in trans), ""]
    if PLOTS:
        dat = path("failover.dat")
        buckets = {}
        for q in fo:
            buckets.setdefault(int(q["sched"] - t0), []).append(q)
        with open(dat, "w") as f:
            for sec in sorted(buckets):
                qs = buckets[sec]
                lat = [(q["end"] - q["sched"]) * 1000 for q in qs]
                f.write("%d %.2f %.2f %d\n" % (sec, pct(lat, 50), pct(lat, 99), sum(1 for q in qs if q["status"] != 200)))
        bdat = path("failover-breaker.dat")
        code = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2, "FORCED_OPEN": 2, "DISABLED": 0, "DOWN": -1}
        with open(bdat, "w") as f:
            for b in br:
                f.write("%.2f %d\n" % (b["t"] - t0, code.get(b["state"], -1)))
        png = "%s-failover.png" % STAMP
        plots.append((png, """
set terminal pngcairo size 1000,560 font ",10"
set termoption noenhanced
set output '%s'
set multiplot
set lmargin 12; set rmargin 10
set object 1 rect from %.2f, graph 0 to %.2f, graph 1 fc rgb "#eeeeee" fs solid 0.6 noborder behind
set xrange [-1:%d]
set origin 0, 0.3; set size 1, 0.7
set title "Uploads (%s/s, 100K MP3) through a Storage Service outage (shaded: Storage Service down)" noenhanced
set format x ""; set grid; set key top left opaque
set ylabel "upload latency per 1 s, ms"; set logscale y
set y2label "errors per 1 s"; set y2range [0:*]; set y2tics nomirror; set ytics nomirror
set style fill solid 0.5 noborder
plot '%s' u 1:4 axes x1y2 w boxes lc rgb "red" t "errors", \\
     '' u 1:($2 > 0 ? $2 : 1/0) w lp lw 2 pt 7 ps 0.5 lc rgb "#1f77b4" t "p50", \\
     '' u 1:($3 > 0 ? $3 : 1/0) w lp lw 2 pt 7 ps 0.5 lc rgb "#ff7f0e" t "p99"
unset title; unset logscale y; unset y2tics; unset y2label; set format x "%%g"
set origin 0, 0; set size 1, 0.3
set xlabel "seconds from the first upload"
set ylabel "breaker"; set yrange [-0.3:2.3]; set ytics ("CLOSED" 0, "HALF_OPEN" 1, "OPEN" 2) noenhanced
plot '%s' u 1:2 w steps lw 3 lc rgb "#cc0000" notitle
unset multiplot
""" % (os.path.join(RESDIR, png), t_kill - t0, t_up - t0, int(max(q["sched"] for q in fo) - t0) + 3,
       meta["FAILOVER"].split(":")[0], dat, bdat)))
        md += ["![failover](%s)" % png, ""]

# ---- high availability -----------------------------------------------------------------------
ha = jsonl("ha.jsonl")
if ha:
    events = [l.split() for l in open(path("ha-events.txt")) if l.strip()]
    t0 = min(q["sched"] for q in ha)
    kills = [(n, float(t)) for k, n, t in events if k == "kill"]
    ups = {n: float(t) for k, n, t in events if k == "up"}
    roll = [float(t) for k, _, t in events if k.startswith("rolling")]
    first_kill = min(t for _, t in kills)
    def in_flight(q):
        return any(q["start"] - 0.05 <= t <= q["end"] + 0.05 for _, t in kills)
    errs = [q for q in ha if q["status"] != 200]
    md += ["## High availability: uploads while every instance dies", "",
           "Two instances of each service behind the gateway (`FERMATA_REPLICAS=2`). Open-loop uploads of the 100K "
           "MP3 through the gateway at %s/s; each instance of each service is SIGKILLed (`scripts/services.sh kill "
           "NAME@I`), started again %s s later, and after all of them every service gets a rolling restart. "
           "An upload can only fail when it was inside the instance that was killed (nginx does not resend a "
           "request whose body went out)." % tuple(meta["HA"].split(":")), "",
           "| phase | uploads | errors | of them in flight at a kill | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    for name, sel in (("before the first kill", lambda q: q["sched"] < first_kill),
                      ("kills", lambda q: first_kill <= q["sched"] < roll[0]),
                      ("rolling restarts", lambda q: roll[0] <= q["sched"] < roll[1]),
                      ("after", lambda q: q["sched"] >= roll[1])):
        qs = [q for q in ha if sel(q)]
        lat = [(q["end"] - q["sched"]) * 1000 for q in qs]
        e = [q for q in qs if q["status"] != 200]
        md.append("| %s | %d | %d | %d | %.1f | %.1f |" % (name, len(qs), len(e), sum(1 for q in e if in_flight(q)),
                                                            pct(lat, 50), pct(lat, 99)))
    summary.append(("high availability: upload errors while each instance is killed (in flight at the kill)",
                    "%d (%d) of %d" % (len(errs), sum(1 for q in errs if in_flight(q)), len(ha)), "", "",
                    open(path("ha.load")).read().split()[0]))
    md.append("")
    if PLOTS:
        dat = path("ha.dat")
        buckets = {}
        for q in ha:
            buckets.setdefault(int(q["sched"] - t0), []).append(q)
        with open(dat, "w") as f:
            for sec in sorted(buckets):
                qs = buckets[sec]
                lat = [(q["end"] - q["sched"]) * 1000 for q in qs]
                f.write("%d %.2f %.2f %d\n" % (sec, pct(lat, 50), pct(lat, 99), sum(1 for q in qs if q["status"] != 200)))
        marks = "\n".join("set arrow from %.2f, graph 0 to %.2f, graph 1 nohead lc rgb '#999999' dt 2\n"
                            "set label '%s' at %.2f, graph 0.97 rotate by 90 right font ',8'" % (t - t0, t - t0, n, t - t0 + 0.3)
                            for n, t in kills)
        png = "%s-ha.png" % STAMP
        plots.append((png, """
set terminal pngcairo size 1000,420 font ",10"
set termoption noenhanced
set output '%s'
set object 1 rect from %.2f, graph 0 to %.2f, graph 1 fc rgb "#eeeeee" fs solid 0.6 noborder behind
%s
set title "Uploads through the gateway, two instances each: every instance SIGKILLed in turn (dashed), then rolling restarts (shaded)"
set xlabel "seconds from the first upload"; set grid; set key top left opaque
set ylabel "upload latency per 1 s, ms"; set logscale y
set y2label "errors per 1 s"; set y2range [0:*]; set y2tics nomirror; set ytics nomirror
set style fill solid 0.5 noborder
plot '%s' u 1:4 axes x1y2 w boxes lc rgb "red" t "errors", \\
     '' u 1:($2 > 0 ? $2 : 1/0) w lp lw 2 pt 7 ps 0.5 lc rgb "#1f77b4" t "p50", \\
     '' u 1:($3 > 0 ? $3 : 1/0) w lp lw 2 pt 7 ps 0.5 lc rgb "#ff7f0e" t "p99"
""" % (os.path.join(RESDIR, png), roll[0] - t0, roll[1] - t0, marks, dat)))
        md += ["![high availability](%s)" % png, ""]

# ---- memory and start-up ---------------------------------------------------------------------
rss = tsv("rss.tsv")
if rss:
    points = []
    for p, *_ in rss:
        if p not in points:
            points.append(p)
    svcs = ["storage", "song", "resource", "processor"]
    val = {(p, s): (int(a), int(h)) for p, s, a, h, _ in rss}
    md += ["## Memory (VmRSS, kB) and start-up", "",
           "RSS of each service at points of the run (after the named phase), the peak (VmHWM) at the end, "
           "and the time from exec to the first 200 on `/actuator/health`.", "",
           "| point | " + " | ".join(svcs) + " |", "|---|" + "---:|" * len(svcs)]
    for p in points:
        md.append("| %s | %s |" % (p, " | ".join(str(val[(p, s)][0]) if (p, s) in val else "-" for s in svcs)))
    md.append("| peak (VmHWM) | %s |" % " | ".join(str(val[("end", s)][1]) if ("end", s) in val else "-" for s in svcs))
    st = {row[0]: row for row in tsv("startup.tsv")}
    md.append("| start-up to first 200, ms | %s |" % " | ".join(st[s][1] if s in st else "-" for s in svcs))
    md.append("")
    idle = " / ".join("%.1f" % (val[("idle", s)][0] / 1024.0) for s in svcs if ("idle", s) in val)
    end = " / ".join("%.1f" % (val[("end", s)][0] / 1024.0) for s in svcs if ("end", s) in val)
    summary.append(("RSS MB idle (storage / song / resource / processor)", idle, "", "", ""))
    summary.append(("RSS MB at the end of the run", end, "", "", ""))
    summary.append(("start-up to first 200 ms (storage / song / resource / processor)",
                    " / ".join(st[s][1] for s in svcs if s in st), "", "", st.get("storage", ["", "", "-"])[2].split()[0]))
for row in tsv("rss100k.tsv"):
    svc, a, b, n = row[:4]
    rnd = row[4] if len(row) > 4 else "1"
    md.append("RSS of %s, round %s: before / after %s GETs at 64 connections: %s / %s kB (growth %+d kB)." % (svc, rnd, n, a, b, int(b) - int(a)))
    summary.append(("%s RSS growth over %sk GETs (round %s: %s), kB" % (svc, int(n) // 1000, rnd,
                    "first connections" if rnd == "1" else "must be ~0"), "%+d (%s -> %s)" % (int(b) - int(a), a, b), "", "", ""))
md.append("")

# ---- write -----------------------------------------------------------------------------------
if PLOTS:
    for png, script in plots:
        try:
            subprocess.run(["gnuplot"], input=script.encode(), check=True, stderr=subprocess.PIPE)
        except Exception as e:
            print("report: plot %s failed: %s" % (png, getattr(e, "stderr", b"").decode()[-500:] if hasattr(e, "stderr") else e), file=sys.stderr)

table = ["| figure | Fermata | ceiling (same run) | ratio | load (1 min) |", "|---|---:|---:|---:|---:|"]
table += ["| %s | %s | %s | %s | %s |" % row for row in summary]
head = ["# Fermata benchmark, %s" % STAMP, "",
        "Command: `%s` (revision %s; %d s). Every figure next to its ceiling measured in the same run; ratio = "
        "Fermata / ceiling (throughput: higher is better; latency: lower is better)." % (meta["COMMAND"], meta["REV"], int(meta["ELAPSED"])),
        "", "## Summary", ""] + table + [""]
machine = ["## Machine", "", open(path("machine.md")).read().rstrip(), ""]
with open(OUT, "w") as f:
    f.write("\n".join(head + md + machine) + "\n")
print("\n".join(table))
