#!/usr/bin/env python3
"""Differential test: lib/breaker against Resilience4j 2.4.0's CircuitBreaker.

Writes one scenario file (the hand-written set in scenarios.txt, then thousands of random
scenarios from a seed), runs it through the C harness and through the Java harness (one
JVM for all scenarios), and fails on the first line where the traces differ.

The seed is new on every run unless FERMATA_SEED is set; it is printed first so a failure
can be replayed:  FERMATA_SEED=1234 tests/conformance/breaker/run.py ...
Python 3 standard library only.
"""
import argparse
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STATES = ["CLOSED", "OPEN", "HALF_OPEN", "DISABLED", "FORCED_OPEN", "METRICS_ONLY"]
MS = 1_000_000
SEC = 1_000_000_000


def build_jar(java_dir, out_dir):
    """Builds the shaded harness jar once; rebuilds only when a source is newer."""
    jar = os.path.join(out_dir, "breaker-harness.jar")
    sources = [os.path.join(java_dir, "pom.xml")]
    for root, _, files in os.walk(os.path.join(java_dir, "src")):
        sources += [os.path.join(root, f) for f in files]
    if os.path.exists(jar) and os.path.getmtime(jar) >= max(map(os.path.getmtime, sources)):
        return jar
    print("building the Java harness with Maven (once) ...", flush=True)
    subprocess.run(["mvn", "-B", "-q", "-f", os.path.join(java_dir, "pom.xml"),
                    "-Dharness.dir=" + out_dir, "package"], check=True)
    return jar


def rand_threshold(r):
    if r.random() < 0.6:
        return r.choice(["1", "10", "20", "25", "33.3", "33.333332", "40", "50", "60",
                         "66.7", "75", "80", "99.9", "100"])
    return "%.2f" % r.uniform(0.5, 100.0)


def rand_config(r):
    c = {"start": str(1_700_000_000 * SEC + r.randrange(SEC))}
    time_based = r.random() < 0.35
    c["type"] = "TIME_BASED" if time_based else "COUNT_BASED"
    c["size"] = str(r.randint(1, 5) if time_based else r.randint(1, 8))
    c["min"] = str(r.randint(1, 10))
    c["permitted"] = str(r.randint(1, 4))
    c["fr"] = rand_threshold(r)
    c["sr"] = rand_threshold(r) if r.random() < 0.6 else "100"
    c["slowns"] = str(r.choice([1, MS, 10 * MS, 25 * MS, 50 * MS, r.randint(1, 80 * MS)]))
    c["waitms"] = str(r.choice([1, 10, 100, 500, 1000, r.randint(1, 3000)]))
    c["maxwaitms"] = str(0 if r.random() < 0.55 else r.choice([1, 100, 700, r.randint(1, 3000)]))
    c["after"] = r.choice(["OPEN", "CLOSED"])
    c["auto"] = "1" if r.random() < 0.4 else "0"
    if r.random() < 0.3:
        c["exp"] = "1"
        c["mult"] = r.choice(["1.5", "2", "1.1", "3", "2.5"])
        c["expmax"] = str(r.choice([0, 0, 200, 1000, 5000]))
    c["initial"] = "CLOSED" if r.random() < 0.7 else r.choice(STATES)
    if c["auto"] == "1" and c["maxwaitms"] != "0" and int(c["waitms"]) + int(c["maxwaitms"]) < 100:
        # OPEN <-> HALF_OPEN timers cycle on their own; keep a cycle >= 100 ms so one
        # advance of a few seconds does not print thousands of transitions.
        c["maxwaitms"] = str(100 + r.randint(0, 500))
    return c


def rand_duration(r, slowns):
    x = r.random()
    if x < 0.15:
        return slowns  # exactly the threshold: not slow
    if x < 0.25:
        return slowns + 1
    return r.randint(0, 100 * MS)


def rand_ops(r, c):
    ops = []
    slowns = int(c["slowns"])
    # A quarter of the scenarios are healthy traffic (rare failures, fast calls): long runs
    # in a warm CLOSED window, where lib/breaker records without its mutex.
    healthy = r.random() < 0.25
    weights = [18, 1, 1] if healthy else [5, 4, 1]
    outcome = lambda: r.choices("SFI", weights=weights)[0]
    duration = ((lambda: r.randint(0, slowns) if r.random() < 0.9 else rand_duration(r, slowns))
                if healthy else (lambda: rand_duration(r, slowns)))
    for _ in range(r.randint(10, 60)):
        x = r.random()
        if x < 0.58:
            ops.append("call %s %d" % (outcome(), duration()))
        elif x < 0.63:
            ops.append("acquire")
        elif x < 0.68:
            ops.append("record %s %d" % (outcome(), duration()))
        elif x < 0.88:
            ops.append("advance %d" % r.choice([
                r.randint(0, 2500) * MS, r.randint(0, 2500 * MS), r.randint(1, 7) * SEC,
                int(c["waitms"]) * MS, int(c["waitms"]) * MS + 1, int(c["maxwaitms"]) * MS]))
        elif x < 0.97:
            ops.append("to " + r.choice(STATES))
        else:
            ops.append("reset")
    return ops


INVALID = [("fr", ["0", "-1", "100.5", "150.25", "-0.001", "1000000", "1.0E-5"]),
           ("sr", ["0", "-3.5", "100.01", "123456.7"]),
           ("waitms", ["0", "-5"]), ("slowns", ["0", "-1"]), ("maxwaitms", ["-1"]),
           ("permitted", ["0", "-2"]), ("size", ["0", "-1"]), ("min", ["0", "-7"])]


