from typing import List  # noqa: UP035 (as the KFP docs write it)

from kfp import dsl
from kfp.dsl import Artifact, Output

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


COMPONENTS = [plan_shards]
