"""A request a user can paste: ``curl`` for V1 with typical values of the training data.

Values come from the model's dataset version in the store (its first row group, so a
large dataset costs one read of a few MB): the median of each numeric feature and the
most frequent value of each categorical one. With no dataset version at hand, numeric
features get 0 and categorical ones an empty string, and the request still has the shape
the server checks.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path
from typing import Any

from kfp_mlops.data.kinds import NUMERIC
from kfp_mlops.model.package import ModelMetadata


def typical_row(metadata: ModelMetadata, data_path: str | Path | None) -> dict[str, Any]:
    """One instance: each feature's median (numeric) or most frequent value."""
    columns: dict[str, Any] = {}
    if data_path is not None:
        import pyarrow.parquet as pq

        names = [f.name for f in metadata.features]
        columns = pq.ParquetFile(data_path).read_row_group(0, columns=names).to_pydict()
    row: dict[str, Any] = {}
    for feature in metadata.features:
        values = [v for v in columns.get(feature.name, []) if v is not None and v == v]
        if feature.kind == NUMERIC:
            values = sorted(float(v) for v in values)
            median = values[len(values) // 2] if values else 0.0
            row[feature.name] = int(median) if "int" in feature.dtype else round(median, 4)
        else:
            texts = [str(v) for v in values]
            row[feature.name] = max(set(texts), key=texts.count) if texts else ""
    return row


def curl_example(base_url: str, model_name: str, row: dict[str, Any]) -> str:
    """The V1 predict request for ``row`` as a shell command."""
    body = json.dumps({"instances": [row]})
    return (f"curl -s -H 'Content-Type: application/json' "
            f"{base_url}/v1/models/{model_name}:predict -d {shlex.quote(body)}")


def example_request(store, metadata: ModelMetadata, base_url: str, model_name: str) -> str:
    """The curl command, with values from the model's dataset version when the store has it."""
    from kfp_mlops.data.versions import DATA_FILE
    from kfp_mlops.storage import StoreError

    with tempfile.TemporaryDirectory() as tmp:
        data_path: Path | None = None
        if metadata.dataset_version:
            data_path = Path(tmp) / DATA_FILE
            try:
                store.download_file(f"datasets/{metadata.dataset_version}/{DATA_FILE}", data_path)
            except StoreError:
                data_path = None
        return curl_example(base_url, model_name, typical_row(metadata, data_path))
