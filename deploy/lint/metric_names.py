#!/usr/bin/env python3
"""The metric names Fermata's services write on /actuator/prometheus, read from the C sources.

The dashboards under deploy/grafana/dashboards/ may query only these (and the few of
deploy/grafana/metrics-external.txt: RabbitMQ's, Prometheus' own). The list is checked in
as deploy/grafana/metrics.txt so a review sees a metric appear or go;
deploy/lint/check_dashboards.py (`make lint`) compares it with what this finds in the code:

  - a name in the list that the code no longer writes (a metric renamed or removed in the
    code) fails the lint, whether or not a dashboard uses it: regenerate the list, and the
    dashboards that used the old name then fail against it;
  - a name the code writes that the list lacks is only reported (a new metric; a dashboard
    may use it once the list is regenerated).

How names are found, in every .c file under lib/ and services/ that writes Prometheus'
text format (it has a "# TYPE" in a string literal). In its string literals:
  - "# TYPE NAME TYPE": NAME, but for a summary NAME_count and NAME_sum instead (and
    NAME_bucket for a histogram): NAME itself only when a sample line writes it; the same
    for a name literal followed by "summary" or "histogram" (a helper's arguments);
  - a sample line, "NAME{" or "NAME %" at the start of a literal or of a line in it,
    NAME with an underscore (so "bytes %zu" in a message is not one);
  - a literal that is a whole name with at least two underscores
    ("processor_messages_processed_total"), as the helpers that take the name as an
    argument get it (write_counter, family, sample). Label values with fewer underscores
    ("half_open", "not_permitted") are not names.
Names with a printf conversion in them ("http_server_requests_seconds_%s") are left out:
their expansions are written elsewhere as sample lines.

    deploy/lint/metric_names.py            print the names
    deploy/lint/metric_names.py --write    rewrite deploy/grafana/metrics.txt
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
LIST = ROOT / "deploy" / "grafana" / "metrics.txt"
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
TYPE = re.compile(r"# TYPE (" + NAME + r") (counter|gauge|summary|histogram|untyped)")
SAMPLE = re.compile(r"(?:^|\\n)([a-zA-Z_:][a-zA-Z0-9:]*_[a-zA-Z0-9_:]*)(?:\{| %)")
WHOLE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+){2,}$")
# a helper given the family's name and type: family(s, "NAME", "summary", ...)
FAMILY = re.compile(r'"(' + NAME + r')"\s*,\s*"(summary|histogram)"')


def strip_comments(src):
    # comments may quote names that are not written ("fermata_pipeline_lag_seconds" proposed)
    src = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def names_in(src):
    src = strip_comments(src)
    literals = LITERAL.findall(src)
    if not any("# TYPE" in lit for lit in literals):
        return set()
    found, sampled = set(), set()
    bases = {name for name, _ in FAMILY.findall(src)}
    for lit in literals:
        for name, kind in TYPE.findall(lit):
            if kind in ("summary", "histogram"):
                bases.add(name)
                found.update({name + "_count", name + "_sum"})
            else:
                found.add(name)
            if kind == "histogram":
                found.add(name + "_bucket")
        sampled.update(SAMPLE.findall(lit))
        if WHOLE.match(lit):
            found.add(lit)
    # a summary's or histogram's own name is a series only when a sample line writes it
    # (quantiles); its family name passed to a helper is not
    found = (found - bases) | sampled
    return {n for n in found if "%" not in n}


def code_names(root=ROOT):
    out = set()
    for top in ("lib", "services"):
        for f in sorted((root / top).rglob("*.c")):
            out |= names_in(f.read_text(encoding="utf-8", errors="replace"))
    return out


def read_list(path):
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line)
    return names


def render(names):
    head = ("# The metric names Fermata's services write (generated from lib/ and services/ by\n"
            "# deploy/lint/metric_names.py --write; `make lint` fails when the code no longer\n"
            "# writes one of them). The dashboards may use these and deploy/grafana/metrics-external.txt.\n")
    return head + "".join(n + "\n" for n in sorted(names))


def main(argv):
    names = code_names()
    if argv[1:] == ["--write"]:
        LIST.write_text(render(names), encoding="utf-8")
        print(f"{LIST.relative_to(ROOT)}: {len(names)} names")
        return 0
    if argv[1:]:
        print(__doc__)
        return 2
    for n in sorted(names):
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
