"""Benchmark serving: the suite's predictor vs a bare ``kserve.Model`` on the same server.

Both run in the same ``ModelServer`` (``kfp_mlops.serving.server.start_model_server``,
one process each, 127.0.0.1, free ports). The bare model does
``pd.DataFrame(instances, columns=features)`` then ``model.predict``: no schema
checks, no metrics. The client sends sequential V1 requests over one keep-alive
connection (single-row and 100-row), interleaving the two servers, ``--repeats`` rounds
of ``--requests`` each; medians of per-round requests/s and p50/p99 latency are printed,
with the ratio ours/bare. Our V2 (pandas columns) is measured too, for reference.

Usage: ``python bench/bench_serving.py`` (quick: ``--requests 200 --repeats 2``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_batch import build_model  # noqa: E402


def run_bare_server(model_dir: str, port: int) -> None:
    """Serve ``model_dir`` with a bare kserve.Model (child process entry point)."""
    import kserve
    import pandas as pd

    from kfp_mlops.model.package import load_model_folder
    from kfp_mlops.serving.server import start_model_server

    class BareModel(kserve.Model):  # type: ignore[misc]
        def load(self) -> bool:
            self.model, meta = load_model_folder(model_dir)
            self.columns = meta.feature_names
            self.ready = True
            return True

        def predict(self, payload: Any, headers: Any = None) -> Any:
            frame = pd.DataFrame(payload["instances"], columns=self.columns)
            return {"predictions": self.model.predict(frame).tolist()}

    model = BareModel("penguins")
    model.load()
    start_model_server([model], http_port=port, host="127.0.0.1", request_metrics=False)


def start(kind: str, model_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    from kfp_mlops.serving.process import free_port

    port = free_port()
    if kind == "ours":
        command = [
            sys.executable, "-m", "kfp_mlops.serving", "--model_dir", str(model_dir),
            "--model_name", "penguins", "--http_port", str(port), "--host", "127.0.0.1",
        ]  # fmt: skip
    else:
        command = [sys.executable, __file__, "--bare-server", str(model_dir), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/models/penguins/ready").status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} server did not start")


def round_trip(client: httpx.Client, url: str, body: dict, n: int) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.post(url, json=body)
        latencies.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
    return n / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bare-server")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.bare_server:
        run_bare_server(args.bare_server, args.port)
        return

    from palmerpenguins import load_penguins

    from kfp_mlops.model.package import read_metadata
    from kfp_mlops.serving.payloads import encode_v1, encode_v2

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        model_dir = Path(tmp) / "model"
        build_model(model_dir)
        features = read_metadata(model_dir).features
        rows = load_penguins().drop(columns=["species"]).dropna().reset_index(drop=True)
        servers = {kind: start(kind, model_dir) for kind in ("ours", "bare")}
        try:
            results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
            with httpx.Client(timeout=30.0) as client:
                for _ in range(args.repeats):
                    for size in (1, 100):
                        chunk = rows.head(size)
                        cases = {
                            ("ours", "v1"): encode_v1(chunk, features),
                            ("bare", "v1"): encode_v1(chunk, features),
                            ("ours", "v2"): encode_v2(chunk, features),
                        }
                        for (kind, protocol), body in cases.items():
                            base = servers[kind][1]
                            url = (f"{base}/v1/models/penguins:predict" if protocol == "v1"
                                   else f"{base}/v2/models/penguins/infer")  # fmt: skip
                            round_trip(client, url, body, 20)  # warm-up
                            rps, lat = round_trip(client, url, body, args.requests)
                            p50, p99 = np.percentile(lat, [50, 99]) * 1000
                            results.setdefault((f"{kind} {protocol}", str(size)), []).append(
                                (rps, p50, p99)
                            )
        finally:
            for process, _url in servers.values():
                process.terminate()
                process.wait(timeout=30)
        med = statistics.median
        print(f"requests/round={args.requests} repeats={args.repeats} (sequential, 1 client)")
        print(f"{'server':10} {'rows':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        summary: dict[tuple[str, str], float] = {}
        for (name, size), runs in results.items():
            rps = med(r[0] for r in runs)
            summary[(name, size)] = rps
            print(f"{name:10} {size:>4} {rps:8.0f} {med(r[1] for r in runs):8.2f} "
                  f"{med(r[2] for r in runs):8.2f}")  # fmt: skip
        for size in ("1", "100"):
            ratio = summary[("ours v1", size)] / summary[("bare v1", size)]
            print(f"throughput ratio ours/bare, {size}-row V1 requests: {ratio:.2f}x")


if __name__ == "__main__":
    main()
