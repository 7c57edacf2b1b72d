"""manifests/monitoring: the PodMonitor, alert rules and Grafana dashboard hold together.

- Structure: PodMonitor and PrometheusRule against the upstream prometheus-operator CRDs
  (tests/fixtures/crds, through tests.k8s_schemas, plus the rule-format checks of the
  operator's admission webhook), the ConfigMap with kubernetes-validate.
- Scraping: the PodMonitor selects the pods KServe makes for the suite's InferenceService
  and scrapes the port and path the kfp-mlops-sklearn runtime declares.
- PromQL: every expression in the rules and the dashboard parses (promql-parser, the
  Rust parser's Python binding) and names only metrics the real predictor module exports
  (read from its prometheus_client objects), recording rules defined here, the drift
  gauges the monitoring pipeline reports, or the well-known series listed below.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from tests.k8s_schemas import (  # noqa: E402
    K8sValidationError,
    is_crd_kind,
    validate_crd_object,
    validate_standard_object,
)
from tests.manifests import kustomize_lite  # noqa: E402
from tests.monitoring import dashboard_sync  # noqa: E402

FOLDER = _REPO / "manifests" / "monitoring"
RUNTIME = _REPO / "manifests" / "base" / "runtime" / "cluster-serving-runtime.yaml"
ISVC = _REPO / "manifests" / "base" / "inferenceservice" / "inferenceservice.yaml"

# Reported by the monitoring pipeline (pushed to a Pushgateway), see docs/observability.md.
# tests/monitoring/test_quality_gauges.py pushes them to a Pushgateway double and checks
# this set against what arrives.
DRIFT_GAUGES = {"kfp_mlops_drift_share", "kfp_mlops_dataset_drift",
                "kfp_mlops_estimated_performance", "kfp_mlops_estimated_performance_band",
                "kfp_mlops_realized_performance", "kfp_mlops_performance_drop"}
# Series that are not ours, each with the component that exports it.
WELL_KNOWN = {"push_time_seconds": "Prometheus Pushgateway: time of the last push per group"}
# Labels Prometheus adds to every scraped series (target labels and our relabeling).
TARGET_LABELS = {"namespace", "pod", "container", "job", "instance", "endpoint", "inferenceservice"}
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
}


def _objects() -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in kustomize_lite.build(FOLDER)}


def _predictor_metrics() -> dict[str, set[str]]:
    """Exposed sample name -> label names, for every metric the predictor module defines."""
    import kfp_mlops.serving.predictor as predictor

    exported: dict[str, set[str]] = {}
    for value in vars(predictor).values():
        if isinstance(value, MetricWrapperBase):
            labels = set(value._labelnames)  # prometheus_client keeps them only here
            for family in value.describe():
                for suffix in _SAMPLE_SUFFIXES[family.type]:
                    extra = {"le"} if suffix == "_bucket" else set()
                    exported[family.name + suffix] = labels | extra
    return exported


def _rules() -> list[dict[str, Any]]:
    groups = _objects()["PrometheusRule"]["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _recorded() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def _dashboard() -> dict[str, Any]:
    return json.loads((FOLDER / "dashboards" / "kfp-mlops.json").read_text(encoding="utf-8"))


def _grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables with values PromQL accepts, to parse the query."""
    expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
    return re.sub(r"\$\{?\w+(:\w+)?\}?", ".*", expr)


def _dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(SELECTOR, label) is Grafana's; its selector is PromQL.
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
            assert inner, f"variable {variable['name']}: unexpected query {variable['query']}"
            queries.append((f"variable {variable['name']}", inner.group(1)))
    return queries


def _all_queries() -> list[tuple[str, str]]:
    rules = [(rule.get("record") or rule["alert"], str(rule["expr"])) for rule in _rules()]
    return rules + _dashboard_queries()


def selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """Return (metric name, {label: value}) for every vector selector in ``expr``."""
    found: list[tuple[str, dict[str, str]]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {m.name: m.value for m in node.matchers.matchers}
            name = node.name or matchers.pop("__name__", "")
            found.append((name, matchers))
        return True

    promql_parser.walk(promql_parser.parse(_grafana_to_promql(expr)), pre_visit=visit)
    return found


def unknown_metrics(expr: str, known: set[str]) -> set[str]:
    """Metric names in ``expr`` that are not in ``known``."""
    return {name for name, _ in selectors(expr)} - known


def _known_metrics() -> set[str]:
    return set(_predictor_metrics()) | _recorded() | DRIFT_GAUGES | set(WELL_KNOWN)


# ---------------------------------------------------------------- structure


def test_kustomization_builds_the_three_objects():
    assert sorted(_objects()) == ["ConfigMap", "PodMonitor", "PrometheusRule"]


@pytest.mark.parametrize("kind", ["PodMonitor", "PrometheusRule"])
def test_prometheus_operator_objects_match_the_crd_fields(kind):
    validate_crd_object(_objects()[kind])


@pytest.mark.parametrize("kind", ["PodMonitor", "PrometheusRule", "ServiceMonitor"])
def test_the_upstream_prometheus_operator_crds_are_the_schemas(kind):
    assert is_crd_kind({"apiVersion": "monitoring.coreos.com/v1", "kind": kind})


@pytest.mark.parametrize(
    ("kind", "path", "bad"),
    [
        ("PodMonitor", ["spec", "podMetricsEndpoints", 0], {"prot": "http1"}),
        ("PodMonitor", ["spec", "podMetricsEndpoints", 0], {"interval": "30 seconds"}),
        ("PrometheusRule", ["spec", "groups", 1, "rules", 0], {"for": "ten minutes"}),
        ("PrometheusRule", ["spec", "groups", 1, "rules", 0], {"record": "both_set"}),
        ("PrometheusRule", ["spec", "groups", 0], {"rules_": []}),
        ("PrometheusRule", ["spec", "groups", 0, "rules", 0], {"for": "5m"}),
        ("PrometheusRule", ["spec", "groups", 0], {"partial_response_strategy": "maybe"}),
    ],
)
def test_schemas_reject_typos_and_bad_values(kind, path, bad):
    obj = copy.deepcopy(_objects()[kind])
    node = obj
    for key in path:
        node = node[key]
    node.update(bad)
    with pytest.raises(K8sValidationError):
        validate_crd_object(obj)


def test_dashboard_configmap_is_valid_and_carries_the_json_file():
    configmap = _objects()["ConfigMap"]
    validate_standard_object(configmap)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["kfp-mlops.json"]) == _dashboard()
    assert (FOLDER / "grafana-dashboard.yaml").read_text(encoding="utf-8") == (
        dashboard_sync.render()
    ), "grafana-dashboard.yaml is stale: run python tests/monitoring/dashboard_sync.py"


def test_dashboard_has_the_promised_panels():
    titles = " | ".join(p["title"] for p in _dashboard()["panels"]).lower()
    for words in ("request rate by outcome", "latency p50 / p99", "predicted class share",
                  "regression prediction", "drifted features", "estimated performance",
                  "performance drop"):
        assert words in titles
    ids = [p["id"] for p in _dashboard()["panels"]]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------- scraping


def _predictor_pod_labels() -> dict[str, str]:
    """The labels KServe puts on a predictor pod of manifests/base's InferenceService."""
    isvc = yaml.safe_load(ISVC.read_text(encoding="utf-8"))
    runtime = yaml.safe_load(RUNTIME.read_text(encoding="utf-8"))
    return {
        **runtime["spec"].get("labels", {}),  # ServingRuntime spec.labels reach the pod
        **isvc["metadata"].get("labels", {}),  # so do the InferenceService's own labels
        **isvc["spec"]["predictor"].get("labels", {}),
        "serving.kserve.io/inferenceservice": isvc["metadata"]["name"],
        "component": "predictor",
    }


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, op = expression["key"], expression["operator"]
        if (op == "Exists") != (key in labels) and op in ("Exists", "DoesNotExist"):
            return False
        if op == "In" and labels.get(key) not in expression["values"]:
            return False
        if op == "NotIn" and labels.get(key) in expression["values"]:
            return False
    return True


