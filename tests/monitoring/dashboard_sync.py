"""Keep manifests/monitoring/grafana-dashboard.yaml in step with dashboards/kfp-mlops.json.

The JSON file is the source (import it in Grafana by hand, or edit it there and export);
the ConfigMap carries the same JSON for Grafana's dashboard sidecar. Regenerate with::

    python tests/monitoring/dashboard_sync.py
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

FOLDER = Path(__file__).resolve().parents[2] / "manifests" / "monitoring"
DASHBOARD_JSON = FOLDER / "dashboards" / "kfp-mlops.json"
CONFIGMAP = FOLDER / "grafana-dashboard.yaml"
HEADER = (
    "# Grafana dashboard ConfigMap (sidecar label grafana_dashboard); generated from "
    "dashboards/kfp-mlops.json by tests/monitoring/dashboard_sync.py.\n"
)


class _Literal(str):
    """A string dumped as a YAML block scalar, so the JSON stays readable in the file."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


def render() -> str:
    """Return the ConfigMap YAML text for the current dashboard JSON."""
    dashboard = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "kfp-mlops-grafana-dashboard",
            "labels": {
                "grafana_dashboard": "1",
                "app.kubernetes.io/name": "kfp-mlops",
                "app.kubernetes.io/component": "monitoring",
            },
            # Grafana's sidecar files the dashboard in this folder.
            "annotations": {"grafana_folder": "kfp-mlops"},
        },
        "data": {"kfp-mlops.json": _Literal(json.dumps(dashboard, indent=2) + "\n")},
    }
    dumper = type("Dumper", (yaml.SafeDumper,), {})
    dumper.add_representer(_Literal, _literal)
    return HEADER + yaml.dump(configmap, Dumper=dumper, sort_keys=False, width=1000)


if __name__ == "__main__":
    CONFIGMAP.write_text(render(), encoding="utf-8")
    print(f"wrote {CONFIGMAP}")
