"""Checks the Helm chart offline with the real Helm engine (helm-python-sdk) and the
Kubernetes schemas (kubernetes-validate).

    check_chart.py check CHART           lint; render default and ci/production values;
                                         validate every manifest; exit 1 on any problem
    check_chart.py nginx CHART VALUES    print the nginx.conf the chart renders for VALUES (JSON)
    check_chart.py render CHART VALUES   print every rendered manifest as JSON
"""
import json
import os
import sys

import helm_python as helm
import kubernetes_validate
import yaml

KUBE_VERSION = "1.32.0"
# The base values every render needs (the chart refuses to render without an admin token).
BASE = {"admin": {"token": "chart-test-token-0123456789"}}


def merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def render(chart_dir, values):
    chart = helm.Chart.load(chart_dir)
    chart.validate_schema(values)
    return chart.render(values, name="mediagate", namespace="media", is_install=True)


def manifests(rendered):
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                yield path, doc


def check(chart_dir):
    problems = []
    report = helm.lint(chart_dir, BASE, strict=True, kube_version="v" + KUBE_VERSION)
    problems += [f"lint: {m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    problems += [f"lint: {e}" for e in report["errors"]]
    # Every file of ci/ is a shape to render: production values name Secrets managed elsewhere
    # (no admin token in values); the bucket's has its own.
    shapes = [("default", BASE)]
    for name in sorted(os.listdir(f"{chart_dir}/ci")):
        with open(f"{chart_dir}/ci/{name}") as f:
            shapes.append((name.removesuffix("-values.yaml"), yaml.safe_load(f)))
    for label, values in shapes:
        kinds = []
        for path, doc in manifests(render(chart_dir, values)):
            kinds.append(doc["kind"])
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except Exception as e:  # noqa: BLE001 - every kind of failure is a finding
                problems.append(f"{label}: {path}: {doc['kind']}: {e}")
        print(f"{label}: {len(kinds)} manifests: {', '.join(sorted(kinds))}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def main():
    cmd, chart_dir = sys.argv[1], sys.argv[2]
    if cmd == "check":
        return check(chart_dir)
    values = merge(BASE, json.loads(sys.argv[3]))
    rendered = render(chart_dir, values)
    if cmd == "render":
        print(json.dumps([doc for _, doc in manifests(rendered)]))
        return 0
    for _, doc in manifests(rendered):
        if doc["kind"] == "ConfigMap":
            sys.stdout.write(doc["data"]["nginx.conf"])
            return 0
    return "no ConfigMap rendered"


if __name__ == "__main__":
    sys.exit(main())
