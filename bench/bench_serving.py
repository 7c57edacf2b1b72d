"""Benchmark serving: the suite's predictor vs a bare ``kserve.Model`` on the same server.

Both run in the same ``ModelServer`` (``kfp_mlops.serving.server.start_model_server``,
one process each, 127.0.0.1, free ports). The bare model does
``pd.DataFrame(instances, columns=features)`` then ``model.predict``: no schema
checks, no metrics. The client sends sequential V1 requests over one keep-alive
connection (single-row and 100-row), interleaving the two servers, ``--repeats`` rounds
of ``--requests`` each; medians of per-round requests/s and p50/p99 latency are printed,
with the ratio ours/bare. Our V2 (pandas columns) is measured too, for reference.

Mixed traffic (``--only mixed``, or after the above): one server of ours, its log
written to a pipe this script drains (as a container runtime does), ``--threads``
clients each on its own keep-alive connection. Phases alternate ``--repeats`` times:
valid requests only, then the same valid requests with ``--invalid`` (30 %) client
mistakes mixed in (schema errors, malformed and huge-integer JSON, unknown model,
V2 errors, bodies over the limit). Printed side by side: p50/p99 of the *valid*
requests in each phase, the ratio of the p99s (target <= 1.5x), statuses seen (any 5xx
is a bug), log bytes per request, and the slowest ``/v2/health/live`` answered during
the mixed phases (a probe thread asks every 100 ms).

Throughput prints, per row count, the issue's two figures: requests/s ours/bare
(target >= 0.95) and p50 ours - bare (target <= +0.3 ms), with the per-round ratios and
the server processes' CPU microseconds per request (from /proc: less exposed to a
shared machine's load than wall time); then the median of the per-round ratios and p50
differences with a distribution-free 95 % interval. Many short rounds (``--requests 120
--repeats 81 --skip-v2``) pair the sides closer in time than a few long ones;
``--restart-every 10`` starts a fresh pair of server processes every 10 rounds, so the
interval also covers how two processes of the same server differ (a few % here).
``--control`` puts the bare server on both sides: how far two identical servers differ.

Load-robust views (CPU time, not wall time), for a shared machine:
``--only costs`` times each check of our predictor next to the bare model's steps,
in-process, interleaved (the table in docs/performance.md); ``--only in-process`` drives
the whole app (our middleware, KServe's routing and JSON, the model) in-process for
each side, alternating child processes, and prints CPU per request.

Usage: ``python bench/bench_serving.py`` (quick: ``--requests 200 --repeats 2``;
one part: ``--only throughput|mixed|costs|in-process``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_batch import build_model  # noqa: E402


def bare_model(model_dir: str | Path) -> Any:
    """A loaded bare ``kserve.Model``: the DataFrame KServe's docs build, then predict."""
    import kserve
    import pandas as pd

    from kfp_mlops.model.package import load_model_folder

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
    return model


def run_bare_server(model_dir: str, port: int) -> None:
    """Serve ``model_dir`` with a bare kserve.Model (child process entry point)."""
    from kfp_mlops.serving.server import start_model_server

    start_model_server([bare_model(model_dir)], http_port=port, host="127.0.0.1",
                       request_metrics=False)


def run_in_process(kind: str, model_dir: str, size: int, calls: int, rounds: int) -> None:
    """Child: the whole app (middleware, KServe's routing, the model) driven in-process.

    Built as ``start_model_server`` builds it, minus uvicorn's socket (the same for
    both sides); prints the median process CPU microseconds per 200 answer.
    """
    import asyncio
    import json

    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer
    from palmerpenguins import load_penguins

    from kfp_mlops.model.package import read_metadata
    from kfp_mlops.serving import server
    from kfp_mlops.serving.payloads import encode_v1
    from kfp_mlops.serving.predictor import SklearnFolderModel

    if kind == "ours":
        model = SklearnFolderModel("penguins", model_dir)
        model.load()
    else:
        model = bare_model(model_dir)
    ms = kserve.ModelServer(http_port=0, enable_grpc=False, workers=1,
                            enable_latency_logging=False, grace_period=5)
    ms._register_and_check_atleast_one_model_is_ready([model])
    RESTServer(FASTAPI_APP_IMPORT_STRING, ms.dataplane, ms.model_repository_extension, 0,
               workers=1).create_application()
    for exc_class, handler in server._quiet_handlers().items():
        app.add_exception_handler(exc_class, handler)
    server._install_app_hooks(["penguins"], kind == "ours", server.max_body_bytes())
    server._configure_logging(False)  # as start_model_server: no per-request trace lines
    rows = load_penguins().drop(columns=["species"]).dropna().reset_index(drop=True)
    features = read_metadata(Path(model_dir)).features
    body = json.dumps(encode_v1(rows.head(size), features)).encode()
    path = "/v1/models/penguins:predict"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}  # fmt: skip

    async def one() -> None:
        delivered = False
        statuses = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.sleep(3600)  # the client never disconnects
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(scope), receive, send)
        assert statuses == [200], statuses

    async def measure() -> list[float]:
        for _ in range(30):
            await one()
        seen = []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(calls):
                await one()
            seen.append((time.process_time() - started) / calls * 1e6)
        return seen

    print(statistics.median(asyncio.run(measure())))


