#!/usr/bin/env python3
"""Offline check of the Grafana dashboards and their provisioning (`make lint`).

For every deploy/grafana/dashboards/*.json:
  - it is JSON with a unique uid, and every datasource it names is the provisioned
    Prometheus (deploy/grafana/provisioning/datasources/prometheus.yaml's uid);
  - every PromQL expression in it (panel targets, and the template variables' queries:
    label_values(METRIC, LABEL), query_result(EXPR)) parses: Prometheus' own parser, through
    `promtool check rules` on a rules file made of them (Grafana's variables replaced first:
    $__rate_interval and the other $__ ones by 1m, every other $variable by a plain value);
  - every metric name an expression uses is one the services write (deploy/grafana/metrics.txt,
    generated from the C sources by deploy/lint/metric_names.py) or one of
    deploy/grafana/metrics-external.txt (RabbitMQ's, Prometheus' `up`).
And metrics.txt itself against the code: a name in it that the code no longer writes fails
(a metric renamed in the code); a name the code writes that is not in it is reported.
And the adapted Resilience4j dashboard is what deploy/grafana/adapt_resilience4j.py makes.

Metric names are found by a small PromQL lexer: strings, label matchers, ranges and
by/without/on/ignoring/group_* label lists removed, then every identifier that is not a
keyword and is not called as a function or aggregation is a metric name.

    deploy/lint/check_dashboards.py                       the offline checks
    deploy/lint/check_dashboards.py --prometheus URL      also runs every expression on a
                                                          live Prometheus and names those
                                                          that return nothing
Environment: PROMTOOL (default: promtool on PATH, Debian's prometheus package).
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

import yaml

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, str(HERE))
import metric_names  # noqa: E402

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yaml"

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "inf", "nan", "start", "end"}
TOKEN = re.compile(r"(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*)|(?P<id>[a-zA-Z_:][a-zA-Z0-9_:]*)|(?P<other>\S)")


def grafana_to_promql(expr):
    """Grafana's variables replaced by values PromQL accepts where they stand."""
    expr = re.sub(r"\$\{__[a-zA-Z_]+(?::[a-z]+)?\}|\$__[a-zA-Z_]+", "1m", expr)
    return re.sub(r"\$\{[a-zA-Z0-9_]+(?::[a-z]+)?\}|\$[a-zA-Z0-9_]+", "x", expr)


