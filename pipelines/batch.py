"""The batch inference pipeline: a registry version or stage plus a dataset -> predictions.

Two shapes. The default scores one file (CSV or Parquet) in one ``batch-predict`` task.
The sharded shape (``sharded=True``; ``batch-inference-sharded`` in ``kfp-mlops compile``, and what
``kfp-mlops score`` runs when the data is a folder or prefix) scores a prefix of Parquet
files: ``plan-shards`` -> ``prepare-scoring`` (pins the model version, checks the schema
once, uncommits the output) -> the shards -> ``collect-predictions`` (checks each part's
rows, writes ``_SUCCESS``). The shards run as ``pods`` (``dsl.ParallelFor`` over
``score-shard``, ``parallelism`` at once, in a nested pipeline that the commit follows:
a cluster) or a ``pool`` (one ``score-shards``
task with a process pool: kfp.local, which runs one task at a time). The shape is
chosen at compile time because the two pipelines take different parameters (a file vs
a prefix and an output prefix) and the cluster form must show its fan-out in the IR.
"""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from typing import List  # noqa: UP035 (KFP reads the nested pipeline's annotations)

from kfp import dsl
from kfp.dsl import Artifact, Input

from kfp_mlops.components.data import plan_shards
from kfp_mlops.components.serving import (
    batch_predict,
    collect_predictions,
    prepare_scoring,
    score_shard,
    score_shards,
)
from kfp_mlops.data.shards import DEFAULT_SHARD_ROWS
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
    on_cluster,
)

PIPELINE_NAME = "kfp-mlops-batch-inference"
SHARDED_PIPELINE_NAME = "kfp-mlops-batch-inference-sharded"
# How the shards run: "pods" (dsl.ParallelFor, one score-shard task each) or "pool".
SHARD_SHAPES = ("pods", "pool")
DEFAULT_PARALLELISM = 8


def build_batch_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None,
    sharded: bool = False, shards_as: str | None = None,
    parallelism: int = DEFAULT_PARALLELISM,
):
    """Build the batch inference pipeline; ``cluster`` adds S3 credentials.

    ``sharded`` builds the shape for a prefix of Parquet files (see the module
    docstring); ``shards_as`` is ``pods`` or ``pool`` (default: ``pods`` for a cluster,
    ``pool`` otherwise) and ``parallelism`` how many shard pods run at once.
    """
    if sharded:
        return _build_sharded(cluster, settings, shards_as, parallelism)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Score a CSV/Parquet dataset with a registry model, streaming row groups.",
    )
    def batch_inference_pipeline(
        data: str,
        model: str,
        store: str = DEFAULT_CLUSTER_STORE,
        with_probabilities: bool = False,
        keep_columns: str = "",
        ignore_unknown_columns: bool = False,
    ):
        """Score data with a registry model.

        Args:
            data: CSV or Parquet URI to score (s3://bucket/key or a path in the image).
            model: Registry reference: NAME, NAME@VERSION or NAME@STAGE (e.g. penguins@production).
            store: Store URI holding the registry and receiving the predictions.
            with_probabilities: Add a proba_<class> column per class (classifiers).
            keep_columns: Input columns to copy beside the predictions, comma-separated (ids).
            ignore_unknown_columns: Ignore input columns that are neither features, the
                target, columns training dropped nor keep_columns (default: refuse them).
        """
        on_cluster(
            batch_predict(
                store=store, model=model, data=data, with_probabilities=with_probabilities,
                keep_columns=keep_columns, ignore_unknown_columns=ignore_unknown_columns,
            ),
            cluster,
        )
        finish_tasks(settings, cluster)

    return batch_inference_pipeline


SCORE_LOOP_NAME = "score-loop"


