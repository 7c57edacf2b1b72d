"""What each data component calls: one function per component, named after it.

``components/data/*.py``'s component ``X`` calls :func:`X` here with the artifacts' paths
and its parameters; the component only adds KFP's metadata and outputs. ``check-data``
and ``validate-data`` ask the model registry (the registry name, the production model's
target), which sits above data: their steps are in :mod:`kfp_mlops.model.steps`.
Each step imports what it uses inside it: a task imports only its own step's libraries.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kfp_mlops.data.ingest import IngestResult
    from kfp_mlops.data.shards import ShardPlan
    from kfp_mlops.data.stats import DatasetStatistics


def ingest(source: str, dataset_path: str | Path, store_uri: str | None) -> IngestResult:
    """Stream ``source`` into Parquet at ``dataset_path``; with a store, a dataset version."""
    from kfp_mlops.data.ingest import ingest_to_parquet

    return ingest_to_parquet(source, dataset_path, store_uri)


def compute_statistics(dataset_path: str | Path, statistics_path: str | Path
                       ) -> DatasetStatistics:
    """Per-column statistics of the Parquet file, written as JSON to ``statistics_path``."""
    from kfp_mlops.data import stats

    found = stats.compute_statistics(dataset_path)
    Path(statistics_path).write_text(found.to_json())
    return found


def split_data(dataset_path: str | Path, train_path: str | Path, test_path: str | Path,
               target: str, task: str, test_size: float = 0.2, seed: int = 42
               ) -> tuple[int, int]:
    """Seeded train/test split (stratified for classification): the rows of each side."""
    from kfp_mlops.data.split import split_file

    return split_file(dataset_path, train_path, test_path, target, task, test_size, seed)


def plan_shards(source: str, plan_path: str | Path, shard_rows: int) -> ShardPlan:
    """List ``source``'s Parquet files into shards of at most ``shard_rows``; write the plan."""
    from kfp_mlops.data import shards

    planned = shards.plan_shards(source, shard_rows=shard_rows)
    Path(plan_path).write_text(planned.to_json())
    return planned


def read_plan(plan_path: str | Path) -> ShardPlan:
    """The shard plan ``plan-shards`` wrote."""
    from kfp_mlops.data.shards import ShardPlan

    return ShardPlan.from_json(Path(plan_path).read_text())


def scan_shard(plan_path: str | Path, shard: int, store_uri: str, run_id: str
               ) -> tuple[dict[str, Any], str]:
    """Scan one shard into a partial and put it in the store's fan-in prefix for ``run_id``.

    Returns the scan's summary and where the partial went.
    """
    from kfp_mlops.data import shard_stats
    from kfp_mlops.fanin import put_folder

    plan = read_plan(plan_path)
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-shard-") as tmp:
        summary = shard_stats.scan_shard(plan, shard, tmp)
        where = put_folder(store_uri, run_id, "scan-shard", f"shard-{shard:05d}", tmp)
    return summary, where


def merge_scans(plan_path: str | Path, store_uri: str, run_id: str,
                statistics_path: str | Path, scan_path: str | Path,
                sample_path: str | Path) -> dict[str, Any]:
    """Merge every shard's partial from the fan-in prefix; returns the statistics' summary.

    A missing partial fails and is named; the partials are deleted after the merge.
    """
    from kfp_mlops.data.shard_stats import finish_merge
    from kfp_mlops.fanin import drop_folders, fetch_folders

    plan = read_plan(plan_path)
    names = [f"shard-{s.index:05d}" for s in plan.shards]
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-partials-") as tmp:
        folders = fetch_folders(store_uri, run_id, "scan-shard", names, tmp)
        summary = finish_merge(plan, [str(f) for f in folders], statistics_path, scan_path,
                               sample_path)
    drop_folders(store_uri, run_id, "scan-shard", names)
    return summary


def scan_shards(plan_path: str | Path, statistics_path: str | Path, scan_path: str | Path,
                sample_path: str | Path, workers: int = 0,
                on_done: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Scan every shard in a process pool, then merge (the local shape of the fan-out)."""
    from kfp_mlops.data.shard_stats import finish_merge, scan_all_shards

    plan = read_plan(plan_path)
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-shards-") as tmp:
        folders = scan_all_shards(plan, tmp, workers=workers, on_done=on_done)
        return finish_merge(plan, folders, statistics_path, scan_path, sample_path)
