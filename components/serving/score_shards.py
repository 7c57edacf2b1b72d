from typing import List, NamedTuple  # noqa: UP035 (as the KFP docs write it)

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def prepare_scoring(
    store: str,
    model: str,
    plan: Input[Artifact],
    job: Output[Artifact],
    output: str = "",
    run_id: str = "",
    with_probabilities: bool = False,
    keep_columns: str = "",
    ignore_unknown_columns: bool = False,
) -> NamedTuple("ScoringPrepared", [("model", str), ("output", str)]):
    """Before the shards: pin the model version, check the data's schema, uncommit the output.

    Args:
        store: Store URI holding the registry.
        model: ``NAME``, ``NAME@VERSION`` or ``NAME@STAGE``.
        plan: ``plan-shards``' plan.
        job: The pinned version and the output (JSON) for the ``score-shard`` tasks:
            an artifact, as kfp.local hands a loop body an upstream task's artifacts
            but not its output parameters.
        output: Folder or ``s3://bucket/prefix/`` for the part files; empty:
            ``STORE/predictions/RUN_ID``.
        run_id: The run's name (for the default output).
        with_probabilities: Add a ``proba_<class>`` column per class.
        keep_columns: Comma-separated input columns to copy into the output (ids).
        ignore_unknown_columns: Ignore input columns outside the input contract.

    Returns:
        model: ``NAME@VERSION``, which every shard scores with;
        output: the output folder or prefix.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.serving import steps
    from kfp_mlops.serving.sharded import ScoringOptions

    log = logging.getLogger("kfp_mlops.components.serving.prepare_scoring")
    prepared = steps.prepare_scoring(
        store, model, plan.path, job.path, output, run_id, ScoringOptions.from_parameters(
            keep_columns, with_probabilities=with_probabilities,
            ignore_unknown_columns=ignore_unknown_columns))
    job.metadata.update({"model": prepared.model, "output": prepared.output})
    log.info("%s (%s) fits %s; predictions -> %s", prepared.model, model, prepared.source,
             prepared.output)
    return namedtuple("ScoringPrepared", ["model", "output"])(prepared.model, prepared.output)


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def score_shard(
    store: str,
    job: Input[Artifact],
    plan: Input[Artifact],
    shard: int,
    with_probabilities: bool = False,
    keep_columns: str = "",
    ignore_unknown_columns: bool = False,
) -> str:
    """Score one shard into ``OUTPUT/part-NNNNN.parquet``, replacing it (a retry adds no rows).

    Args:
        store: Store URI holding the registry.
        job: ``prepare-scoring``'s job: the pinned ``NAME@VERSION`` and the output.
        plan: ``plan-shards``' plan.
        shard: The shard's index (a ``dsl.ParallelFor`` item).
        with_probabilities: Add a ``proba_<class>`` column per class.
        keep_columns: Comma-separated input columns to copy into the output (ids).
        ignore_unknown_columns: Ignore input columns outside the input contract.

    Returns:
        What was written, as JSON: shard, rows, part, seconds.
    """
    import logging

    from kfp_mlops.serving import steps
    from kfp_mlops.serving.sharded import ScoringOptions

    log = logging.getLogger("kfp_mlops.components.serving.score_shard")
    result = steps.score_shard(store, job.path, plan.path, shard, ScoringOptions.from_parameters(
        keep_columns, with_probabilities=with_probabilities,
        ignore_unknown_columns=ignore_unknown_columns))
    log.info("shard %d: %d rows in %.1f s -> %s", shard, result.rows, result.seconds,
             result.part)
    return result.to_json()


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def score_shards(
    store: str,
    model: str,
    plan: Input[Artifact],
    output: str,
    with_probabilities: bool = False,
    keep_columns: str = "",
    ignore_unknown_columns: bool = False,
    workers: int = 0,
) -> List[str]:  # noqa: UP006
    """Score every shard in one task over a process pool (what a local run uses).

    kfp.local runs one task at a time, so a ``dsl.ParallelFor`` of ``score-shard`` tasks
    would score the shards one after another, each paying a process start and a model
    download; here the model is fetched once and forked workers share it.

    Args:
        store: Store URI holding the registry.
        model: ``NAME@VERSION`` (``prepare-scoring``'s pinned version).
        plan: ``plan-shards``' plan.
        output: ``prepare-scoring``'s output folder or prefix.
        with_probabilities: Add a ``proba_<class>`` column per class.
        keep_columns: Comma-separated input columns to copy into the output (ids).
        ignore_unknown_columns: Ignore input columns outside the input contract.
        workers: Processes; 0 is every usable core (at most one per shard).

    Returns:
        One JSON result per shard, as ``score-shard`` returns it, in shard order.
    """
    import logging

    from kfp_mlops.serving import steps
    from kfp_mlops.serving.sharded import ScoringOptions

    log = logging.getLogger("kfp_mlops.components.serving.score_shards")

    def progress(result, done, total):
        # One line per shard; the CLI shows these as progress (app/console.py).
        log.info("shard %d/%d scored: %d rows in %.1f s -> %s", done, total,
                 result.rows, result.seconds, result.part)

    results = steps.score_shards(store, model, plan.path, output, ScoringOptions.from_parameters(
        keep_columns, with_probabilities=with_probabilities,
        ignore_unknown_columns=ignore_unknown_columns), workers=workers, on_shard=progress)
    return [r.to_json() for r in results]


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def collect_predictions(
    plan: Input[Artifact],
    output: str,
    model: str,
    results: List[str],  # noqa: UP006
    manifest: Output[Artifact],
) -> int:
    """Commit: check every part's rows against the plan, then write ``OUTPUT/_SUCCESS``.

    The parts themselves are the fan-in: each shard wrote ``part-NNNNN.parquet`` to the
    output prefix, and the commit lists the prefix and checks every part the plan names.
    So on a cluster, where the shards are a loop of ``score-shard`` pods whose outputs
    KFP before 2.14 cannot pass on, ``results`` is empty and nothing but the timing
    summary is lost.

    Args:
        plan: ``plan-shards``' plan.
        output: The output folder or prefix the shards wrote.
        model: ``NAME@VERSION`` the shards scored with (recorded in the manifest).
        results: ``score-shards``' list (local runs), for the timing summary; empty on
            a cluster.
        manifest: The committed manifest (JSON, as in ``_SUCCESS``).

    Returns:
        The number of rows scored.
    """
    import logging

    from kfp_mlops.serving import steps

    log = logging.getLogger("kfp_mlops.components.serving.collect_predictions")
    result = steps.collect_predictions(plan.path, output, model, results, manifest.path)
    manifest.metadata.update({"output": result.output, "rows": result.rows,
                              "shards": result.shards, "model": result.model})
    log.info(result.describe())
    return result.rows


COMPONENTS = [prepare_scoring, score_shard, score_shards, collect_predictions]
