"""The monitor's gauges, pushed to a Pushgateway double over HTTP, match what the rules read.

The double is a small HTTP server on 127.0.0.1 that answers as the Pushgateway does
(``PUT /metrics/job/<job>`` with the text exposition format, 200 on success) and
keeps the bodies; prometheus_client's ``push_to_gateway`` talks to it over the wire.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from kfp_mlops.model.estimate import CBPE, Estimate
from kfp_mlops.monitoring.decision import MonitorResult
from kfp_mlops.monitoring.gauges import push_drift_gauges
from tests.monitoring.test_monitoring import DRIFT_GAUGES


class _Gateway(BaseHTTPRequestHandler):
    bodies: list[tuple[str, str, str]] = []

    def do_PUT(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append((self.command, self.path, self.rfile.read(length).decode()))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway():
    _Gateway.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}", _Gateway.bodies
    server.shutdown()


def _samples(body: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            found.setdefault(name, []).append(line)
    return found


def test_the_estimate_its_band_the_realized_metric_and_the_drop_are_pushed(gateway):
    address, bodies = gateway
    result = MonitorResult(
        retrain=True, reason="r", drift_share=0.1, model_ref="loans@3", labelled_rows=40,
        performance={"accuracy": 0.8},
        estimate=Estimate(CBPE, 500, {"accuracy": 0.82, "roc_auc": 0.9},
                          {"accuracy": 0.03, "roc_auc": 0.02}).to_dict(),
        primary_metric="accuracy", quality_source="estimated", quality_drop=0.1)
    push_drift_gauges(address, "loans", result)
    (method, path, body), = bodies
    assert method == "PUT" and path == "/metrics/job/kfp-mlops-monitoring"
    samples = _samples(body)
    assert set(samples) == DRIFT_GAUGES  # what the rules and the dashboard may read
    assert 'kfp_mlops_estimated_performance{metric="accuracy",model="loans"} 0.82' in \
        samples["kfp_mlops_estimated_performance"]
    assert 'kfp_mlops_estimated_performance_band{metric="accuracy",model="loans"} 0.03' in \
        samples["kfp_mlops_estimated_performance_band"]
    assert samples["kfp_mlops_performance_drop"] == [
        'kfp_mlops_performance_drop{metric="accuracy",model="loans",source="estimated"} 0.1']


def test_without_an_estimate_only_the_drift_gauges_are_pushed(gateway):
    address, bodies = gateway
    push_drift_gauges(address, "loans", MonitorResult(retrain=False, reason="r"))
    assert set(_samples(bodies[0][2])) == {"kfp_mlops_drift_share", "kfp_mlops_dataset_drift"}
