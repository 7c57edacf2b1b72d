from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def ingest(
    source: str, dataset: Output[Dataset], store: str = ""
) -> NamedTuple("IngestOutputs", [("dataset_version", str), ("data_sha256", str), ("rows", int)]):
    """Read a CSV/Parquet file (local path or s3:// URI) or a bundled data set.

    The data is published as an immutable, content-addressed dataset version in the
    store (identical content maps to the same version) and passed on as Parquet.

    Args:
        source: Local path, ``s3://bucket/key`` (CSV or Parquet), or a bundled name
            (``penguins``, ``breast_cancer``, ``wine``, ``iris``, ``diabetes``).
        dataset: The data as one Parquet file.
        store: Store URI for the dataset version; empty skips versioning.

    Returns:
        dataset_version: the version id ("" without a store); data_sha256: sha256 of
        the Parquet file; rows: its row count.
    """
    from collections import namedtuple

    from kfp_mlops.data import steps

    result = steps.ingest(source, dataset.path, store or None)
    dataset.metadata.update({
        "rows": result.rows, "columns": result.columns, "sha256": result.sha256,
        "source": result.source_uri, "format": "parquet",
        "dataset_version": result.dataset_version or "", "new_version": result.new_version,
        # Text columns read as numbers: column -> {placeholder: cells made missing}.
        "placeholders": result.placeholders,
    })
    outputs = namedtuple("IngestOutputs", ["dataset_version", "data_sha256", "rows"])
    return outputs(result.dataset_version or "", result.sha256, result.rows)