def in_process(model_dir: Path, args: Any) -> None:
    """Ours vs bare through the whole app in-process, sides alternating; print CPU/request."""
    import os

    seen: dict[tuple[str, int], list[float]] = {}
    for repeat in range(args.repeats):
        for size in (1, 100):
            kinds = ["ours", "bare"] if repeat % 2 == 0 else ["bare", "ours"]
            for kind in kinds:
                done = subprocess.run(
                    [sys.executable, __file__, "--in-process", kind, str(model_dir),
                     "--rows", str(size), "--cost-calls", str(args.cost_calls),
                     "--cost-rounds", str(args.cost_rounds)],
                    capture_output=True, text=True, check=True,
                )
                seen.setdefault((kind, size), []).append(float(done.stdout.split()[-1]))
    print(f"\nwhole app in-process (middleware, KServe routing and encoding, model), process "
          f"CPU us per 200 answer, median of {args.repeats} runs per side, sides alternating; "
          f"load average {os.getloadavg()[0]:.2f}")
    for size in (1, 100):
        ours = statistics.median(seen[("ours", size)])
        bare = statistics.median(seen[("bare", size)])
        print(f"{size}-row V1: ours {ours:.0f} us, bare {bare:.0f} us, ours/bare "
              f"{ours / bare:.3f}x, ours - bare {ours - bare:+.0f} us")


def start(
    kind: str, model_dir: Path, log: int | None = subprocess.DEVNULL
) -> tuple[subprocess.Popen[bytes], str]:
    from kfp_mlops.serving.process import free_port

    port = free_port()
    if kind == "ours":
        command = [
            sys.executable, "-m", "kfp_mlops.serving", "--model_dir", str(model_dir),
            "--model_name", "penguins", "--http_port", str(port), "--host", "127.0.0.1",
        ]  # fmt: skip
    else:
        command = [sys.executable, __file__, "--bare-server", str(model_dir), "--port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, all its threads (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_trip(
    client: httpx.Client, url: str, body: dict, n: int, pid: int | None = None
) -> tuple[float, list[float], float]:
    """Requests/s, latencies and the server's CPU microseconds per request (0 if no pid)."""
    import json

    content = json.dumps(body).encode()  # encoded once: the client's own cost stays out
    headers = {"content-type": "application/json"}
    latencies = []
    cpu = cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.post(url, content=content, headers=headers)
        latencies.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
    elapsed = time.perf_counter() - started
    cpu_us = (cpu_seconds(pid) - cpu) / n * 1e6 if pid else 0.0
    return n / elapsed, latencies, cpu_us


ROW = ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "male", 2007]
NAMES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
         "sex", "year"]


def invalid_requests(base: str) -> list[tuple[str, bytes, str]]:
    """(url, body, content type) of client mistakes, each answered with a 4xx."""
    import json

    v1 = f"{base}/v1/models/penguins:predict"
    v2 = f"{base}/v2/models/penguins/infer"
    huge = "1" * 400
    row = dict(zip(NAMES, ROW, strict=True))
    cases = [
        (v1, {"instances": [ROW[:4]]}),  # row length
        (v1, {"instances": [[*ROW[:2], "deep", *ROW[3:]]]}),  # wrong type
        (v1, {"instances": [{**row, "beak_colour": "red"}]}),  # unknown field
        (v1, {"instances": [ROW], "return_probability": True}),  # misspelt option
        (v2, {"inputs": "island"}),  # V2 schema
        (v2, {"parameters": {"content_type": "pd"},
              "inputs": [{"name": "island", "shape": [1], "datatype": "FP64", "data": [1.0]}]}),
        (f"{base}/v1/models/nope:predict", {"instances": [ROW]}),  # unknown model
    ]
    out = [(url, json.dumps(body).encode(), "application/json") for url, body in cases]
    huge_row = ('{"instances": [["Torgersen", ' + huge + ', 18.7, 181.0, 3750.0, "male", 2007]]}')
    out += [
        (v1, b'{"instances": [["Torgersen", 39.1', "application/json"),  # truncated JSON
        (v1, huge_row.encode(), "text/plain"),  # was HTTP 500 (OverflowError)
        (v1, huge_row.encode(), "application/json"),
        (v1, b" " * (17 << 20), "application/json"),  # over the 16 MiB default: 413
    ]
    return out


