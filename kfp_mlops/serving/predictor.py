"""KServe predictor for a kfp-mlops model version folder, speaking V1 and V2 REST.

Every request is checked against the feature schema in ``metadata.json`` before the
model sees it, so a client mistake is an HTTP 400 naming the field, never a 500.

V1 (``POST /v1/models/NAME:predict``)::

    {"instances": [[row values in feature order], ...], "return_probabilities": true}
    {"instances": [{"feature": value, ...}, ...]}

V2 / Open Inference Protocol (``POST /v2/models/NAME/infer``): one input per feature
column (``"parameters": {"content_type": "pd"}``), or a single ``[rows, features]``
tensor in feature order; ask for ``{"name": "probabilities"}`` in ``outputs``.

Named columns (V1 records, V2 column inputs) follow the input contract that batch
scoring follows too (:mod:`kfp_mlops.serving.contract`): every feature required, the
target and the columns training dropped ignored, any other column refused by name
unless unknown columns are ignored on request.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.extras import missing_kserve

try:
    # kserve is the 'serving' extra; orjson and prometheus_client come with it.
    import orjson
    from kserve import Model
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse
    from prometheus_client import Counter, Histogram
except ModuleNotFoundError as exc:
    if exc.name not in ("kserve", "orjson", "prometheus_client"):
        raise
    raise missing_kserve("serving a model (kfp_mlops.serving)") from None

from kfp_mlops.data.kinds import BOOLEAN, CATEGORICAL, NUMERIC, dtype_family
from kfp_mlops.model.package import Feature, ModelMetadata, load_model_folder
from kfp_mlops.serving.contract import InputContract
from kfp_mlops.serving.payloads import PREDICTIONS, PROBABILITIES, v2_datatype

V1_FIELDS = ("instances", "return_probabilities")

# Numeric, string and boolean features accept these V2 tensor datatypes.
_V2_TYPES = {
    NUMERIC: {
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "FP16",
        "FP32",
        "FP64",
    },
    CATEGORICAL: {"BYTES"},
    BOOLEAN: {"BOOL"},
}

# Regression targets have no known scale, so buckets span many decades (1-2-5 steps).
_STEPS = [m * 10.0**e for e in range(-2, 6) for m in (1.0, 2.0, 5.0)]
PREDICTION_BUCKETS: tuple[float, ...] = tuple(sorted([-s for s in _STEPS] + [0.0] + _STEPS))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Metrics live in prometheus_client's default registry: KServe serves it on /metrics.
REQUESTS = Counter(
    "kfp_mlops_requests",
    "Inference requests by model, protocol (v1|v2) and outcome (success|invalid_input|error).",
    ["model", "protocol", "outcome"],
)
REQUEST_LATENCY = Histogram(
    "kfp_mlops_request_duration_seconds",
    "Wall time of an inference request from first byte in to last byte out.",
    ["model", "protocol"],
    buckets=LATENCY_BUCKETS,
)
ROWS = Counter("kfp_mlops_rows", "Rows scored successfully.", ["model", "protocol"])
INVALID_INPUTS = Counter(
    "kfp_mlops_invalid_inputs",
    "Requests refused by the schema check, by reason.",
    ["model", "reason"],
)
PREDICTED_CLASS = Counter(
    "kfp_mlops_predicted_class", "Classification predictions by class.", ["model", "class"]
)
REJECTED = Counter(
    "kfp_mlops_rejected_requests",
    "Inference requests answered with a 4xx, by model, protocol and HTTP status; each is "
    "logged once, in one line, with the reason.",
    ["model", "protocol", "status"],
)
PREDICTION_VALUE = Histogram(
    "kfp_mlops_prediction_value",
    "Regression predictions.",
    ["model"],
    buckets=PREDICTION_BUCKETS,
)


class InputSchemaError(InvalidInput, KfpMlopsError):
    """A request does not match the model's feature schema (KServe answers HTTP 400)."""

    def __init__(self, message: str, reason: str, field: str | None = None):
        super().__init__(message)
        self.reason_code = reason
        self.field = field


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


_EXPECTS = {
    NUMERIC: "a number",
    CATEGORICAL: "a string",
    BOOLEAN: "true or false",
}