def test_pod_monitor_selects_the_suites_predictor_pods_only():
    selector = _objects()["PodMonitor"]["spec"]["selector"]
    pod = _predictor_pod_labels()
    assert _selects(selector, pod)
    transformer = {**pod, "component": "transformer"}
    other_isvc = {"serving.kserve.io/inferenceservice": "someone-else", "component": "predictor"}
    not_kserve = {k: v for k, v in pod.items() if k != "serving.kserve.io/inferenceservice"}
    assert not _selects(selector, transformer)
    assert not _selects(selector, other_isvc)
    assert not _selects(selector, not_kserve)


def test_pod_monitor_scrapes_the_runtimes_metrics_port_and_path():
    runtime = yaml.safe_load(RUNTIME.read_text(encoding="utf-8"))
    annotations = runtime["spec"]["annotations"]
    [container] = runtime["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    [endpoint] = _objects()["PodMonitor"]["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in ports
    assert str(ports[endpoint["port"]]) == annotations["prometheus.kserve.io/port"]
    assert endpoint["path"] == annotations["prometheus.kserve.io/path"]


# ---------------------------------------------------------------- PromQL


def test_predictor_metrics_are_read_from_the_real_module():
    exported = _predictor_metrics()
    # The names every rule below leans on; if the predictor renames one, this fails first.
    for name in ("kfp_mlops_requests_total", "kfp_mlops_request_duration_seconds_bucket",
                 "kfp_mlops_predicted_class_total", "kfp_mlops_prediction_value_sum"):
        assert name in exported, f"{name} is no longer exported by kfp_mlops.serving.predictor"


@pytest.mark.parametrize(("where", "expr"), _all_queries(), ids=lambda x: x[:60])
def test_every_expression_parses_and_uses_known_metrics(where, expr):
    unknown = unknown_metrics(expr, _known_metrics())
    assert not unknown, (
        f"{where} uses {sorted(unknown)}, which neither kfp_mlops.serving.predictor exports, "
        "nor a recording rule defines, nor the drift gauges or WELL_KNOWN list"
    )


@pytest.mark.parametrize(("where", "expr"), _all_queries(), ids=lambda x: x[:60])
def test_label_matchers_on_predictor_metrics_use_their_labels(where, expr):
    metrics = _predictor_metrics()
    for name, matchers in selectors(expr):
        if name in metrics:
            extra = set(matchers) - metrics[name] - TARGET_LABELS
            assert not extra, f"{where}: {name} has no label(s) {sorted(extra)}"


def test_the_checks_catch_typos():
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(kfp_mlops_requests_total[5m])")
    assert unknown_metrics("rate(kfp_mlops_request_total[5m])", _known_metrics()) == {
        "kfp_mlops_request_total"
    }
    assert unknown_metrics('{__name__="kfp_mlops_nope"}', _known_metrics()) == {"kfp_mlops_nope"}


def test_every_recording_rule_is_used_and_every_used_one_is_recorded():
    used = {name for _, expr in _all_queries() for name, _ in selectors(expr) if ":" in name}
    assert used <= _recorded(), f"used but not recorded: {sorted(used - _recorded())}"
    assert _recorded() <= used, f"recorded but never used: {sorted(_recorded() - used)}"


def test_alerts_cover_errors_latency_prediction_shift_and_drift():
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    exprs = " ".join(str(rule["expr"]) for rule in alerts.values())
    for needle in ("kfp_mlops:error_ratio:rate5m", "kfp_mlops:request_duration_seconds:p99_5m",
                   "kfp_mlops:predicted_class_share:avg7d", "kfp_mlops:prediction_mean:avg7d",
                   "kfp_mlops_drift_share", "kfp_mlops_dataset_drift",
                   "kfp_mlops_performance_drop"):
        assert needle in exprs
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
