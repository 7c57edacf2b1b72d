from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def publish(
    model: Input[Model],
    metrics: Input[Metrics],
    blessing: Input[Artifact],
    store: str,
    model_name: str,
    stage: str = "staging",
    reason: str = "",
    dataset_version: str = "",
    run_id: str = "",
    model_registry: str = "",
    run_uid: str = "",
    evaluation: Input[Artifact] = None,
) -> NamedTuple("PublishOutputs", [("model_uri", str), ("model_name", str), ("version", int)]):
    """Publish the model folder to the store's registry as a new immutable version.

    Args:
        model: Model folder from ``train``.
        metrics: Metrics from ``evaluate``, recorded in the version's metadata.
        blessing: The ``bless-model`` verdict; publishing is refused unless it passed,
            whatever the wiring, and its comparison table is kept with the version.
        store: Store URI: a local folder or ``s3://bucket/prefix``.
        model_name: Registry name (lowercase letters, digits and ``-``).
        stage: Stage of the new version: ``staging`` (a deployment candidate) or ``none``.
        reason: Why it was published (the gate decisions), kept in the history.
        dataset_version: The dataset version it was trained on (lineage).
        run_id: The pipeline run that made it.
        model_registry: Kubeflow Model Registry URL to register the version in too
            (``kubeflow``: the in-cluster service); empty: ``$KFP_MLOPS_MODEL_REGISTRY``,
            else none. If it is unreachable the store publication stands and the log
            names the ``kfp-mlops models sync`` command that finishes it.
        run_uid: The run's id in KFP (the API's run id), kept with the registration.
        evaluation: From ``evaluate`` (optional): its performance estimator (the
            calibration, or the loss model, fitted on the held-out rows) is stored with
            the version, so monitoring can estimate performance before labels arrive.

    Returns:
        model_uri: the published version folder (what KServe's ``storageUri`` points at);
        model_name and version: its registry coordinates.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.model import steps

    log = logging.getLogger("kfp_mlops.components.model.publish")
    published = steps.publish(
        model.path, dict(metrics.metadata), blessing.path,
        None if evaluation is None else evaluation.path, store, model_name, stage=stage,
        reason=reason, run_id=run_id, dataset_version=dataset_version,
        model_registry=model_registry, blessing_policy=str(blessing.metadata.get("policy") or ""),
        run_uid=run_uid,
    )
    log.info("published %s version %s to %s", published.name, published.version, published.uri)
    return namedtuple("PublishOutputs", ["model_uri", "model_name", "version"])(
        published.uri, published.name, published.version
    )
