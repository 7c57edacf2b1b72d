"""The real server under hostile and careless clients: 4xx for every client mistake,
one log line per rejection, a body size limit, probes answered while a large request
is scored, and no stall when the log sink stops reading."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kfp_mlops.model.package import read_metadata
from kfp_mlops.serving.payloads import encode_v1
from kfp_mlops.serving.process import free_port, running_server
from tests.serving.gated_model import GATE_ENV, GatedRegressor
from tests.serving.serving_models import write_regressor

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]  # so the server can import tests.serving.gated_model
ROW = ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "male", 2007]
NAMES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"]
HUGE = "1" * 400  # a 400-digit integer: beyond int64 and float range


def v1_text(value: str) -> str:
    return '{"instances": [["Torgersen", ' + value + ', 18.7, 181.0, 3750.0, "male", 2007]]}'


def v2_columns(value: str) -> str:
    inputs = []
    for name, v in zip(NAMES, ROW, strict=True):
        if name == "bill_length_mm":
            inputs.append('{"name": "bill_length_mm", "shape": [1], "datatype": "FP64", "data": [' + value + "]}")
        else:
            inputs.append(json.dumps({"name": name, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}))
    return '{"parameters": {"content_type": "pd"}, "inputs": [' + ", ".join(inputs) + "]}"


CLIENT_MISTAKES = [
    # (protocol, content type, body, words the answer must contain)
    ("v1", "text/plain", v1_text(HUGE), "JSON"),  # was HTTP 500 OverflowError
    ("v1", "application/json", v1_text(HUGE), "infinity"),
    ("v2", "application/json", v2_columns(HUGE), "bill_length_mm"),  # was HTTP 500
    ("v1", "text/plain", v1_text("-" + HUGE), "JSON"),
    ("v1", "text/plain", "[" * 100_000, "depth"),  # was HTTP 500 RecursionError
    ("v1", "application/json", "[" * 100_000, "depth"),
    ("v2", "application/json", "[" * 100_000, "pars"),
    ("v1", "text/plain", "NaN", "JSON"),
    ("v1", "text/plain", b"\xff\xfe{", "JSON"),
    ("v2", "text/plain", v2_columns("1"), "header"),
]


@pytest.fixture(scope="module")
def limited_server(classifier_dir):
    """The classifier behind a 1 MiB body limit set through the environment."""
    with running_server(classifier_dir, "penguins", env={"KFP_MLOPS_MAX_BODY_SIZE": "1MiB"}) as server:
        yield server


def url(server, protocol: str) -> str:
    if protocol == "v1":
        return f"{server.base_url}/v1/models/penguins:predict"
    return f"{server.base_url}/v2/models/penguins/infer"


@pytest.mark.parametrize(("protocol", "content_type", "body", "says"), CLIENT_MISTAKES)
def test_client_mistakes_are_4xx_without_traceback(limited_server, protocol, content_type, body, says):
    response = httpx.post(
        url(limited_server, protocol), content=body, headers={"content-type": content_type}, timeout=30
    )
    assert 400 <= response.status_code < 500, response.text
    assert says.lower() in response.json()["error"].lower(), response.text
    # The connection and the server are fine: the next request is served.
    good = httpx.post(url(limited_server, "v1"), json={"instances": [ROW]}, timeout=30)
    assert good.status_code == 200


def test_bodies_over_the_limit_are_413_declared_or_chunked(limited_server):
    big = b" " * (2 << 20)

    def chunks():
        for _ in range(32):
            yield b" " * 65536

    with httpx.Client(timeout=30) as client:
        for protocol in ("v1", "v2"):
            declared = client.post(url(limited_server, protocol), content=big,
                                   headers={"content-type": "application/json"})
            chunked = client.post(url(limited_server, protocol), content=chunks(),
                                  headers={"content-type": "application/json"})
            for response in (declared, chunked):
                assert response.status_code == 413, response.text
                assert "1 MiB" in response.json()["error"]
                assert "KFP_MLOPS_MAX_BODY_SIZE" in response.json()["error"]
        # Just under the limit is read and judged on its content.
        under = client.post(url(limited_server, "v1"), content=b" " * ((1 << 20) - 100) + b"{}",
                            headers={"content-type": "application/json"})
        assert under.status_code == 400 and "instances" in under.json()["error"]
        metrics = client.get(f"{limited_server.base_url}/metrics").text
    assert 'kfp_mlops_rejected_requests_total{model="penguins",protocol="v1",status="413"}' in metrics


def test_one_log_line_per_rejection_and_no_traceback(limited_server):
    marker = f"beak_colour_{time.monotonic_ns()}"
    with httpx.Client(timeout=30) as client:
        for _ in range(3):
            response = client.post(
                url(limited_server, "v1"),
                json={"instances": [{**dict(zip(NAMES, ROW, strict=True)), marker: 1}]},
            )
            assert response.status_code == 400
        client.post(f"{limited_server.base_url}/v1/models/nope:predict", json={"instances": [ROW]})
        metrics = client.get(f"{limited_server.base_url}/metrics").text
    deadline = time.monotonic() + 10  # the log is written by a background thread
    while limited_server.log_tail(10**6).count(marker) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    log = limited_server.log_tail(10**6)
    lines = [line for line in log.splitlines() if marker in line]
    assert len(lines) == 3, lines
    assert all("rejected POST /v1/models/penguins:predict: 400" in line for line in lines)
    assert "rejected POST /v1/models/nope:predict: 404" in log
    assert "Traceback" not in log
    assert 'kfp_mlops_rejected_requests_total{model="penguins",protocol="v1",status="400"}' in metrics
    assert 'kfp_mlops_rejected_requests_total{model="unknown",protocol="v1",status="404"}' in metrics


def test_health_is_answered_while_a_large_request_is_scored(tmp_path, diabetes_rows):
    """Ordering, not wall time: the probes are answered while predict is known to run."""
    folder = write_regressor(tmp_path / "gated", GatedRegressor())
    gate = tmp_path / "gate"
    gate.mkdir()
    rows = diabetes_rows.sample(40_000, replace=True, random_state=0)
    big = encode_v1(rows, read_metadata(folder).features)
    env = {"PYTHONPATH": str(ROOT), GATE_ENV: str(gate)}
    order: list[str] = []
    result: dict[str, httpx.Response] = {}
    with running_server(folder, "diabetes", env=env) as server:
        def send_big() -> None:
            result["big"] = httpx.post(f"{server.base_url}/v1/models/diabetes:predict", json=big, timeout=120)
            order.append("big answered")

        sender = threading.Thread(target=send_big)
        sender.start()
        deadline = time.monotonic() + 60
        while not (gate / "started").exists():
            assert time.monotonic() < deadline and sender.is_alive(), "predict never started"
            time.sleep(0.01)
        with httpx.Client(timeout=30) as client:
            for probe in ("/v2/health/live", "/v2/health/ready", "/v2/models/diabetes/ready"):
                assert client.get(server.base_url + probe).status_code == 200
                order.append(probe)
        (gate / "release").touch()
        sender.join(120)
    assert order == ["/v2/health/live", "/v2/health/ready", "/v2/models/diabetes/ready", "big answered"]
    assert result["big"].status_code == 200
    assert len(result["big"].json()["predictions"]) == 40_000


def test_a_log_sink_that_stops_reading_does_not_stall_the_server(classifier_dir):
    """stdout and stderr are a pipe nobody reads: once it is full, a server that logs
    from the event loop would hang on its next log line."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kfp_mlops.serving", "--model_dir", str(classifier_dir),
         "--model_name", "penguins", "--http_port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=10) as client:
            while True:
                assert process.poll() is None and time.monotonic() < deadline, "server did not start"
                try:
                    if client.get(f"{base}/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            # ~600 rejections log ~250 KB (access line + reason line each): far past
            # the 64 KiB a pipe holds.
            bad = {"instances": [ROW[:3]], "pad": "x" * 200}
            for i in range(600):
                if i % 20 == 0:
                    assert client.post(f"{base}/v1/models/penguins:predict", json={"instances": [ROW]}).status_code == 200
                assert client.post(f"{base}/v1/models/penguins:predict", json=bad).status_code == 400
            assert client.get(f"{base}/v2/health/live").status_code == 200
    finally:
        process.kill()
        process.wait(30)
