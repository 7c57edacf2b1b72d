"""KServe predictor for a kfp-mlops model version folder, speaking V1 and V2 REST.

``SklearnFolderModel`` loads and verifies the folder and scores requests that
:mod:`kfp_mlops.serving.decoding` has checked against the feature schema and turned into
the model's input frame (a client mistake is an HTTP 400 naming the field, never a
500); it answers in the V1 or V2 shape and records the per-request metrics.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kfp_mlops.extras import missing_kserve

try:
    # kserve is the 'serving' extra; prometheus_client comes with it.
    from kserve import Model
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from prometheus_client import Counter, Histogram
except ModuleNotFoundError as exc:
    if exc.name not in ("kserve", "prometheus_client"):
        raise
    raise missing_kserve("serving a model (kfp_mlops.serving)") from None

from kfp_mlops.model.package import Feature, ModelMetadata, load_model_folder
from kfp_mlops.processes import usable_cores
from kfp_mlops.serving.contract import InputContract
from kfp_mlops.serving.decoding import (
    InputSchemaError,
    frame_from_v1,
    frame_from_v2,
    parse_json,
)
from kfp_mlops.serving.payloads import PREDICTIONS, PROBABILITIES, v2_datatype

# Requests answered on the event loop (SklearnFolderModel.predict): at most this many
# rows and body bytes, while the model answers them in under this many seconds.
INLINE_ROWS = 1000
INLINE_BYTES = 64 * 1024
INLINE_SECONDS = 0.02

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
    ``predict_sync`` in a small thread pool for any request that is not both small and
    quick: parsing, checks and ``model.predict`` are CPU-bound, and on the event loop
    they would hold up every other request, health probes included, for as long as one
    large request takes. A small request that the model answers quickly is answered on
    the loop (see ``predict``).
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
        self._inline_ok = True  # small requests on the event loop until one is slow

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
        """Answer one request; off the event loop unless it is known to be quick.

        KServe awaits this. A request of at most ``INLINE_ROWS`` rows and
        ``INLINE_BYTES`` of body is answered on the loop while the model's last such
        answer took under ``INLINE_SECONDS`` (wall time): the hop to a worker thread and back (a
        thread wake-up each way, 0.1-0.2 ms) is then a large part of the answer.
        Anything larger or slower goes to the thread pool, so probes and small requests
        are answered while it is scored.
        """
        small = _small(payload, headers)
        if small and self._inline_ok:
            return self._timed(payload)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.workers, thread_name_prefix=f"predict-{self.name}"
            )
        loop = asyncio.get_running_loop()
        work = self._timed if small else self.predict_sync
        return await loop.run_in_executor(self._executor, work, payload)

    def _timed(self, payload: Any) -> Any:
        """``predict_sync``, noting whether the model answers small requests quickly.

        The next small request follows the last one's measure, whichever thread it ran
        on, so a moment of load that slows one answer sends only the next to the pool.
        Wall time (``perf_counter``, read without a system call): the thread's CPU
        clock is a system call, and on a loaded machine each one is a chance for the
        scheduler to run something else first (0.6 ms a call measured at load 4).
        """
        started = time.perf_counter()
        try:
            return self.predict_sync(payload)
        finally:
            self._inline_ok = time.perf_counter() - started <= INLINE_SECONDS

    def predict_sync(self, payload: Any) -> Any:
        """Answer one V1 (dict, or the raw body) or V2 (``InferRequest``) request."""
        protocol = "v2" if isinstance(payload, InferRequest) else "v1"
        try:
            if isinstance(payload, (bytes, bytearray, str)):
                # KServe hands over the raw body when the content type is not JSON.
                payload = parse_json(payload)
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
        predictions = scored.predictions.tolist()  # numbers and bools become Python's
        # An object array may hold numpy scalars: convert those (not plain strings, the
        # usual labels, which a walk over the list cost 17 us at 100 rows).
        if scored.predictions.dtype == object and not set(map(type, predictions)) <= _JSON:
            predictions = _plain(predictions)
        body: dict[str, Any] = {PREDICTIONS: predictions}
        if scored.probabilities is not None:
            body[PROBABILITIES] = scored.probabilities.tolist()
            body["classes"] = _plain(self.classes or [])
        return body

    def _observe(self, predictions: np.ndarray) -> None:
        if self.classes is not None:
            # str() of each Python value: the labels numpy's astype(str) gave, without
            # np.unique's sort (a tenth of the cost on small requests).
            for label, count in collections.Counter(map(str, predictions.tolist())).items():
                PREDICTED_CLASS.labels(self.name, label).inc(count)
        else:
            histogram = PREDICTION_VALUE.labels(self.name)
            for value in predictions.astype(np.float64).tolist():
                histogram.observe(value)

    def _task(self) -> str:
        return self.metadata.task if self.metadata else "unknown"


def _small(payload: Any, headers: dict[str, str] | None) -> bool:
    """Whether a request has at most ``INLINE_ROWS`` rows and ``INLINE_BYTES`` of body.

    The body size (``content-length``; KServe passes the request's headers, lower-case)
    bounds the decoding work whatever the request claims; without headers (a call
    in-process) the rows alone decide. False when it cannot tell cheaply (no
    ``content-length``, a raw body, an odd shape): the thread pool then.
    """
    if headers is not None:
        length = headers.get("content-length", "")
        if not (length.isdigit() and int(length) <= INLINE_BYTES):
            return False
    if isinstance(payload, dict):
        instances = payload.get("instances")
        return isinstance(instances, list) and len(instances) <= INLINE_ROWS
    if isinstance(payload, InferRequest) and payload.inputs:
        shape = payload.inputs[0].shape
        return bool(shape) and isinstance(shape[0], int) and 0 <= shape[0] <= INLINE_ROWS
    return False


def default_workers() -> int:
    """Threads that score requests: one per CPU the process may use, at most 4."""
    return min(4, usable_cores())


def scored_rows(response: Any) -> Sequence[Any]:
    """Return the predictions of a V1 dict or V2 ``InferResponse`` (for row counting)."""
    if isinstance(response, InferResponse):
        first = response.outputs[0]
        return range(first.shape[0])
    return response[PREDICTIONS]  # type: ignore[no-any-return]


_JSON = frozenset((str, int, float, bool, type(None)))


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