def mixed_traffic(model_dir: Path, features, rows, args) -> None:
    """Valid-only vs mixed phases against one server; print the side-by-side table."""
    from kfp_mlops.serving.payloads import encode_v1

    process, base = start("ours", model_dir, log=subprocess.PIPE)
    logged = [0]

    def drain() -> None:  # the container runtime's side of the log pipe
        assert process.stdout is not None
        while chunk := process.stdout.read1(65536):
            logged[0] += len(chunk)

    threading.Thread(target=drain, daemon=True).start()
    valid_body = encode_v1(rows.head(args.rows), features)
    bad = invalid_requests(base)
    predict = f"{base}/v1/models/penguins:predict"
    latencies: dict[str, list[float]] = {"valid only": [], "mixed": []}
    statuses: dict[str, dict[int, int]] = {"valid only": {}, "mixed": {}}
    counts = {"valid only": 0, "mixed": 0}
    log_bytes = {"valid only": 0, "mixed": 0}
    probe_worst = [0.0]
    lock = threading.Lock()

    def client(phase: str, seed: int, stop: float) -> None:
        rng = random.Random(seed)
        done = 0
        with httpx.Client(timeout=60.0) as http:
            while done < args.mixed_requests and time.monotonic() < stop:
                done += 1
                latency = None
                try:
                    if phase == "mixed" and rng.random() < args.invalid:
                        url, body, ctype = rng.choice(bad)
                        status = http.post(
                            url, content=body, headers={"content-type": ctype}
                        ).status_code
                    else:
                        t0 = time.perf_counter()
                        status = http.post(predict, json=valid_body).status_code
                        latency = time.perf_counter() - t0
                except httpx.TransportError:  # e.g. the server closed the connection
                    status = 0
                with lock:
                    codes = statuses[phase]
                    codes[status] = codes.get(status, 0) + 1
                    counts[phase] += 1
                    if latency is not None:
                        latencies[phase].append(latency)

    def probe(until: threading.Event) -> None:
        with httpx.Client(timeout=60.0) as http:
            while not until.is_set():
                t0 = time.perf_counter()
                http.get(f"{base}/v2/health/live")
                probe_worst[0] = max(probe_worst[0], time.perf_counter() - t0)
                until.wait(0.1)

    try:
        with httpx.Client(timeout=60.0) as http:
            for _ in range(20):  # warm-up
                http.post(predict, json=valid_body)
        for round_no in range(args.repeats):
            for phase in ("valid only", "mixed"):
                before = logged[0]
                stop_probe = threading.Event()
                prober = threading.Thread(target=probe, args=(stop_probe,))
                if phase == "mixed":
                    prober.start()
                stop = time.monotonic() + args.phase_seconds
                clients = [threading.Thread(target=client, args=(phase, 1000 * round_no + i, stop))
                           for i in range(args.threads)]
                for t in clients:
                    t.start()
                for t in clients:
                    t.join()
                stop_probe.set()
                if phase == "mixed":
                    prober.join()
                time.sleep(0.3)  # let the log writer catch up before counting
                log_bytes[phase] += logged[0] - before
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(f"\nmixed traffic: {args.threads} client threads, {args.invalid:.0%} invalid in the "
          f"mixed phase, {args.rows}-row valid V1 requests, {args.repeats} rounds")
    print(f"{'phase':11} {'valid req':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'log B/req':>9}  statuses")
    p99 = {}
    for phase in ("valid only", "mixed"):
        lat = np.asarray(latencies[phase]) * 1000
        p50, p99[phase] = np.percentile(lat, [50, 99])
        per_request = log_bytes[phase] / max(1, counts[phase])
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(statuses[phase].items()))
        print(f"{phase:11} {len(lat):9d} {p50:8.1f} {p99[phase]:8.1f} {lat.max():8.1f} "
              f"{per_request:9.0f}  {codes}")
    ratio = p99["mixed"] / p99["valid only"]
    verdict = "within" if ratio <= 1.5 else "NOT within"
    print(f"p99 of valid requests, mixed / valid only: {ratio:.2f}x ({verdict} the 1.5x target)")
    print(f"slowest /v2/health/live during the mixed phases: {probe_worst[0] * 1000:.1f} ms")
    server_errors = sum(v for k, v in statuses["mixed"].items() if k >= 500)
    dropped = sum(statuses[phase].get(0, 0) for phase in statuses)
    print(f"5xx answers: {server_errors}; connection errors (status 0): {dropped}")


