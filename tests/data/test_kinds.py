"""One column-kind vocabulary: statistics, schemas, model features and serving share it."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kfp_mlops.data import kinds
from kfp_mlops.data.stats import StatisticsError, column_kind
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.serving.batch import _arrow_family


def test_the_persisted_values_never_change():
    # Statistics JSON, schema YAML and metadata.json hold these strings.
    assert kinds.KINDS == ("numeric", "integer", "categorical", "boolean", "datetime")
    assert kinds.FEATURE_KINDS == ("numeric", "categorical", "datetime")


@pytest.mark.parametrize("arrow_type, kind", [
    (pa.float64(), "numeric"), (pa.decimal128(10, 2), "numeric"), (pa.int8(), "integer"),
    (pa.uint64(), "integer"), (pa.string(), "categorical"), (pa.large_string(), "categorical"),
    (pa.dictionary(pa.int32(), pa.string()), "categorical"), (pa.null(), "categorical"),
    (pa.bool_(), "boolean"), (pa.timestamp("ns"), "datetime"), (pa.date32(), "datetime"),
])
def test_arrow_types_map_to_kinds(arrow_type, kind):
    assert kinds.arrow_kind(arrow_type) == kind == column_kind(arrow_type)


def test_an_unprofiled_type_has_no_kind_and_statistics_say_how_to_fix_it():
    assert kinds.arrow_kind(pa.binary()) is None
    with pytest.raises(StatisticsError, match="convert it"):
        column_kind(pa.binary())


@pytest.mark.parametrize("dtype, kind, family", [
    ("float64", "numeric", "numeric"), ("Float32", "numeric", "numeric"),
    ("int64", "integer", "numeric"), ("UInt8", "integer", "numeric"),
    ("bool", "boolean", "boolean"), ("boolean", "boolean", "boolean"),
    ("object", "categorical", "categorical"), ("string", "categorical", "categorical"),
    ("category", "categorical", "categorical"),
])
def test_dtype_names_map_to_kinds_and_families(dtype, kind, family):
    assert kinds.dtype_kind(dtype) == kind and kinds.dtype_family(dtype) == family


def test_a_batch_column_and_a_feature_compare_by_family():
    for arrow_type, dtype in [(pa.int64(), "float64"), (pa.float32(), "int64"),
                              (pa.string(), "object"), (pa.bool_(), "bool"),
                              (pa.dictionary(pa.int8(), pa.string()), "object")]:
        assert _arrow_family(arrow_type) == kinds.dtype_family(dtype)
    # Not scored as they are: convert first (named by their Arrow type in the error).
    assert _arrow_family(pa.decimal128(5, 1)) == "decimal128(5, 1)"
    assert _arrow_family(pa.timestamp("s")) == "timestamp[s]"
    assert _arrow_family(pa.null()) == "null"


def test_features_of_a_trained_model_use_the_vocabulary():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60),
                          "y": rng.choice([0, 1], 60)})
    _, metadata = train_model(frame, TrainingSettings(
        target="y", task="classification", estimator="logistic_regression"))
    assert {f.name: f.kind for f in metadata.features} == {"x": kinds.NUMERIC,
                                                           "c": kinds.CATEGORICAL}


def test_importing_the_vocabulary_imports_neither_pandas_nor_pyarrow():
    code = ("import sys, kfp_mlops.data.kinds; "
            "print(any(m in sys.modules for m in ('pandas', 'pyarrow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
