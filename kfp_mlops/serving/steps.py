"""What each serving component calls: one function per component, named after it.

``components/serving/X.py``'s component ``X`` calls :func:`X` here with the artifacts'
paths and its parameters; the component only adds KFP's metadata and outputs. Each
step imports what it uses inside it: a task imports this module, and only its own step's
libraries (``infra_validate`` starts the model server before pandas is imported).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlparse

if TYPE_CHECKING:
    from kfp_mlops.data.shards import ShardPlan
    from kfp_mlops.serving.batch import BatchResult
    from kfp_mlops.serving.infra_validation import InfraValidationResult
    from kfp_mlops.serving.release import ReleaseResult
    from kfp_mlops.serving.sharded import ScoringOptions, ShardedResult, ShardScore


class ScoringJob(NamedTuple):
    """What ``prepare_scoring`` pinned: every shard scores ``model`` into ``output``."""

    model: str  # NAME@VERSION
    output: str
    source: str  # the plan's data


def infra_validate(model_dir: str | Path, test_path: str | Path, validation_path: str | Path,
                   rows: int = 200) -> InfraValidationResult:
    """Serve the model on loopback, compare served and in-process answers; write the verdict.

    The first ``rows`` held-out rows go through V1 and V2; the verdict file is the one
    ``deploy`` re-checks.

    The server starts first: it imports KServe and loads the model (seconds) while this
    process imports pandas and scikit-learn and computes the expected answers.
    """
    from kfp_mlops.gates import write_verdict
    from kfp_mlops.serving.process import start_server

    server = start_server(model_dir, "candidate")
    try:
        from kfp_mlops.data.sources import read_head
        from kfp_mlops.serving.infra_validation import validate_serving

        result = validate_serving(model_dir, read_head(test_path, rows), server=server)
    finally:
        server.stop(graceful=False)
    write_verdict(validation_path, result.passed, result.reason)
    return result


def deploy(store_uri: str, name: str, version: int, blessing_path: str | Path,
           infra_validation_path: str | Path, *, namespace: str | None = None,
           canary_traffic_percent: int | None = None, timeout_s: int = 600,
           model_registry: str | None = None,
           serve_from_model_registry: bool = False) -> ReleaseResult:
    """Re-check both gates' verdict files (whatever the wiring), then release the version."""
    from kfp_mlops.gates import require_passed
    from kfp_mlops.serving.release import release_version

    action = f"deploy {name!r} version {version}"
    require_passed(blessing_path, "model (bless-model)", action)
    require_passed(infra_validation_path, "serving (infra-validate)", action)
    return release_version(
        store_uri, name, version, namespace=namespace,
        canary_traffic_percent=canary_traffic_percent, timeout_s=timeout_s,
        model_registry=model_registry, serve_from_model_registry=serve_from_model_registry,
    )


def batch_predict(
    store_uri: str,
    model_ref: str,
    data: str,
    output_path: str | Path,
    *,
    with_probabilities: bool = False,
    keep_columns: Sequence[str] = (),
    ignore_unknown_columns: bool | None = None,
) -> BatchResult:
    """Download ``model_ref`` (sha256-checked) and stream ``data`` through it.

    Columns follow the input contract of :func:`kfp_mlops.serving.batch.score_parquet`.
    """
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.serving.batch import score_parquet
    from kfp_mlops.storage import open_store

    registry = Registry(open_store(store_uri))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, _ = registry.download(model_ref, Path(tmp) / "model")
        source = Path(data)
        if data.startswith("s3://"):
            parsed = urlparse(data)
            source = Path(tmp) / Path(parsed.path).name
            open_store(f"s3://{parsed.netloc}").download_file(parsed.path.lstrip("/"), source)
        return score_parquet(
            model_dir, source, output_path, with_probabilities=with_probabilities,
            keep_columns=tuple(keep_columns), ignore_unknown_columns=ignore_unknown_columns,
        )


