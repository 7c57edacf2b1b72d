from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def detect_drift(
    dataset: Input[Dataset],
    store: str,
    model_name: str,
    drift: Output[Artifact],
    drift_share: float = 0.5,
) -> NamedTuple("DriftOutputs", [("drift", bool), ("reason", str)]):
    """Drift of a batch from the data the production model was trained on.

    Every feature and the target are tested (the target counts in the share: label shift
    is a reason to retrain). Without a production version there is no reference: no
    drift, and ``monitor`` decides to train the first version.

    Args:
        dataset: The batch as Parquet, from ``ingest``.
        store: Store URI holding the registry and the dataset versions.
        model_name: Registry name; its production version's dataset is the reference.
        drift: JSON: the production version, the reference dataset version, per-column
            drift and both sides' statistics.
        drift_share: Share of drifted features that means dataset drift.

    Returns:
        drift: dataset drift; reason: which columns drifted, or why nothing was compared.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.monitoring import steps

    log = logging.getLogger("kfp_mlops.components.monitoring.detect_drift")
    found, drifted, reason = steps.detect_drift(
        dataset.path, store, model_name, drift.path, drift_share=drift_share)
    drift.metadata.update({"model_ref": found.model_ref or "",
                           "reference_version": found.reference_version or ""})
    log.info(reason)
    return namedtuple("DriftOutputs", ["drift", "reason"])(drifted, reason)


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def detect_drift_sharded(
    scan: Input[Artifact],
    store: str,
    model_name: str,
    drift: Output[Artifact],
    drift_share: float = 0.5,
) -> NamedTuple("DriftOutputs", [("drift", bool), ("reason", str)]):
    """``detect-drift`` for a sharded batch: from its merged scan, not its rows.

    Args:
        scan: From ``merge-scans`` or ``scan-shards``: statistics and drift samples.
        store: Store URI holding the registry and the dataset versions.
        model_name: Registry name; its production version's dataset is the reference.
        drift: JSON, as ``detect-drift`` writes it.
        drift_share: Share of drifted features that means dataset drift.

    Returns:
        drift: dataset drift; reason: which columns drifted, or why nothing was compared.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.monitoring import steps

    log = logging.getLogger("kfp_mlops.components.monitoring.detect_drift_sharded")
    found, drifted, reason = steps.detect_drift_sharded(
        scan.path, store, model_name, drift.path, drift_share=drift_share)
    drift.metadata.update({"model_ref": found.model_ref or "",
                           "reference_version": found.reference_version or ""})
    log.info(reason)
    return namedtuple("DriftOutputs", ["drift", "reason"])(drifted, reason)
