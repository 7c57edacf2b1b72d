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

    from kfp_mlops.data import steps
    from kfp_mlops.data.shards import describe

    log = logging.getLogger("kfp_mlops.components.data.plan_shards")
    planned = steps.plan_shards(source, plan.path, shard_rows)
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

    from kfp_mlops.data import steps

    log = logging.getLogger("kfp_mlops.components.data.scan_shard")
    summary, where = steps.scan_shard(plan.path, shard, store, run_id)
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
    from kfp_mlops.data import steps

    summary = steps.merge_scans(plan.path, store, run_id, statistics.path, scan.path,
                                sample.path)
    statistics.metadata.update(summary)


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

    from kfp_mlops.data import steps

    log = logging.getLogger("kfp_mlops.components.data.scan_shards")
    summary = steps.scan_shards(
        plan.path, statistics.path, scan.path, sample.path, workers=workers,
        on_done=lambda s: log.info("shard %d: %d rows", s["index"], s["rows"]))
    statistics.metadata.update(summary)