def _score_loop(settings: TaskSettings | None, cluster: ClusterConfig | None,
                parallelism: int):
    """The shard scorings as a pipeline of their own: one DAG task that the commit follows.

    Each ``score-shard`` writes its part to the output prefix, which is the fan-in:
    ``collect-predictions`` runs ``.after()`` this DAG task and lists the prefix. No
    ``dsl.Collected``, which KFP resolves only from 2.14.0 (docs/cluster.md).
    """

    @dsl.pipeline(name=SCORE_LOOP_NAME)
    def score_loop(
        job: Input[Artifact], plan: Input[Artifact], shards: List[int], store: str,  # noqa: UP006
        with_probabilities: bool, keep_columns: str, ignore_unknown_columns: bool,
    ):
        """Score every shard, one score-shard task each.

        Args:
            job: prepare-scoring's job (the pinned version and the output).
            plan: plan-shards' plan.
            shards: plan-shards' shard indices.
            store: Store URI holding the registry.
            with_probabilities: Add a proba_<class> column per class.
            keep_columns: Input columns to copy beside the predictions.
            ignore_unknown_columns: Ignore input columns outside the input contract.
        """
        with dsl.ParallelFor(shards, parallelism=parallelism) as shard:
            on_cluster(
                score_shard(store=store, job=job, plan=plan, shard=shard,
                            with_probabilities=with_probabilities, keep_columns=keep_columns,
                            ignore_unknown_columns=ignore_unknown_columns),
                cluster,
            )
        finish_tasks(settings, cluster)

    return score_loop


def _build_sharded(cluster: ClusterConfig | None, settings: TaskSettings | None,
                   shards_as: str | None, parallelism: int):
    shards_as = shards_as or ("pods" if cluster is not None else "pool")
    if shards_as not in SHARD_SHAPES:
        raise ValueError(f"shards_as is {shards_as!r}; use one of {', '.join(SHARD_SHAPES)}")
    if parallelism < 1:
        raise ValueError(f"parallelism is {parallelism}; give at least 1 shard pod at once")
    score_loop = _score_loop(settings, cluster, parallelism) if shards_as == "pods" else None

    @dsl.pipeline(
        name=SHARDED_PIPELINE_NAME,
        description="Score a prefix of Parquet files shard by shard with a registry model; "
        "one part file per shard, _SUCCESS written last.",
    )
    def sharded_batch_inference_pipeline(
        data: str,
        model: str,
        store: str = DEFAULT_CLUSTER_STORE,
        output: str = "",
        shard_rows: int = DEFAULT_SHARD_ROWS,
        with_probabilities: bool = False,
        keep_columns: str = "",
        ignore_unknown_columns: bool = False,
        workers: int = 0,
    ):
        """Score a sharded Parquet dataset with a registry model.

        Args:
            data: A folder, glob or s3://bucket/prefix/ of Parquet files (hive key=value
                folders become string columns).
            model: Registry reference: NAME, NAME@VERSION or NAME@STAGE; pinned to one
                version before the first shard.
            store: Store URI holding the registry.
            output: Folder or s3://bucket/prefix/ for part-NNNNN.parquet and _SUCCESS
                (default: STORE/predictions/RUN).
            shard_rows: Most rows in one shard (whole row groups).
            with_probabilities: Add a proba_<class> column per class (classifiers).
            keep_columns: Input columns to copy beside the predictions, comma-separated
                (ids, partition keys).
            ignore_unknown_columns: Ignore input columns that are neither features, the
                target, columns training dropped nor keep_columns (default: refuse them).
            workers: Processes of the local pool (0: every usable core); pods ignore it.
        """
        planned = on_cluster(plan_shards(source=data, shard_rows=shard_rows), cluster)
        plan = planned.outputs["plan"]
        options = {"with_probabilities": with_probabilities, "keep_columns": keep_columns,
                   "ignore_unknown_columns": ignore_unknown_columns}
        prepared = on_cluster(
            prepare_scoring(store=store, model=model, plan=plan, output=output,
                            run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, **options),
            cluster,
        )
        pinned, target = prepared.outputs["model"], prepared.outputs["output"]
        if shards_as == "pool":
            scored = on_cluster(
                score_shards(store=store, model=pinned, plan=plan, output=target,
                             workers=workers, **options),
                cluster,
            )
            results = scored.output
        else:
            scored = score_loop(
                job=prepared.outputs["job"], plan=plan, shards=planned.outputs["Output"],
                store=store, **options,
            )
            results = []  # the commit lists the output prefix the shards wrote
        collected = collect_predictions(plan=plan, output=target, model=pinned, results=results)
        if shards_as == "pods":
            collected.after(scored)
        on_cluster(collected, cluster)
        finish_tasks(settings, cluster)

    return sharded_batch_inference_pipeline


# `batch_inference_pipeline` is what `kfp dsl compile --py pipelines/batch.py` finds: the cluster
# form, as `kfp-mlops compile` writes it with its defaults.
__getattr__, __dir__ = module_pipeline(
    "batch_inference_pipeline", build_batch_pipeline, globals()
)
