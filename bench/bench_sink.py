"""Benchmark the prediction log sink: events per second into the store, and peak RSS.

For 1, 4 and 16 concurrent clients (``--clients``), a fresh sink process
(``python -m kfp_mlops.live.log_sink``, a fresh spool) on 127.0.0.1 takes ``--pairs``
request/response pairs of KServe-shaped binary CloudEvents (one row each, the typed
three-feature contract of ``bench/faultkit/sinks.py``), each client on its own keep-alive
connection. The clock runs from the first POST until the sink's ``rows_written`` counter
says every row is in the store (``--max-age 0.5``), so the figure is events through the
sink *into the store*, spool writes and Parquet uploads included. Peak RSS is the sink
process's ``VmHWM``. Each setting runs with the spool fsynced per event (the manifest's
``--fsync``) and without.

It also times the envelope parse alone: the CNCF ``cloudevents`` SDK (what the sink
uses) against a hand-written read of the ``ce-*`` headers, per event, beside the whole
HTTP round trip, to say whether the SDK is too slow.

The store is a local folder (``--store``, default a temporary one); give
``--s3`` to use moto's S3 server on loopback instead. Machines are shared: the load
average is printed before and after.

Usage: ``python bench/bench_sink.py`` (quick: ``--pairs 300 --clients 1 4``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import timeit
from contextlib import ExitStack
from pathlib import Path

import httpx
from cloudevents.http import from_http

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.faultkit.sinks import SinkProcess, pair, publish_contract_model  # noqa: E402
from kfp_mlops.live.prediction_log import parse_cloudevent  # noqa: E402
from kfp_mlops.storage import open_store  # noqa: E402


def run_once(store_uri: str, root: Path, clients: int, pairs: int, fsync: bool) -> dict:
    spool = root / f"spool-{clients}-{int(fsync)}-{time.monotonic_ns()}"
    extra = ["--max-rows", "1000", "--max-age", "0.5"] + (["--fsync"] if fsync else [])
    sink = SinkProcess(store_uri, spool, *extra, replica=f"bench-{clients}").start()
    events = [[e for i in range(c, pairs, clients) for e in pair(i, prefix=f"b{spool.name}")]
              for c in range(clients)]
    errors: list[str] = []

    def client(batch) -> None:
        with httpx.Client(timeout=60) as http:
            for headers, body in batch:
                answer = http.post(sink.url, headers=headers, content=body)
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code} {answer.text[:100]}")

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(b,)) for b in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acknowledged = time.perf_counter() - start
    while sink.metric("rows_written_total") < pairs:
        time.sleep(0.02)
        if time.perf_counter() - start > 600:
            raise RuntimeError("the sink did not write every row in 10 minutes")
    stored = time.perf_counter() - start
    rss = sink.peak_rss_mib()
    sink.stop()
    if errors:
        raise RuntimeError(f"{len(errors)} events refused: {errors[:3]}")
    return {"clients": clients, "fsync": fsync, "events": 2 * pairs,
            "ack_per_s": 2 * pairs / acknowledged, "stored_per_s": 2 * pairs / stored,
            "peak_rss_mib": rss}


def parse_timings(repeats: int) -> dict:
    headers, body = pair(1)[0]

    def by_hand() -> dict:  # what a hand-written binary-mode read would do
        lower = {k.lower(): v for k, v in headers.items()}
        attrs = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
        assert attrs["specversion"] == "1.0" and attrs["id"]
        return attrs

    def sdk_alone():
        return from_http(headers, body, data_unmarshaller=lambda raw: raw)

    def best(fn) -> float:
        return min(timeit.repeat(fn, number=repeats, repeat=5)) / repeats * 1e6

    return {"full_us": best(lambda: parse_cloudevent(headers, body)),
            "sdk_us": best(sdk_alone), "hand_us": best(by_hand)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--store", default=None)
    parser.add_argument("--s3", action="store_true", help="moto's S3 server on loopback")
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting (median)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sink-")))
        if args.s3:
            from bench.s3server import s3_server

            server = stack.enter_context(s3_server(bucket="bench-sink"))
            store_uri = server.uri("ml")
        else:
            store_uri = args.store or str(root / "store")
        publish_contract_model(open_store(store_uri), root)
        timings = parse_timings(2000)
        print(f"per event: the sink's whole parse and checks {timings['full_us']:.0f} us, of "
              f"which the cloudevents SDK's from_http {timings['sdk_us']:.0f} us; a "
              f"hand-written ce-* header read {timings['hand_us']:.1f} us")
        print(f"{'clients':>7} {'fsync':>5} {'events':>6} {'acked/s':>8} {'stored/s':>9} "
              f"{'peak RSS MiB':>12}")
        for clients in args.clients:
            for fsync in (True, False):
                runs = [run_once(store_uri, root, clients, args.pairs, fsync)
                        for _ in range(args.repeats)]
                pick = {k: statistics.median(r[k] for r in runs)
                        for k in ("ack_per_s", "stored_per_s", "peak_rss_mib")}
                print(f"{clients:>7} {str(fsync):>5} {2 * args.pairs:>6} "
                      f"{pick['ack_per_s']:>8.0f} {pick['stored_per_s']:>9.0f} "
                      f"{pick['peak_rss_mib']:>12.0f}", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