@contextmanager
def registry_model(store_uri: str, model_ref: str) -> Iterator[tuple[Path, str]]:
    """Download ``model_ref`` (sha256-checked) into a temporary folder: (folder, NAME@VERSION)."""
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.storage import open_store

    registry = Registry(open_store(store_uri))
    version = registry.get(model_ref)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, _ = registry.download(version.ref, Path(tmp) / "model")
        yield model_dir, version.ref


def read_plan(path: str | Path) -> ShardPlan:
    """The shard plan ``plan-shards`` wrote."""
    from kfp_mlops.data.shards import ShardPlan

    return ShardPlan.from_json(Path(path).read_text())


def prepare_scoring(store_uri: str, model_ref: str, plan_path: str | Path, job_path: str | Path,
                    output: str, run_id: str, options: ScoringOptions) -> ScoringJob:
    """Before a fan-out: pin the model, check the plan's schema, uncommit the output.

    Returns the job (``NAME@VERSION``, the output, the plan's source) and writes the
    version and output to ``job_path``, so every shard
    task scores with the same version even if ``model_ref`` names a stage that moves
    meanwhile. Raises ``BatchInputError`` when the data does not fit the model, before
    any shard is scored. An empty ``output`` is ``STORE/predictions/RUN_ID``.
    """
    from kfp_mlops.model.package import load_model_folder
    from kfp_mlops.serving.sharded import (
        PredictionsOutput,
        default_output,
        prepare_scorer,
        uncommit,
    )

    plan = read_plan(plan_path)
    target = output or default_output(store_uri, run_id)
    with registry_model(store_uri, model_ref) as (model_dir, pinned):
        model, metadata = load_model_folder(model_dir)
        prepare_scorer(model, metadata, plan, options)
    uncommit(PredictionsOutput(target))
    Path(job_path).write_text(json.dumps({"model": pinned, "output": target}))
    return ScoringJob(pinned, target, plan.source)


def score_shard(store_uri: str, job_path: str | Path, plan_path: str | Path, shard: int,
                options: ScoringOptions) -> ShardScore:
    """Score one shard with the version ``prepare_scoring`` pinned, into its part file."""
    from kfp_mlops.serving import sharded

    pinned = json.loads(Path(job_path).read_text())
    with registry_model(store_uri, pinned["model"]) as (model_dir, _):
        [result] = sharded.score_shards(model_dir, read_plan(plan_path), pinned["output"], options,
                              shards=[shard], workers=1)
    return result


def score_shards(store_uri: str, model_ref: str, plan_path: str | Path, output: str,
                 options: ScoringOptions, workers: int = 0,
                 on_shard: Callable[[ShardScore, int, int], None] | None = None,
                 ) -> list[ShardScore]:
    """Score every shard in one process pool: the model fetched once, shared by forks.

    ``on_shard(result, done, total)`` is called as each shard finishes.
    """
    from kfp_mlops.serving import sharded

    plan = read_plan(plan_path)
    done: list[ShardScore] = []

    def progress(result: ShardScore) -> None:
        done.append(result)
        if on_shard is not None:
            on_shard(result, len(done), len(plan.shards))

    with registry_model(store_uri, model_ref) as (model_dir, _):
        return sharded.score_shards(model_dir, plan, output, options, workers=workers,
                                    on_shard=progress)


def collect_predictions(plan_path: str | Path, output: str, model: str, results: Sequence[str],
                        manifest_path: str | Path) -> ShardedResult:
    """Commit the parts against the plan (``_SUCCESS``) and write the run's manifest."""
    from kfp_mlops.serving import sharded

    result = sharded.collect_predictions(read_plan(plan_path), output, model,
                                         [sharded.ShardScore.from_json(r) for r in results])
    Path(manifest_path).write_text(json.dumps({
        "output": result.output, "rows": result.rows, "shards": result.shards,
        "model": result.model, "source": result.source, "parts": result.parts}, indent=1))
    return result
