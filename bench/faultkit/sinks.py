"""The prediction log sink as a process, the events KServe's agent sends it, and a registry.

:class:`SinkProcess` runs ``python -m kfp_mlops.live.log_sink`` on 127.0.0.1 with the
environment of the test (so ``AWS_ENDPOINT_URL`` can point at the fault proxy).
:func:`agent_event` builds one inference logger CloudEvent with the CNCF SDK as KServe's
agent sends it; :func:`raw_post` sends bytes as they are (headers no HTTP client would
write: ``Content-Length: abc``). :func:`publish_contract_model` publishes a model whose
input contract mixes a float, an integer and a categorical feature.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from kfp_mlops.live.logged import VERSION_ANNOTATION
from kfp_mlops.live.prediction_log import REQUEST_TYPE, RESPONSE_TYPE
from kfp_mlops.model.package import Feature, ModelMetadata, write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.serving.process import free_port
from kfp_mlops.storage import Store

MODEL = "loans"
FEATURES = [Feature("income", "float64", "numeric"), Feature("age", "int64", "numeric"),
            Feature("region", "object", "categorical")]


def publish_contract_model(store: Store, root: Path) -> None:
    """``loans`` version 1 in production: income float, age int, region string."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0.0, 1, 0]], ["yes"])
    metadata = ModelMetadata(task="classification", target="approved", features=FEATURES,
                             estimator="DummyClassifier", classes=["no", "yes"],
                             metrics={"accuracy": 1.0})
    folder = root / "loans-model"
    write_model_folder(model, metadata, folder)
    Registry(store).publish(MODEL, folder, metadata, blessed=True, stage="production",
                            reason="test", actor="test")


def valid_body(i: int) -> bytes:
    return json.dumps({"instances": [{"income": 1000.0 + i, "age": 30 + i % 40,
                                      "region": f"r{i % 3}", "client_key": f"k{i}"}]}).encode()


def agent_event(kind: str, event_id: str, body: bytes, when: datetime | None = None, *,
                model: str = MODEL, version: str = "1",
                structured: bool = False) -> tuple[dict[str, str], bytes]:
    """One logger event as KServe's agent sends it (binary mode unless ``structured``)."""
    when = when or datetime.now(timezone.utc)
    attributes = {
        "id": event_id, "type": kind, "source": f"{model}-predictor-7d9f-abcde",
        "specversion": "1.0", "time": when.isoformat().replace("+00:00", "Z"),
        "inferenceservicename": model, "namespace": "ns", "component": "predictor",
        "endpoint": "default", "metadata": "{}",
        "annotations": json.dumps({VERSION_ANNOTATION: version}),
        "datacontenttype": "application/json",
    }
    event = CloudEvent(attributes, body)
    if structured:
        headers, data = to_structured(event, data_marshaller=lambda b: b.decode(errors="replace"))
    else:
        headers, data = to_binary(event, data_marshaller=lambda b: b)
    return dict(headers), data


def pair(i: int, prefix: str = "req") -> list[tuple[dict[str, str], bytes]]:
    """The request and response events of valid request ``i``."""
    rid = f"{prefix}-{i:05d}"
    return [agent_event(REQUEST_TYPE, rid, valid_body(i)),
            agent_event(RESPONSE_TYPE, rid, json.dumps({"predictions": ["yes"]}).encode())]


def raw_post(port: int, head: bytes, body: bytes = b"", timeout: float = 10.0) -> int | None:
    """Send ``head`` (request line and headers, no blank line) and ``body``; the status.

    None when the connection closed with no answer (what the issue saw: never again).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(head + b"\r\n\r\n" + body)
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


class SinkProcess:
    """``python -m kfp_mlops.live.log_sink`` as its own process on 127.0.0.1."""

    def __init__(self, store: str, spool: Path, *extra: str, replica: str = "sink-0"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "kfp_mlops.live.log_sink", "--store", store,
                     "--spool-dir", str(spool), "--host", "127.0.0.1", "--port",
                     str(self.port), "--replica-id", replica, *extra]
        self.log = spool.parent / f"sink-{replica}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> SinkProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                            env=dict(os.environ))
        start = time.monotonic()
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/livez", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() - start < 60, self.log.read_text()
            time.sleep(0.05)

    def post(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return httpx.post(self.url, headers=headers, content=body, timeout=30)

    def health(self) -> int:
        return httpx.get(f"{self.url}/healthz", timeout=5).status_code

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(f"kfp_mlops_log_sink_{name}"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def peak_rss_mib(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 90) -> None:
        assert self.process is not None
        self.process.terminate()
        assert self.process.wait(timeout=timeout) == 0, self.log.read_text()


def send_until_accepted(sink: SinkProcess, headers: dict[str, str], body: bytes,
                        deadline_s: float = 120) -> str:
    """At-least-once delivery: retry a 503 or a dropped connection until 200."""
    start = time.monotonic()
    while True:
        try:
            answer = sink.post(headers, body)
            if answer.status_code == 200:
                return answer.text.strip()
            assert answer.status_code == 503, (answer.status_code, answer.text)
            assert answer.headers.get("retry-after"), "a 503 without Retry-After"
        except httpx.TransportError:
            pass
        assert time.monotonic() - start < deadline_s, "the sink never accepted the event"
        time.sleep(0.1)


def rows_in(root: Path, model: str = MODEL) -> pd.DataFrame:
    """Every logged row of ``model`` under a local store folder (not the dead letters)."""
    files = sorted((root / "predictions" / model).rglob("part-*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def rows_in_store(store: Store, prefix: str) -> pd.DataFrame:
    """Every Parquet file's rows below ``prefix`` of any store."""
    import tempfile

    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, key in enumerate(store.list(prefix)):
            if key.endswith(".parquet"):
                path = Path(tmp) / f"{i}.parquet"
                store.download_file(key, path)
                frames.append(pq.read_table(path).to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
