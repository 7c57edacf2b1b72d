"""The model version folder: exactly one ``model.joblib`` plus ``metadata.json``.

That layout is what KServe's storage initializer downloads and what the stock
``kserve-sklearnserver`` loads (it refuses a folder with two model files), and what the
suite's own predictor loads after checking the sha256 and the scikit-learn version.
``metadata.json`` is written last when publishing: it is the folder's commit file.

Every load verifies the model file before unpickling it: its sha256 must equal the one
recorded in ``metadata.json`` (a folder without one is refused), and when a signing key
is configured (``KFP_MLOPS_SIGNING_KEY`` or ``KFP_MLOPS_SIGNING_KEY_FILE``) its
HMAC-SHA256 under that key must equal ``model_hmac_sha256``. The bytes checked are the
bytes unpickled (read once), so the file cannot change in between. docs/security.md says
what each check protects against.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kfp_mlops.errors import KfpMlopsError

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle")
SIGNING_KEY_ENV = "KFP_MLOPS_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "KFP_MLOPS_SIGNING_KEY_FILE"
MIN_KEY_BYTES = 32


class ModelIntegrityError(KfpMlopsError, RuntimeError):
    """A model folder is malformed, tampered with, or built by another scikit-learn."""


# The order evaluate_model reports metrics in. A KFP Metrics artifact reaches the next
# task as an unordered map, so readers put it back in this order.
METRIC_ORDER = ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro",
                "recall_macro", "log_loss", "roc_auc", "roc_auc_ovr", "r2", "rmse", "mae")


def in_reading_order(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` in :data:`METRIC_ORDER`, any others after them by name."""
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    return dict(sorted(metrics.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


@dataclass
class Feature:
    """One input column the model expects."""

    name: str
    dtype: str  # pandas dtype name seen in training ("float64", "int64", "object", "bool")
    kind: str  # one of kinds.FEATURE_KINDS: how the model's preprocessing treats it
    nullable: bool = True


@dataclass
class ModelMetadata:
    """Everything needed to trust, serve and trace one model version."""

    task: str
    target: str
    features: list[Feature]
    estimator: str
    params: dict[str, Any] = field(default_factory=dict)
    classes: list[Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    dropped_columns: dict[str, str] = field(default_factory=dict)
    # Date column -> the calendar parts the model derives from it (year, month, ...).
    date_features: dict[str, list[str]] = field(default_factory=dict)
    data_sha256: str | None = None
    dataset_version: str | None = None
    model_sha256: str | None = None
    model_hmac_sha256: str | None = None  # HMAC-SHA256 of the model file (signing key)
    sklearn_version: str = ""
    # The library of an estimator named by import path (xgboost, lightgbm), checked on
    # load like scikit-learn's version; None for scikit-learn's own estimators.
    estimator_package: str | None = None
    estimator_package_version: str | None = None
    kfp_mlops_version: str = ""
    python_version: str = field(default_factory=platform.python_version)
    name: str | None = None
    version: int | None = None
    created_at: str | None = None
    run_id: str | None = None
    training_fingerprint: str | None = None  # data, settings and code (model/identity.py)
    # What estimates performance before labels arrive (model/estimate.py): fitted on the
    # held-out rows by the evaluate step, recorded by publish.
    performance_estimator: dict[str, Any] | None = None

    def to_json(self) -> str:
        """Serialise as pretty, stable JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMetadata:
        """Parse the dict form, ignoring keys written by newer versions."""
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in raw.items() if k in known}
        data["features"] = [Feature(**f) for f in raw.get("features", [])]
        return cls(**data)

    @property
    def feature_names(self) -> list[str]:
        """Input column names, in training order."""
        return [f.name for f in self.features]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def signing_key() -> bytes | None:
    """The model signing key, or ``None`` when signing is not configured.

    ``KFP_MLOPS_SIGNING_KEY`` holds the key itself (e.g. a Kubernetes Secret mapped to
    an environment variable); ``KFP_MLOPS_SIGNING_KEY_FILE`` names a file holding it
    (e.g. a mounted Secret; surrounding whitespace is ignored). Raises
    ``ModelIntegrityError`` for a configured key that is unreadable or too short.
    """
    value = os.environ.get(SIGNING_KEY_ENV, "")
    path = os.environ.get(SIGNING_KEY_FILE_ENV, "")
    for name, given in ((SIGNING_KEY_ENV, value), (SIGNING_KEY_FILE_ENV, path)):
        if name in os.environ and not given.strip():
            # Set but empty (a Secret with an empty key, `export VAR=`): treating it as
            # "no signing" would turn signing off without a word.
            raise ModelIntegrityError(
                f"{name} is set but empty, which would silently turn model signing off; "
                f"set it to a key of at least {MIN_KEY_BYTES} random bytes (e.g. "
                f"`export {SIGNING_KEY_ENV}=$(openssl rand -hex 32)`), or unset it "
                f"(`unset {name}`) to run without signing"
            )
    if value and path:
        raise ModelIntegrityError(
            f"both {SIGNING_KEY_ENV} and {SIGNING_KEY_FILE_ENV} are set; set only one"
        )
    if path:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise ModelIntegrityError(
                f"{SIGNING_KEY_FILE_ENV}={path} cannot be read ({exc.strerror}); mount the "
                "signing key Secret there or unset the variable"
            ) from exc
        source = f"{SIGNING_KEY_FILE_ENV}={path}"
    elif value:
        key, source = value.strip().encode(), SIGNING_KEY_ENV
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise ModelIntegrityError(
            f"the signing key from {source} is {len(key)} bytes; use at least "
            f"{MIN_KEY_BYTES} random bytes (e.g. `openssl rand -hex 32`)"
        )
    return key


def hmac_sha256(data: bytes, key: bytes) -> str:
    """Hex HMAC-SHA256 of ``data`` (``openssl dgst -sha256 -hmac KEY FILE`` prints the same)."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def sign_model(metadata: ModelMetadata, model_file: str | Path, key: bytes | None) -> None:
    """Record the HMAC of ``model_file`` in ``metadata`` (nothing without a key).

    A signature already present must verify: the file was signed where it was
    pickled, and re-signing would bless whatever replaced it since.
    """
    if key is None:
        return
    data = Path(model_file).read_bytes()
    signature = hmac_sha256(data, key)
    if metadata.model_hmac_sha256 and not hmac.compare_digest(
        metadata.model_hmac_sha256, signature
    ):
        raise ModelIntegrityError(
            f"{model_file} does not match the signature in its metadata: it was changed "
            "after it was signed, or signed with another key; it is not published"
        )
    metadata.model_hmac_sha256 = signature


def write_model_folder(model: Any, metadata: ModelMetadata, folder: str | Path) -> ModelMetadata:
    """Dump ``model`` and its metadata into ``folder``; fills in sha256, signature, versions."""
    import joblib
    import sklearn

    import kfp_mlops

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / MODEL_FILE)
    metadata.model_sha256 = sha256_file(folder / MODEL_FILE)
    metadata.model_hmac_sha256 = None
    sign_model(metadata, folder / MODEL_FILE, signing_key())
    metadata.sklearn_version = sklearn.__version__
    metadata.kfp_mlops_version = kfp_mlops.__version__
    (folder / METADATA_FILE).write_text(metadata.to_json())
    return metadata


def read_metadata(folder: str | Path) -> ModelMetadata:
    """Read ``metadata.json`` of a model folder."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise ModelIntegrityError(
            f"{folder} has no {METADATA_FILE}: it is not a kfp-mlops model folder "
            "(or its publication did not finish)"
        )
    return ModelMetadata.from_dict(json.loads(path.read_text()))


def find_model_file(folder: str | Path) -> Path:
    """The one model file in ``folder``; an error if there are none or several."""
    folder = Path(folder)
    found = sorted(p for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES)
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ModelIntegrityError(
            f"{folder} must hold exactly one model file ({MODEL_FILE}), found {names}; "
            "KServe's sklearn server refuses such a folder too"
        )
    return found[0]


def verified_model_bytes(
    folder: str | Path, metadata: ModelMetadata, key: bytes | None
) -> tuple[Path, bytes]:
    """Read the model file once and check it; return the bytes that were checked.

    Refuses (``ModelIntegrityError``) a folder whose metadata records no sha256, a file
    whose sha256 differs, and, when ``key`` is given, a file that is unsigned or whose
    HMAC-SHA256 differs. Nothing is unpickled here.
    """
    model_file = find_model_file(folder)
    if not metadata.model_sha256:
        raise ModelIntegrityError(
            f"{Path(folder) / METADATA_FILE} records no model_sha256, so {model_file.name} "
            "cannot be verified and is not loaded; re-publish the model with kfp-mlops "
            "(write_model_folder or the registry record it)"
        )
    data = model_file.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != metadata.model_sha256:
        raise ModelIntegrityError(
            f"{model_file} has sha256 {actual} but its metadata records "
            f"{metadata.model_sha256}: the file was changed after publishing; "
            "re-publish the model instead of editing it"
        )
    if key is not None:
        if not metadata.model_hmac_sha256:
            raise ModelIntegrityError(
                f"{model_file} is not signed but a signing key is configured "
                f"({SIGNING_KEY_ENV} / {SIGNING_KEY_FILE_ENV}): refusing to load an unsigned "
                "model; publish it from a pipeline that has the key"
            )
        if not hmac.compare_digest(hmac_sha256(data, key), metadata.model_hmac_sha256):
            raise ModelIntegrityError(
                f"{model_file} does not match its signature (model_hmac_sha256): it was "
                "replaced by someone without the signing key, or signed with another key; "
                "refusing to load it"
            )
    return model_file, data


def load_model_folder(folder: str | Path, check_sklearn: bool = True) -> tuple[Any, ModelMetadata]:
    """Load a model folder after verifying it; never unpickles an unverified file.

    Checks, before unpickling: a recorded sha256 that matches; the signature when a
    signing key is configured (:func:`signing_key`); the scikit-learn version and the
    version of an estimator's own library (xgboost, lightgbm).
    """
    import joblib
    import sklearn

    metadata = read_metadata(folder)
    _, data = verified_model_bytes(folder, metadata, signing_key())
    trained_with = metadata.sklearn_version
    if check_sklearn and trained_with and trained_with != sklearn.__version__:
        raise ModelIntegrityError(
            f"model was trained with scikit-learn {metadata.sklearn_version} but "
            f"{sklearn.__version__} is installed; serve it with the image that trained it "
            "(the suite image) or retrain"
        )
    if check_sklearn:
        from kfp_mlops.model.estimators import check_package

        refused = check_package(metadata.estimator_package, metadata.estimator_package_version)
        if refused:
            raise ModelIntegrityError(refused)
    return joblib.load(io.BytesIO(data)), metadata