def coerce_column(feature: Feature, values: Sequence[Any], where: Callable[[int], str]) -> Any:
    """Check one column's raw values against ``feature``; return a typed numpy array.

    ``where(i)`` names the position of value ``i`` in the request, for error messages.
    Missing values (``null``/NaN) become ``np.nan`` so the model's imputers see them.
    """
    family = dtype_family(feature.dtype)
    n = len(values)
    nulls = 0
    if family == NUMERIC:
        out = np.empty(n, dtype=np.float64)
        for i, value in enumerate(values):
            if _is_null(value):
                out[i] = np.nan
                nulls += 1
            elif _is_number(value):
                try:
                    out[i] = value
                except OverflowError:  # a JSON integer beyond float range
                    out[i] = math.inf
                if math.isinf(out[i]):
                    raise InputSchemaError(
                        f"feature '{feature.name}' got an infinite or out-of-range value at "
                        f"{where(i)}; send a finite number or null",
                        "wrong_type",
                        feature.name,
                    )
            else:
                _raise_type(feature, family, value, where(i))
    else:
        out = np.empty(n, dtype=object)
        check = (
            (lambda v: isinstance(v, str))
            if family == CATEGORICAL
            else (lambda v: isinstance(v, (bool, np.bool_)))
        )
        for i, value in enumerate(values):
            if _is_null(value):
                out[i] = np.nan
                nulls += 1
            elif check(value):
                out[i] = value
            else:
                _raise_type(feature, family, value, where(i))
    if nulls and not feature.nullable:
        first = next(i for i, v in enumerate(values) if _is_null(v))
        raise InputSchemaError(
            f"feature '{feature.name}' is not nullable but {where(first)} is null/NaN "
            f"({nulls} of {n} rows); send a value for '{feature.name}'",
            "null_value",
            feature.name,
        )
    if not nulls:
        # Give the model the dtype it was trained on where that is lossless.
        if family == NUMERIC and feature.dtype.lower().startswith(("int", "uint")):
            if np.all(np.floor(out) == out) and np.all(np.abs(out) < 2.0**63):
                return out.astype(feature.dtype.lower())
        elif family == BOOLEAN:
            return out.astype(bool)
    return out


def _raise_type(feature: Feature, family: str, value: Any, where: str) -> None:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise InputSchemaError(
        f"feature '{feature.name}' expects {_EXPECTS[family]} ({feature.dtype}) but {where} "
        f"is {type(value).__name__} {shown}; send {_EXPECTS[family]} or null",
        "wrong_type",
        feature.name,
    )


def frame_from_columns(
    features: Sequence[Feature],
    columns: Mapping[str, Sequence[Any]],
    where: Callable[[str, int], str],
) -> pd.DataFrame:
    """Build the model's input frame from one value list per feature, checking each."""
    data = {f.name: coerce_column(f, columns[f.name], _locator(where, f.name)) for f in features}
    return pd.DataFrame(data, columns=[f.name for f in features])


def _locator(where: Callable[[str, int], str], name: str) -> Callable[[int], str]:
    return lambda i: where(name, i)


def _strict(features: Sequence[Feature]) -> InputContract:
    return InputContract(tuple(f.name for f in features), frozenset())


def frame_from_v1(
    features: Sequence[Feature], payload: Any, contract: InputContract | None = None
) -> tuple[pd.DataFrame, bool]:
    """Parse a V1 body into the model's input frame and the return-probabilities flag.

    Records are checked against ``contract`` (default: the features and nothing else).
    """
    names = [f.name for f in features]
    if not isinstance(payload, dict):
        raise InputSchemaError(
            'the V1 body must be a JSON object like {"instances": [...]}, '
            f"got a JSON {type(payload).__name__}",
            "malformed",
        )
    extra = [k for k in payload if k not in V1_FIELDS]
    if extra:
        raise InputSchemaError(
            f"unknown top-level field '{extra[0]}' in the V1 body; allowed: {list(V1_FIELDS)}",
            "extra_field",
            extra[0],
        )
    want_proba = payload.get("return_probabilities", False)
    if not isinstance(want_proba, bool):
        raise InputSchemaError(
            "'return_probabilities' must be true or false", "wrong_type", "return_probabilities"
        )
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances:
        raise InputSchemaError(
            "'instances' must be a non-empty list of rows (lists in feature order "
            f"{names}) or records (objects keyed by feature name)",
            "malformed",
            "instances",
        )
    if isinstance(instances[0], dict):
        columns = _columns_from_records(contract or _strict(features), instances)
    else:
        columns = _columns_from_rows(names, instances)
    frame = frame_from_columns(features, columns, lambda name, i: f"instances[{i}].{name}")
    return frame, want_proba


