from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Metrics, Model

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def publish(
    model: Input[Model],
    metrics: Input[Metrics],
    store: str,
    source: str,
    model_name: str = "auto",
    stage: str = "none",
    reason: str = "",
    run_id: str = "",
) -> NamedTuple("PublishOutputs", [("model_uri", str), ("model_name", str), ("version", int)]):
    """Publish the model folder to the store's registry as a new immutable version.

    Args:
        model: Model folder from ``train``.
        metrics: Metrics from ``evaluate``, recorded in the version's metadata.
        store: Store URI: a local folder or ``s3://bucket/prefix``.
        source: The ingested data source, to derive a model name when none is given.
        model_name: Registry name (lowercase letters, digits and ``-``); ``auto``: from the data.
        stage: Stage of the new version (``none`` or ``staging``).
        reason: Why it was published (the gate decisions), kept in the history.
        run_id: The pipeline run that made it.

    Returns:
        model_uri: the published version folder (what KServe's ``storageUri`` points at);
        model_name and version: its registry coordinates.
    """
    from collections import namedtuple

    from kfp_mlops.model.publish import publish_model

    published = publish_model(
        model.path, dict(metrics.metadata), store, None if model_name == "auto" else model_name, source, stage, reason, run_id
    )
    print(f"published {published.name} version {published.version} to {published.uri}")
    return namedtuple("PublishOutputs", ["model_uri", "model_name", "version"])(
        published.uri, published.name, published.version
    )
