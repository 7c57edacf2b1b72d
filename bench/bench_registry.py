"""Registry listing at scale: 1,000 versions of one model on a local store.

Publishes N versions (a tiny real scikit-learn model, through ``Registry.publish``, with
a few stage transitions), then times ``list_versions`` on a fresh ``Registry`` (cold:
reads every metadata, record and history file) and on a reused one (warm: published
files are immutable and cached), side by side with the floor: a plain loop that only
``json.load``s every ``metadata.json``. Prints medians of several runs, the ratio to
the floor, and peak memory.

    .venv/bin/python bench/bench_registry.py [--versions 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from kfp_mlops.model.package import Feature, ModelMetadata, read_metadata, write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import LocalStore


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = load_iris(as_frame=True)
        model = DecisionTreeClassifier(max_depth=2).fit(data.data, data.target)
        folder = Path(tmp) / "model"
        write_model_folder(
            model,
            ModelMetadata(
                task="classification", target="target", estimator="DecisionTreeClassifier",
                features=[Feature(c, "float64", "numeric") for c in data.data.columns],
                metrics={"accuracy": 0.95},
            ),
            folder,
        )
        store = LocalStore(Path(tmp) / "store")
        registry = Registry(store)
        start = time.perf_counter()
        for i in range(args.versions):
            registry.publish("bench", folder, read_metadata(folder), blessed=True, actor="bench")
            if i % 100 == 99:  # some history to replay, as a real registry has
                registry.transition("bench", i + 1, "production", reason="bench", actor="bench")
        publish_s = time.perf_counter() - start

        def cold() -> object:
            return Registry(store).list_versions("bench")

        warm_registry = Registry(store)
        warm_registry.list_versions("bench")
        model_root = store.root / "models" / "bench"

        def floor() -> object:
            return [
                json.loads((model_root / str(v) / "metadata.json").read_text())
                for v in range(1, args.versions + 1)
            ]

        versions = cold()
        assert len(versions) == args.versions  # type: ignore[arg-type]
        floor_s = median_seconds(floor, args.repeats)
        cold_s = median_seconds(cold, args.repeats)
        warm_s = median_seconds(lambda: warm_registry.list_versions("bench"), args.repeats)
        get_s = median_seconds(lambda: Registry(store).get("bench@production"), args.repeats)
        print(f"versions: {args.versions}, history records: {len(registry.history('bench'))}")
        print(f"publish (through Registry.publish): {publish_s / args.versions * 1e3:.1f} ms each")
        print(f"floor: json.load every metadata.json    {floor_s * 1e3:8.1f} ms")
        print(
            f"list_versions, fresh Registry (cold)   {cold_s * 1e3:8.1f} ms"
            f"  ({cold_s / floor_s:.1f}x floor)"
        )
        print(
            f"list_versions, reused Registry (warm)  {warm_s * 1e3:8.1f} ms"
            f"  ({warm_s / floor_s:.1f}x floor)"
        )
        print(f"get NAME@production, fresh Registry    {get_s * 1e3:8.1f} ms")
        print(f"peak Python memory, cold list_versions {peak_mib(cold):8.1f} MiB")


if __name__ == "__main__":
    main()