def _columns_from_rows(names: list[str], rows: list[Any]) -> dict[str, Sequence[Any]]:
    width = len(names)
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InputSchemaError(
                f"instances[{i}] is a {type(row).__name__} but instances[0] is a list; "
                "send every row as a list in feature order (or every row as an object)",
                "malformed",
                f"instances[{i}]",
            )
        if len(row) != width:
            raise InputSchemaError(
                f"instances[{i}] has {len(row)} values but the model expects {width}, "
                f"in this order: {names}",
                "row_length",
                f"instances[{i}]",
            )
    # Row lengths were checked above, so both zips are exact.
    return dict(zip(names, zip(*rows, strict=True), strict=True))


def _columns_from_records(contract: InputContract, rows: list[Any]) -> dict[str, Sequence[Any]]:
    names = list(contract.features)
    expected = set(names)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputSchemaError(
                f"instances[{i}] is a {type(row).__name__} but instances[0] is an object; "
                "send every row as an object keyed by feature name",
                "malformed",
                f"instances[{i}]",
            )
        if row.keys() != expected:
            missing = contract.missing(row)
            if missing:
                raise InputSchemaError(
                    f"instances[{i}] is missing feature '{missing[0]}' "
                    f"(missing: {missing}); send every feature, null where unknown",
                    "missing_field",
                    missing[0],
                )
            extra = contract.unknown(row)
            if extra:
                raise InputSchemaError(
                    contract.unknown_message(extra[0], f"instances[{i}]"), "extra_field", extra[0]
                )
    return {n: [row[n] for row in rows] for n in names}


def _input_values(item: InferInput) -> list[Any]:
    """Flat Python list of a V2 input's values, from JSON data or binary data."""
    if item.data is None:  # binary tensor extension: the bytes are decoded by KServe
        try:
            values: list[Any] = item.as_numpy().ravel().tolist()
        except (ValueError, TypeError, InvalidInput) as exc:
            raise InputSchemaError(
                f"input '{item.name}' carries binary data that does not match its shape "
                f"{list(item.shape)} and datatype {item.datatype} ({exc})",
                "row_length",
                item.name,
            ) from exc
    else:
        values = list(item.data)
        if values and isinstance(values[0], list):
            values = [v for sub in values for v in (sub if isinstance(sub, list) else [sub])]
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]


def frame_from_v2(
    features: Sequence[Feature], request: InferRequest, contract: InputContract | None = None
) -> pd.DataFrame:
    """Parse a V2 inference request (per-column inputs or one row tensor) into a frame.

    Column inputs are checked against ``contract`` (default: the features only); the
    ones it ignores (target, dropped columns) are skipped unread.
    """
    contract = contract or _strict(features)
    names = [f.name for f in features]
    by_name = {f.name: f for f in features}
    inputs = list(request.inputs)
    if not inputs:
        raise InputSchemaError("the V2 request has no inputs", "malformed", "inputs")
    if (len(inputs) == 1 and inputs[0].name not in by_name and len(features) > 1
            and inputs[0].name not in contract.ignored):
        return _frame_from_v2_tensor(features, inputs[0])
    seen: set[str] = set()
    columns: dict[str, Sequence[Any]] = {}
    rows: int | None = None
    for item in inputs:
        if item.name not in by_name:
            if contract.unknown([item.name]):
                raise InputSchemaError(
                    contract.unknown_message(item.name, "the V2 request"),
                    "extra_field",
                    item.name,
                )
            continue  # the target, a dropped column, or unknown ones ignored on request
        if item.name in seen:
            raise InputSchemaError(f"input '{item.name}' appears twice", "malformed", item.name)
        seen.add(item.name)
        family = dtype_family(by_name[item.name].dtype)
        if item.datatype not in _V2_TYPES[family]:
            wanted = sorted(_V2_TYPES[family])[0] if family != NUMERIC else "FP64 or INT64"
            raise InputSchemaError(
                f"input '{item.name}' has datatype {item.datatype} but feature "
                f"'{item.name}' is {by_name[item.name].dtype}; send datatype {wanted}",
                "wrong_type",
                item.name,
            )
        shape = list(item.shape)
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise InputSchemaError(
                f"input '{item.name}' has shape {shape}; a column input must have shape "
                "[rows] or [rows, 1]",
                "row_length",
                item.name,
            )
        values = _input_values(item)
        if len(values) != shape[0]:
            raise InputSchemaError(
                f"input '{item.name}' declares shape {shape} but carries {len(values)} "
                "values; make them agree",
                "row_length",
                item.name,
            )
        if rows is not None and shape[0] != rows:
            raise InputSchemaError(
                f"input '{item.name}' has {shape[0]} rows but '{inputs[0].name}' has {rows}; "
                "every column must have the same number of rows",
                "row_length",
                item.name,
            )
        rows = shape[0]
        columns[item.name] = values
    missing = [n for n in names if n not in seen]
    if missing:
        raise InputSchemaError(
            f"missing input for feature '{missing[0]}' (missing: {missing}); send one input "
            "per feature, with null where a value is unknown",
            "missing_field",
            missing[0],
        )
    return frame_from_columns(features, columns, lambda name, i: f"input '{name}' data[{i}]")