def per_request(cases: dict[str, Any], calls: int, rounds: int) -> dict[str, float]:
    """Median CPU microseconds per call of each case, the cases interleaved round by round.

    CPU time of this thread (``time.thread_time``), so waiting for a core on a shared
    machine is not counted; interleaving spreads the load's drift over every case.
    """
    seen: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            started = time.thread_time()
            for _ in range(calls):
                fn()
            seen[name].append((time.thread_time() - started) / calls * 1e6)
    return {name: statistics.median(values) for name, values in seen.items()}


def hop_cost(calls: int) -> float:
    """CPU microseconds (all threads) of one ``run_in_executor`` round trip of a no-op."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def hops() -> float:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1) as pool:
            for _ in range(50):
                await loop.run_in_executor(pool, int)
            started = time.process_time()
            for _ in range(calls):
                await loop.run_in_executor(pool, int)
            return (time.process_time() - started) / calls * 1e6

    return asyncio.run(hops())


def cost_cases(ours: Any, features: Any, chunk: Any) -> dict[str, Any]:
    """Each check of ``ours`` (a loaded SklearnFolderModel) on ``chunk``, and the bare side."""
    import pandas as pd

    from kfp_mlops.serving import decoding
    from kfp_mlops.serving.payloads import encode_v1
    from kfp_mlops.serving.predictor import REQUEST_LATENCY, REQUESTS, ROWS

    names = [f.name for f in features]
    model = ours.model
    body = encode_v1(chunk, features)
    records = encode_v1(chunk, features, records=True)["instances"]
    instances = body["instances"]
    columns = decoding._columns_from_rows(names, instances)
    data = {f.name: decoding.coerce_column(f, columns[f.name], lambda i: "") for f in features}
    frame = pd.DataFrame(data)
    scored = ours.score(frame)
    bare_frame = pd.DataFrame(instances, columns=names)

    def bare_predict() -> Any:
        frame = pd.DataFrame(body["instances"], columns=names)
        return {"predictions": model.predict(frame).tolist()}

    def middleware_metrics() -> None:
        REQUEST_LATENCY.labels("penguins", "v1").observe(0.004)
        REQUESTS.labels("penguins", "v1", "success").inc()

    def predictor_metrics() -> None:
        ours._observe(scored.predictions)
        ROWS.labels("penguins", "v1").inc(len(chunk))

    return {
        "contract: body fields, row shape (V1 rows)": lambda: decoding._columns_from_rows(
            names, instances),
        "contract: record keys (V1 records)": lambda: decoding._columns_from_records(
            ours.contract, records),
        "types: check and convert every value": lambda: [
            decoding.coerce_column(f, columns[f.name], lambda i: "") for f in features],
        "frame: ours, DataFrame from typed arrays": lambda: pd.DataFrame(data),
        "frame: bare, DataFrame(instances, columns)": lambda: pd.DataFrame(
            instances, columns=names),
        "metrics: predictor (rows, predicted class)": predictor_metrics,
        "metrics: middleware (latency, outcome)": middleware_metrics,
        "response: ours (numpy -> JSON-ready)": lambda: ours._v1_response(scored),
        "response: bare (.tolist())": lambda: {"predictions": scored.predictions.tolist()},
        "model.predict (ours' frame)": lambda: model.predict(frame),
        "model.predict (bare's frame)": lambda: model.predict(bare_frame),
        "whole predict: ours (predict_sync)": lambda: ours.predict_sync(body),
        "whole predict: bare": bare_predict,
    }  # fmt: skip


def check_costs(model_dir: Path, features, rows, args) -> None:
    """Print what each check of our predictor costs per request, next to the bare model's.

    In-process, the same functions the server runs, on the same V1 bodies the
    throughput part sends (rows in feature order).
    """
    import os

    from kfp_mlops.serving.predictor import SklearnFolderModel

    ours = SklearnFolderModel("penguins", model_dir)
    ours.load()
    table: dict[str, dict[int, float]] = {}
    for size in (1, 100):
        cases = cost_cases(ours, features, rows.head(size))
        for name, cost in per_request(cases, args.cost_calls, args.cost_rounds).items():
            table.setdefault(name, {})[size] = cost
    hop = hop_cost(max(200, args.cost_calls * 10))
    print(f"\nper-request cost, CPU us (median of {args.cost_rounds} interleaved rounds of "
          f"{args.cost_calls} calls, this thread); load average {os.getloadavg()[0]:.2f}")
    print(f"| {'check':45} | {'1 row':>8} | {'100 rows':>8} |")
    print(f"|{'-' * 47}|{'-' * 10}|{'-' * 10}|")
    for name, by_size in table.items():
        print(f"| {name:45} | {by_size[1]:8.1f} | {by_size[100]:8.1f} |")
    print(f"| {'thread hop (requests not answered inline)':45} | {hop:8.1f} | {hop:8.1f} |")
    print("| logging: a valid request writes no record     |      0.0 |      0.0 |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["throughput", "mixed", "costs", "in-process"],
                        help="run one part only")
    parser.add_argument("--cost-calls", type=int, default=100,
                        help="costs: calls per case per round")
    parser.add_argument("--cost-rounds", type=int, default=15, help="costs: rounds")
    parser.add_argument("--threads", type=int, default=6, help="mixed: client threads")
    parser.add_argument("--invalid", type=float, default=0.3, help="mixed: invalid share")
    parser.add_argument("--mixed-requests", type=int, default=150,
                        help="mixed: requests per client thread per phase")
    parser.add_argument("--phase-seconds", type=float, default=60.0,
                        help="mixed: a phase stops after this long even if not done")
    parser.add_argument("--rows", type=int, default=10, help="mixed: rows per valid request")
    parser.add_argument("--skip-v2", action="store_true",
                        help="throughput: leave out our V2 side (measured for reference)")
    parser.add_argument("--control", action="store_true",
                        help="throughput: the bare server on both sides (an A/A run); "
                        "the side called ours is then a second bare server")
    parser.add_argument("--restart-every", type=int, default=10**9, metavar="N",
                        help="throughput: a fresh pair of server processes every N rounds "
                        "(two processes of the same server differ by a few %% here: with "
                        "several pairs the interval covers that too)")
    parser.add_argument("--bare-server")
    parser.add_argument("--in-process", nargs=2, metavar=("KIND", "MODEL_DIR"))
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.bare_server:
        run_bare_server(args.bare_server, args.port)
        return
    if args.in_process:
        run_in_process(*args.in_process, args.rows, args.cost_calls, args.cost_rounds)
        return

    from palmerpenguins import load_penguins

    from kfp_mlops.model.package import read_metadata
    from kfp_mlops.serving.payloads import encode_v1, encode_v2

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        model_dir = Path(tmp) / "model"
        build_model(model_dir)
        features = read_metadata(model_dir).features
        rows = load_penguins().drop(columns=["species"]).dropna().reset_index(drop=True)
        if args.only in (None, "costs"):
            check_costs(model_dir, features, rows, args)
        if args.only in (None, "in-process"):
            in_process(model_dir, args)
        if args.only in (None, "mixed"):
            mixed_traffic(model_dir, features, rows, args)
        if args.only in ("mixed", "costs", "in-process"):
            return
        # --control: an A/A run, the bare server on both sides, to see how far two identical
        # servers differ here (what a difference between ours and bare must exceed).
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            results: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
            with httpx.Client(timeout=30.0) as client:
                for repeat in range(args.repeats):
                    if repeat % args.restart_every == 0:  # a fresh pair of server processes
                        stop_servers(servers)
                        servers = {kind: start("bare" if args.control else kind, model_dir)
                                   for kind in ("ours", "bare")}
                    for size in (1, 100):
                        chunk = rows.head(size)
                        cases = [
                            (("ours", "v1"), encode_v1(chunk, features)),
                            (("bare", "v1"), encode_v1(chunk, features)),
                        ]
                        if repeat % 2:  # alternate who goes first: no order bias
                            cases.reverse()
                        if not args.skip_v2:
                            cases.append((("ours", "v2"), encode_v2(chunk, features)))
                        for (kind, protocol), body in cases:
                            process, base = servers[kind]
                            url = (f"{base}/v1/models/penguins:predict" if protocol == "v1"
                                   else f"{base}/v2/models/penguins/infer")  # fmt: skip
                            round_trip(client, url, body, 20)  # warm-up
                            rps, lat, cpu = round_trip(client, url, body, args.requests,
                                                       process.pid)
                            p50, p99 = np.percentile(lat, [50, 99]) * 1000
                            results.setdefault((f"{kind} {protocol}", str(size)), []).append(
                                (rps, p50, p99, cpu)
                            )
        finally:
            stop_servers(servers)
        report_throughput(results, args)


def stop_servers(servers: dict[str, tuple[subprocess.Popen[bytes], str]]) -> None:
    for process, _url in servers.values():
        process.terminate()
        process.wait(timeout=30)


def report_throughput(
    results: dict[tuple[str, str], list[tuple[float, float, float, float]]], args: Any
) -> None:
    """Print medians per server and size, then the issue's ratios (ours/bare)."""
    import os

    med = statistics.median
    print(f"\nrequests/round={args.requests} repeats={args.repeats} (sequential, 1 client, "
          f"sides interleaved); load average {os.getloadavg()[0]:.2f} at the end")
    pairs = -(-args.repeats // args.restart_every)
    print(f"{pairs} pair(s) of server processes, {min(args.repeats, args.restart_every)} "
          "rounds each at most")
    if args.control:
        print("control run (--control): the side called ours is a second bare server")
    print(f"{'server':10} {'rows':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'server CPU us/req':>18}")
    summary: dict[tuple[str, str], tuple[float, float, float]] = {}
    for (name, size), runs in results.items():
        rps, p50, cpu = med(r[0] for r in runs), med(r[1] for r in runs), med(r[3] for r in runs)
        summary[(name, size)] = (rps, p50, cpu)
        print(f"{name:10} {size:>4} {rps:8.0f} {p50:8.2f} {med(r[2] for r in runs):8.2f} "
              f"{cpu:18.0f}")  # fmt: skip
    for size in ("1", "100"):
        ours, bare = summary[("ours v1", size)], summary[("bare v1", size)]
        # Per-round ratios too: a round's two sides ran back to back, so their ratio
        # is less exposed to the load changing between rounds than the medians are.
        pairs = list(zip(results[("ours v1", size)], results[("bare v1", size)], strict=True))
        per_round = [o[0] / b[0] for o, b in pairs]
        print(f"{size}-row V1: throughput ours/bare {ours[0] / bare[0]:.3f}x (target >= 0.95; "
              f"per round {', '.join(f'{r:.3f}' for r in per_round)}); "
              f"p50 ours - bare {ours[1] - bare[1]:+.2f} ms (target <= +0.30); "
              f"server CPU ours - bare {ours[2] - bare[2]:+.0f} us/request")
        ratio, low, high = median_interval(per_round)
        gap, gap_low, gap_high = median_interval([o[1] - b[1] for o, b in pairs])
        print(f"  round by round: median ratio {ratio:.3f}x, 95 % interval {low:.3f}-{high:.3f}; "
              f"median p50 difference {gap:+.2f} ms, 95 % interval {gap_low:+.2f} to "
              f"{gap_high:+.2f}")


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """The median of ``values`` and a distribution-free interval for it.

    The interval runs between order statistics chosen from the binomial distribution
    (the sign test): it holds the true median with at least ``confidence`` whatever the
    rounds' distribution, so a wide one says the rounds disagree and more are needed.
    With fewer than 6 values no such interval exists at 95 %: the extremes are given.
    """
    from math import comb

    ordered, n = sorted(values), len(values)
    k, tail = 0, 0.0  # the largest k with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2
    while k < n // 2:
        tail += comb(n, k) / 2**n
        if tail > (1 - confidence) / 2:
            break
        k += 1
    low, high = (ordered[k - 1], ordered[n - k]) if k else (ordered[0], ordered[-1])
    return statistics.median(ordered), low, high


if __name__ == "__main__":
    main()
