"""Is this model new? A fingerprint of what made it: data, settings and code.

Running the training pipeline twice on the same data with the same settings and code
trains the same model again; publishing and promoting it as version N+1 would add a
version that differs from N only in its number. The fingerprint is a sha256 over the
training rows' file hash, the target, task, estimator, parameters and seed, and the
kfp-mlops and scikit-learn versions. The model gate looks it up among the published
versions and, unless told to publish anyway, says which version is identical and
publishes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kfp_mlops.model.package import sha256_file
from kfp_mlops.model.settings import TrainingSettings, shown


def training_fingerprint(
    train_path: str | Path, settings: TrainingSettings, params: dict[str, Any],
    package: tuple[str | None, str | None] = (None, None),
) -> str:
    """The sha256 of everything that determines the trained model.

    ``params`` are the ones the model was built with (the settings' and any defaults
    training added). The estimator is recorded as the user gave it, ``auto`` when left
    to us, as before settings existed: published versions keep matching. ``package`` is
    an estimator library's name and version (xgboost 3.2.0): another version is another
    model (recorded only when set, so scikit-learn models keep their fingerprints).
    """
    import sklearn

    import kfp_mlops

    made_of = {
        "train_rows_sha256": sha256_file(train_path), "target": settings.target,
        "task": settings.task, "estimator": shown(settings.estimator), "params": params,
        "seed": settings.seed, "kfp_mlops": kfp_mlops.__version__,
        "scikit-learn": sklearn.__version__,
    }
    if package[0]:
        made_of[package[0]] = package[1]
    return hashlib.sha256(json.dumps(made_of, sort_keys=True, default=str).encode()).hexdigest()


def identical_version(store_uri: str, name: str, fingerprint: str | None) -> int | None:
    """The newest published version of ``name`` trained from the same fingerprint, if any."""
    if not fingerprint:
        return None
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.storage import open_store

    registry = Registry(open_store(store_uri))
    if name not in registry.list_models():
        return None
    same = [v.version for v in registry.list_versions(name)
            if v.metadata.training_fingerprint == fingerprint]
    return max(same, default=None)
