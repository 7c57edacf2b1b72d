"""Sharded data: list a prefix of Parquet files into shards, scan them apart, merge.

On a cluster ``scan-shard`` runs once per shard under ``dsl.ParallelFor`` (a pod each),
writing its partial to the store's fan-in prefix, and ``merge-scans`` reads them there;
a local run (kfp.local starts one task at a time) uses ``scan-shards``, which runs
every shard in a process pool and merges in the same task.
``plan-shards`` also feeds sharded batch scoring (``components/serving/score_shards.py``).

``plan-shards`` returns the shard indices as its one output: kfp.local 2.17 only loops
over a task's single output named ``Output``.
"""

from typing import List  # noqa: UP035 (as the KFP docs write it)

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def plan_shards(
    source: str,
    plan: Output[Artifact],
    shard_rows: int = 5_000_000,
) -> List[int]:  # noqa: UP006
    """List a folder, glob or S3 prefix of Parquet files into shards of bounded rows.

    Args:
        source: A local folder or glob, or ``s3://bucket/prefix/``, of Parquet files
            (hive ``key=value`` folders become string columns).
        plan: The shard plan (JSON, ``kfp_mlops.data.shards.ShardPlan``) the shard tasks read.
        shard_rows: Most rows in one shard (whole row groups; a bigger row group is a
            shard of its own). The default is ``DEFAULT_SHARD_ROWS``.

    Returns:
        The shard indices, ``0..n-1``, to fan out over with ``dsl.ParallelFor`` (one
        output: kfp.local iterates over a task's single ``Output`` only). The plan's
        metadata holds the rows, files and shards.
    """
    import logging
    from pathlib import Path

    from kfp_mlops.data.shards import describe
    from kfp_mlops.data.shards import plan_shards as plan_source

    log = logging.getLogger("kfp_mlops.components.data.plan_shards")
    planned = plan_source(source, shard_rows=shard_rows)
    Path(plan.path).write_text(planned.to_json())
    summary = describe(planned)
    plan.metadata.update(summary)
    log.info("%s: %d rows in %d files -> %d shards of at most %d rows", source,
             planned.rows, planned.files, len(planned.shards), shard_rows)
    return [s.index for s in planned.shards]


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def scan_shard(plan: Input[Artifact], shard: int, store: str, run_id: str):
    """Scan one shard into a partial (statistics, sketches, sample, row hashes) in the store.

    The partial goes to the store's fan-in prefix for this run
    (``fan-in/RUN_ID/scan-shard/shard-NNNNN``), where ``merge-scans`` reads it: KFP
    before 2.14 cannot pass a loop's outputs to a later task (``kfp_mlops.fanin``).

    Args:
        plan: From ``plan-shards``.
        shard: The shard's index.
        store: Store URI holding the fan-in prefix.
        run_id: The run's id (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``), naming the prefix.
    """
    import logging
    import tempfile

    from kfp_mlops.data.shard_stats import scan_shard as scan
    from kfp_mlops.data.shards import ShardPlan
    from kfp_mlops.fanin import put_folder

    log = logging.getLogger("kfp_mlops.components.data.scan_shard")
    with open(plan.path) as handle:
        made = ShardPlan.from_json(handle.read())
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-shard-") as tmp:
        summary = scan(made, shard, tmp)
        where = put_folder(store, run_id, "scan-shard", f"shard-{shard:05d}", tmp)
    log.info("shard %d -> %s: %s", shard, where, summary)


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def merge_scans(
    plan: Input[Artifact],
    store: str,
    run_id: str,
    statistics: Output[Artifact],
    scan: Output[Artifact],
    sample: Output[Dataset],
):
    """Merge the shards' partial scans: the statistics one scan of the whole gives.

    Reads every shard's partial from the store's fan-in prefix (a missing one fails the
    task and is named), then deletes them: they are the size of a shard's sample and
    row hashes, and the merged artifacts hold what later tasks read.

    Args:
        plan: From ``plan-shards``.
        store: Store URI holding the fan-in prefix ``scan-shard`` wrote.
        run_id: The run's id (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``), as ``scan-shard`` got it.
        statistics: JSON, as ``compute-statistics`` writes it.
        scan: The statistics and the drift samples, for ``detect-drift-sharded``.
        sample: The rows the sample kept (about 100,000), as Parquet.
    """
    import tempfile

    from kfp_mlops.data.shard_stats import finish_merge
    from kfp_mlops.data.shards import ShardPlan
    from kfp_mlops.fanin import drop_folders, fetch_folders

    with open(plan.path) as handle:
        made = ShardPlan.from_json(handle.read())
    names = [f"shard-{s.index:05d}" for s in made.shards]
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-partials-") as tmp:
        folders = fetch_folders(store, run_id, "scan-shard", names, tmp)
        summary = finish_merge(made, [str(f) for f in folders], statistics.path, scan.path,
                               sample.path)
    statistics.metadata.update(summary)
    drop_folders(store, run_id, "scan-shard", names)


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def scan_shards(
    plan: Input[Artifact],
    statistics: Output[Artifact],
    scan: Output[Artifact],
    sample: Output[Dataset],
    workers: int = 0,
):
    """Scan every shard in a process pool, then merge: the local shape of the fan-out.

    Args:
        plan: From ``plan-shards``.
        statistics: JSON, as ``compute-statistics`` writes it.
        scan: The statistics and the drift samples, for ``detect-drift-sharded``.
        sample: The rows the sample kept (about 100,000), as Parquet.
        workers: Processes; 0 is one per usable core.
    """
    import logging
    import tempfile

    from kfp_mlops.data.shard_stats import finish_merge, scan_all_shards
    from kfp_mlops.data.shards import ShardPlan

    log = logging.getLogger("kfp_mlops.components.data.scan_shards")
    with open(plan.path) as handle:
        made = ShardPlan.from_json(handle.read())
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-shards-") as tmp:
        folders = scan_all_shards(
            made, tmp, workers=workers,
            on_done=lambda s: log.info("shard %d: %d rows", s["index"], s["rows"]))
        summary = finish_merge(made, folders, statistics.path, scan.path, sample.path)
    statistics.metadata.update(summary)