def _frame_from_v2_tensor(features: Sequence[Feature], item: InferInput) -> pd.DataFrame:
    names = [f.name for f in features]
    shape = list(item.shape)
    if len(shape) != 2 or shape[1] != len(names):
        raise InputSchemaError(
            f"input '{item.name}' is not a feature name, so it must be one [rows, "
            f"{len(names)}] tensor in feature order {names}, but its shape is {shape}; "
            'or send one input per feature with "parameters": {"content_type": "pd"}',
            "row_length",
            item.name,
        )
    values = _input_values(item)
    if len(values) != shape[0] * shape[1]:
        raise InputSchemaError(
            f"input '{item.name}' declares shape {shape} but carries {len(values)} values",
            "row_length",
            item.name,
        )
    width = shape[1]
    columns = {n: values[j::width] for j, n in enumerate(names)}
    return frame_from_columns(
        features, columns, lambda name, i: f"input '{item.name}' row {i} ({name})"
    )


@dataclass
class Scored:
    """Predictions for a batch of rows, plus class probabilities when asked."""

    predictions: np.ndarray
    probabilities: np.ndarray | None = None


class SklearnFolderModel(Model):  # type: ignore[misc]  # kserve ships no type hints
    """A ``kserve.Model`` serving one kfp-mlops model version folder.

    ``load()`` verifies the folder (one model file, sha256, signature when a signing
    key is configured, scikit-learn version); ``predict_sync()`` validates a request
    against the feature schema and scores it. KServe awaits ``predict()``, which runs
    ``predict_sync`` in a small thread pool: parsing, checks and ``model.predict`` are
    CPU-bound, and on the event loop they would hold up every other request, health
    probes included, for as long as one large request takes.
    """

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        workers: int | None = None,
        ignore_unknown_columns: bool | None = None,
    ):
        super().__init__(name)
        # None: KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS decides, read at load().
        self.ignore_unknown_columns = ignore_unknown_columns
        self.contract: InputContract | None = None
        self.model_dir = Path(model_dir)
        self.model: Any = None
        self.metadata: ModelMetadata | None = None
        self.classes: list[Any] | None = None
        self.workers = workers or default_workers()
        self._executor: ThreadPoolExecutor | None = None

    def load(self) -> bool:
        """Load and verify the model folder; raises ``ModelIntegrityError`` if broken."""
        self.model, self.metadata = load_model_folder(self.model_dir)
        self.contract = InputContract.for_model(self.metadata, self.ignore_unknown_columns)
        if self.metadata.task == "classification":
            found = getattr(self.model, "classes_", None)
            self.classes = list(found) if found is not None else self.metadata.classes
        self.ready = True
        return self.ready

    @property
    def features(self) -> list[Feature]:
        """The feature schema, in training order."""
        assert self.metadata is not None, "call load() first"
        return self.metadata.features

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 model metadata: one column input per feature."""
        return [
            {"name": f.name, "datatype": v2_datatype(f.dtype), "shape": [-1]}
            for f in self.features
        ]

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 model metadata: predictions, and probabilities for a classifier."""
        kind = np.asarray(self.classes).dtype.kind if self.classes is not None else "f"
        datatype = {"i": "INT64", "u": "INT64", "b": "BOOL", "f": "FP64"}.get(kind, "BYTES")
        outputs = [{"name": PREDICTIONS, "datatype": datatype, "shape": [-1]}]
        if self.classes is not None:
            outputs.append(
                {"name": PROBABILITIES, "datatype": "FP64", "shape": [-1, len(self.classes)]}
            )
        return outputs

    def score(self, frame: pd.DataFrame, with_probabilities: bool = False) -> Scored:
        """Run the model on a checked frame; the model's own refusals become HTTP 400."""
        if with_probabilities and (
            self.classes is None or not hasattr(self.model, "predict_proba")
        ):
            raise InputSchemaError(
                f"model '{self.name}' is a {self._task()} model: it has no class "
                "probabilities; do not request them",
                "malformed",
                PROBABILITIES,
            )
        try:
            predictions = np.asarray(self.model.predict(frame))
            probabilities = (
                np.asarray(self.model.predict_proba(frame), dtype=np.float64)
                if with_probabilities
                else None
            )
        except (ValueError, TypeError) as exc:
            # Input passed the schema but the estimator refused it (e.g. unseen category).
            raise InputSchemaError(
                f"the model rejected the input: {exc}", "rejected_by_model"
            ) from exc
        return Scored(predictions, probabilities)

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Answer one request off the event loop (KServe awaits this)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.workers, thread_name_prefix=f"predict-{self.name}"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.predict_sync, payload)

    def predict_sync(self, payload: Any) -> Any:
        """Answer one V1 (dict, or the raw body) or V2 (``InferRequest``) request."""
        protocol = "v2" if isinstance(payload, InferRequest) else "v1"
        try:
            if isinstance(payload, (bytes, bytearray, str)):
                # KServe hands over the raw body when the content type is not JSON.
                payload = _parse_json(payload)
            if isinstance(payload, InferRequest):
                response: Any = self._predict_v2(payload)
            else:
                frame, want_proba = frame_from_v1(self.features, payload, self.contract)
                scored = self.score(frame, want_proba)
                response = self._v1_response(scored)
                self._observe(scored.predictions)
        except InputSchemaError as exc:
            INVALID_INPUTS.labels(self.name, exc.reason_code).inc()
            raise
        ROWS.labels(self.name, protocol).inc(len(scored_rows(response)))
        return response

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        wanted = [o.name for o in (request.request_outputs or [])] or [PREDICTIONS]
        unknown = [w for w in wanted if w not in (PREDICTIONS, PROBABILITIES)]
        if unknown:
            raise InputSchemaError(
                f"unknown output '{unknown[0]}'; this model offers "
                f"'{PREDICTIONS}' and '{PROBABILITIES}'",
                "malformed",
                unknown[0],
            )
        frame = frame_from_v2(self.features, request, self.contract)
        scored = self.score(frame, PROBABILITIES in wanted)
        self._observe(scored.predictions)
        outputs = []
        for name in wanted:
            if name == PREDICTIONS:
                outputs.append(_infer_output(PREDICTIONS, scored.predictions))
            else:
                assert scored.probabilities is not None
                out = _infer_output(PROBABILITIES, scored.probabilities)
                out.parameters = {"classes": json.dumps(_plain(self.classes or []))}
                outputs.append(out)
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()),
            model_name=self.name,
            infer_outputs=outputs,
        )

    def _v1_response(self, scored: Scored) -> dict[str, Any]:
        body: dict[str, Any] = {PREDICTIONS: _plain(scored.predictions.tolist())}
        if scored.probabilities is not None:
            body[PROBABILITIES] = scored.probabilities.tolist()
            body["classes"] = _plain(self.classes or [])
        return body

    def _observe(self, predictions: np.ndarray) -> None:
        if self.classes is not None:
            labels, counts = np.unique(predictions.astype(str), return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                PREDICTED_CLASS.labels(self.name, label).inc(count)
        else:
            histogram = PREDICTION_VALUE.labels(self.name)
            for value in predictions.astype(np.float64).tolist():
                histogram.observe(value)

    def _task(self) -> str:
        return self.metadata.task if self.metadata else "unknown"


def default_workers() -> int:
    """Threads that score requests: one per CPU the process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _parse_json(body: bytes | bytearray | str) -> Any:
    # orjson, like KServe's own JSON path: no NaN/Infinity literals, integers beyond
    # 64 bits become floats (inf past float range), nesting depth capped, so a hostile
    # body is a 400 here, never an OverflowError or RecursionError (HTTP 500).
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputSchemaError(
            f"request body is not valid JSON ({exc}); send a JSON object", "malformed"
        ) from exc


def scored_rows(response: Any) -> Sequence[Any]:
    """Return the predictions of a V1 dict or V2 ``InferResponse`` (for row counting)."""
    if isinstance(response, InferResponse):
        first = response.outputs[0]
        return range(first.shape[0])
    return response[PREDICTIONS]  # type: ignore[no-any-return]


def _plain(values: Any) -> Any:
    """Turn numpy scalars inside lists into JSON-ready Python values."""
    if isinstance(values, list):
        return [_plain(v) for v in values]
    if isinstance(values, np.generic):
        return values.item()
    return values


def _infer_output(name: str, array: np.ndarray) -> InferOutput:
    if array.dtype.kind in "OUS":
        array = array.astype(object)
        datatype = "BYTES"
    elif array.dtype.kind == "b":
        datatype = "BOOL"
    elif array.dtype.kind in "iu":
        array = array.astype(np.int64)
        datatype = "INT64"
    else:
        array = array.astype(np.float64)
        datatype = "FP64"
    out = InferOutput(name=name, shape=list(array.shape), datatype=datatype)
    out.set_data_from_numpy(array, binary_data=False)
    return out