def metrics_of(expr):
    """The metric names a (variable-free) PromQL expression selects."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    if "__name__" in s:
        raise ValueError("selects by __name__: metric names cannot be checked")
    s = re.sub(r"\{[^{}]*\}", " ", s)
    s = re.sub(r"\[[^\[\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    names = set()
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(s)]
    for i, (kind, text) in enumerate(tokens):
        if kind != "id" or text in KEYWORDS:
            continue
        if i + 1 < len(tokens) and tokens[i + 1][1] == "(":
            continue  # a function or an aggregation
        names.add(text)
    return names


def expressions(dash):
    """(where, PromQL) for every query of a dashboard."""
    out = []

    def walk_panels(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f'panel "{p.get("title")}" target {t.get("refId")}', t["expr"]))
            walk_panels(p.get("panels", []))

    walk_panels(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        where = f'variable "{v.get("name")}"'
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*", q)
        if m:
            out.append((where, m.group(1)))
            continue
        m = re.fullmatch(r"\s*query_result\((.*)\)\s*", q, flags=re.S)
        if m:
            out.append((where, m.group(1)))
            continue
        if re.fullmatch(r"\s*(label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)|label_names\(\)|metrics\(.*\))\s*", q):
            continue
        out.append((where, None))  # unknown form: reported
    return out


def datasource_uids(node):
    """Every datasource uid a dashboard names (panels, targets, variables)."""
    found = []
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            found.append(ds["uid"])
        elif isinstance(ds, str):
            found.append(ds)
        for v in node.values():
            found += datasource_uids(v)
    elif isinstance(node, list):
        for v in node:
            found += datasource_uids(v)
    return found


def promtool_parse(promtool, exprs):
    """Error text per expression index that Prometheus' parser refuses ({} when all parse)."""

    def check(items):
        rules = {"groups": [{"name": "dashboards",
                             "rules": [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in items]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump(rules, f)
        try:
            r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        return r.returncode, (r.stdout + r.stderr).strip()

    rc, _ = check(exprs)
    if rc == 0:
        return {}
    errors = {}
    for i, e in exprs:  # find which ones
        rc, text = check([(i, e)])
        if rc != 0:
            errors[i] = text.splitlines()[-1] if text else "promtool refused it"
    return errors or {-1: "promtool failed on the rules file as a whole"}


def live_check(url, exprs):
    """Expressions that return no series on the Prometheus at URL."""
    empty = []
    for where, e in exprs:
        q = urllib.parse.urlencode({"query": e})
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query?{q}", timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success" or not body["data"]["result"]:
            empty.append((where, e))
    return empty


def main(argv):
    live = None
    if argv[1:2] == ["--prometheus"] and len(argv) == 3:
        live = argv[2]
    elif argv[1:]:
        print(__doc__)
        return 2
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not promtool:
        print("promtool not found (Debian's prometheus package; make deps installs it)")
        return 1
    problems = []

    # the checked-in list against the code
    listed = metric_names.read_list(GRAFANA / "metrics.txt")
    in_code = metric_names.code_names()
    for n in sorted(listed - in_code):
        problems.append(f"deploy/grafana/metrics.txt: {n} is no longer written by the code (renamed or removed?): "
                        "run deploy/lint/metric_names.py --write, then fix the dashboards that use it")
    for n in sorted(in_code - listed):
        print(f"note: the code writes {n}, not yet in deploy/grafana/metrics.txt (deploy/lint/metric_names.py --write)")
    known = listed | metric_names.read_list(GRAFANA / "metrics-external.txt")

    ds = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    ds_uids = {d["uid"] for d in ds.get("datasources", [])}

    adapt = subprocess.run([sys.executable, str(GRAFANA / "adapt_resilience4j.py"), "--check"],
                           capture_output=True, text=True)
    if adapt.returncode != 0:
        problems.append((adapt.stdout + adapt.stderr).strip())

    uids = {}
    all_exprs = []
    files = sorted(DASHBOARDS.glob("*.json"))
    if not files:
        problems.append("no dashboard under deploy/grafana/dashboards/")
    for f in files:
        rel = f.relative_to(ROOT)
        try:
            dash = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            problems.append(f"{rel}: not JSON: {e}")
            continue
        uid = dash.get("uid")
        if not uid:
            problems.append(f"{rel}: no uid")
        elif uid in uids:
            problems.append(f"{rel}: uid {uid} is also {uids[uid]}'s")
        uids[uid] = rel
        for u in sorted(set(datasource_uids(dash))):
            if u not in ds_uids and u not in ("-- Grafana --", "grafana"):
                problems.append(f"{rel}: datasource uid {u!r} is not a provisioned one ({', '.join(sorted(ds_uids))})")
        exprs = expressions(dash)
        promql = []
        for where, e in exprs:
            if e is None:
                problems.append(f"{rel}: {where}: a variable query this check does not understand")
                continue
            p = grafana_to_promql(e)
            promql.append((where, e, p))
            try:
                for m in sorted(metrics_of(p) - known):
                    problems.append(f"{rel}: {where}: metric {m} is not one the services expose "
                                    f"(deploy/grafana/metrics.txt, metrics-external.txt): {e}")
            except ValueError as err:
                problems.append(f"{rel}: {where}: {err}")
        errors = promtool_parse(promtool, [(i, p) for i, (_, _, p) in enumerate(promql)])
        for i, text in sorted(errors.items()):
            where, e = (promql[i][0], promql[i][1]) if i >= 0 else ("(all)", "")
            problems.append(f"{rel}: {where}: PromQL does not parse: {text}: {e}")
        print(f"{rel}: {len(promql)} expressions, metrics "
              f"{', '.join(sorted(set().union(*(metrics_of(p) for _, _, p in promql)) if promql else set()))}")
        all_exprs += [(f"{rel}: {w}", p.replace('=~"x"', '=~".*"')) for w, _, p in promql]

    if live and not problems:
        for where, e in live_check(live, all_exprs):
            print(f"live: no series: {where}: {e}")

    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
