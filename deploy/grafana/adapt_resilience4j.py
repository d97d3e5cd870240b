#!/usr/bin/env python3
"""Resilience4j's published Grafana dashboard, adapted to Fermata (a tool, not product code).

Reads deploy/grafana/upstream/resilience4j-grafana_dashboard.json (the file as published in
the resilience4j repository; see deploy/grafana/upstream/NOTICE) and writes
deploy/grafana/dashboards/resilience4j.json, the copy Grafana provisions. Every change is
listed in CHANGES below and in deploy/grafana/README.md; `make lint` runs this with
--check, so the provisioned copy is always this script's output.

What changes, and why:
  - the datasource: the export names `${DS_PROMETHEUS}`, an import-time input that
    provisioning does not fill; here it is the provisioned datasource's uid, `prometheus`;
  - the `application` variable read `label_values(jvm_info, application)`: there is no JVM
    here. Both Prometheus configurations give every target an `application` label, so it
    reads it from `resilience4j_circuitbreaker_state`;
  - `resilience4j_circuitbreaker_max_buffered_calls` (the sliding window's size, a gauge of
    resilience4j-micrometer) is not exported by the Resource Service: its target is dropped
    from the "Buffered calls" panel (the window size is configuration:
    RESILIENCE4J_CIRCUITBREAKER_INSTANCES_STORAGESERVICE_SLIDINGWINDOWSIZE);
  - the Retry and Bulkhead rows, their panels and their variables go: Fermata has no
    Resilience4j Retry or Bulkhead instance, so `resilience4j_retry_calls_total` and
    `resilience4j_bulkhead_*` do not exist (the processor's retries are counted by
    `processor_messages_retried_total`, on the Fermata dashboard);
  - uid, id and version are fixed so the provisioned dashboard keeps its address.
Every other metric it queries is one the Resource Service exports under the same name with
the same labels (`name`, `state`, `kind`; `instance` from Prometheus).

    deploy/grafana/adapt_resilience4j.py           write the adapted copy
    deploy/grafana/adapt_resilience4j.py --check   exit 1 when the copy is not up to date
"""
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
UPSTREAM = HERE / "upstream" / "resilience4j-grafana_dashboard.json"
OUT = HERE / "dashboards" / "resilience4j.json"
DATASOURCE_UID = "prometheus"
DROP_METRICS = ("resilience4j_circuitbreaker_max_buffered_calls", "resilience4j_retry_", "resilience4j_bulkhead_")
DROP_ROWS = ("Retry", "Bulkhead")
DROP_VARIABLES = ("retry_name", "bulkhead_name")


def replace_datasource(node):
    if isinstance(node, dict):
        return {k: replace_datasource(v) for k, v in node.items()}
    if isinstance(node, list):
        return [replace_datasource(v) for v in node]
    if isinstance(node, str):
        return node.replace("${DS_PROMETHEUS}", DATASOURCE_UID)
    return node


def uses_dropped(target):
    return any(m in target.get("expr", "") for m in DROP_METRICS)


def adapt(d):
    d = replace_datasource(d)
    for k in ("__inputs", "__elements"):
        d.pop(k, None)
    # rows are flat markers in the panel list: drop a dropped row and what follows it up
    # to the next row
    panels, dropping = [], False
    for p in d["panels"]:
        if p.get("type") == "row":
            dropping = p.get("title") in DROP_ROWS
        if dropping:
            continue
        if "targets" in p:
            p["targets"] = [t for t in p["targets"] if not uses_dropped(t)]
            if not p["targets"]:
                continue
        panels.append(p)
    d["panels"] = panels
    variables = []
    for v in d["templating"]["list"]:
        if v.get("name") in DROP_VARIABLES:
            continue
        if v.get("name") == "application":
            q = "label_values(resilience4j_circuitbreaker_state, application)"
            v["definition"] = q
            v["query"]["query"] = q
        variables.append(v)
    d["templating"]["list"] = variables
    d["id"] = None
    d["uid"] = "fermata-resilience4j"
    d["version"] = 1
    d["title"] = "Resilience4j (Fermata Resource Service)"
    d["description"] = ("Resilience4j's published dashboard (resilience4j/resilience4j, "
                        "grafana_dashboard.json, Apache-2.0), adapted by deploy/grafana/adapt_resilience4j.py")
    return d


def render():
    d = adapt(json.loads(UPSTREAM.read_text(encoding="utf-8")))
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    text = render()
    if argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(HERE.parent.parent)} is not what {pathlib.Path(__file__).name} makes "
                  f"from the upstream file: run deploy/grafana/adapt_resilience4j.py")
            return 1
        return 0
    if argv[1:]:
        print(__doc__)
        return 2
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