def rand_validation(r, i):
    key, vals = r.choice(INVALID)
    v = r.choice(vals) if r.random() < 0.7 else None
    if v is None:  # a random out-of-range float exercises Java's Float.toString
        if key in ("fr", "sr"):
            # Below 1e7 only: from 1e7 up (E notation) JDK 17's FloatingDecimal may print a
            # 9th, non-shortest digit (JDK-4511638, fixed in JDK 19); we print the shortest,
            # as JDK 19+ does. Every rate k*100/n (n <= 2000) prints the same on both.
            v = repr(r.choice([-1, 1]) * r.uniform(0, 1) * 10 ** r.randint(-6, 6))
            if 0 < float(v) <= 100:
                v = str(float(v) + 100.5)
        else:
            v = r.choice(vals)
    return "V v%d %s=%s" % (i, key, v)


def generate(path, seed, count):
    r = random.Random(seed)
    with open(os.path.join(HERE, "scenarios.txt")) as f:
        hand = f.read()
    with open(path, "w") as out:
        out.write(hand)
        out.write("\n")
        for i in range(200):
            out.write(rand_validation(r, i) + "\n")
        for i in range(count):
            c = rand_config(r)
            out.write("S r%d %s\n" % (i, " ".join("%s=%s" % kv for kv in c.items())))
            for op in rand_ops(r, c):
                out.write(op + "\n")
            out.write("E\n")


def scenario_text(path, sid):
    lines, on = [], False
    with open(path) as f:
        for line in f:
            t = line.split()
            if t and t[0] in ("S", "V") and len(t) > 1:
                on = t[1] == sid
            if on:
                lines.append(line.rstrip())
            if on and t and t[0] == "E":
                break
    return "\n".join(lines)


def drop_events(out):
    """The trace without its last field (ev=...): for the run without event consumers."""
    return "\n".join(line.rsplit(" ev=", 1)[0] for line in out.splitlines())


def compare(path, c_out, j_out):
    """Returns (ok, stats). Both outputs group lines by scenario id, in file order."""
    cl, jl = c_out.splitlines(), j_out.splitlines()
    ci = ji = 0
    truncated = steps = 0
    while ji < len(jl):
        jline = jl[ji]
        if " BUG " in jline:
            # Java hit an excluded bug: skip the C lines of the rest of this scenario.
            sid = jline.split()[0]
            truncated += 1
            while ci < len(cl) and cl[ci].split()[0] == sid:
                ci += 1
            ji += 1
            continue
        cline = cl[ci] if ci < len(cl) else "<no line>"
        if cline != jline:
            sid = jline.split()[0]
            print("FIRST DIFFERENCE in scenario %s" % sid)
            print("  resilience4j: %s" % jline[:1500])
            print("  fermata     : %s" % cline[:1500])
            print("previous steps (both agree):")
            k = ji - 1
            ctx = []
            while k >= 0 and jl[k].split()[0] == sid and len(ctx) < 8:
                ctx.append("  " + jl[k][:500])
                k -= 1
            print("\n".join(reversed(ctx)))
            print("scenario:")
            print(scenario_text(path, sid))
            return False, (steps, truncated)
        steps += 1
        ci += 1
        ji += 1
    if ci != len(cl):
        print("FIRST DIFFERENCE: fermata printed extra lines from: %s" % cl[ci])
        return False, (steps, truncated)
    return True, (steps, truncated)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-harness", required=True)
    ap.add_argument("--build-dir", required=True, help="where the jar and scenario files go")
    ap.add_argument("--count", type=int, default=3000)
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    seed = int(os.environ.get("FERMATA_SEED") or random.SystemRandom().randrange(1 << 32))
    print("breaker conformance: FERMATA_SEED=%d (%d random scenarios)" % (seed, a.count),
          flush=True)
    os.makedirs(a.build_dir, exist_ok=True)
    jar = build_jar(os.path.join(HERE, "java"), os.path.join(a.build_dir, "java"))
    path = os.path.join(a.build_dir, "scenarios-%d.txt" % seed)
    generate(path, seed, a.count)
    t0 = time.time()
    j = subprocess.run(["java", "-Xss4m", "-cp", jar, "fermata.Harness", path],
                       capture_output=True, text=True)
    if j.returncode != 0:
        print(j.stderr)
        sys.exit("java harness failed")
    t1 = time.time()
    # Pass 1: events included (a listener, so every call takes the breaker's mutex).
    # Pass 2: no event consumer, so records take the lock-free fast path where it applies;
    # everything but the events is compared.
    for label, args, jout in (("events", [], j.stdout),
                              ("no events (fast path)", ["--no-events"], drop_events(j.stdout))):
        c0 = time.time()
        c = subprocess.run([a.c_harness] + args + [path], capture_output=True, text=True)
        if c.returncode != 0:
            print(c.stderr)
            sys.exit("C harness failed")
        c1 = time.time()
        cout = c.stdout if not args else drop_events(c.stdout)
        ok, (steps, truncated) = compare(path, cout, jout)
        print("%s: compared %d trace lines; %d scenarios cut at an excluded Java bug; "
              "java %.1fs, C %.1fs" % (label, steps, truncated, t1 - t0, c1 - c0))
        if not ok:
            print("replay with FERMATA_SEED=%d; scenarios in %s" % (seed, path))
            sys.exit(1)
    os.remove(path)
    print("PASS")


if __name__ == "__main__":
    main()
