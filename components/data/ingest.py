from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def ingest(
    source: str, dataset: Output[Dataset]
) -> NamedTuple("IngestOutputs", [("data_sha256", str), ("rows", int)]):
    """Read a CSV/Parquet file (local path or s3:// URI) or a bundled data set into Parquet.

    Args:
        source: Local path, ``s3://bucket/key`` (CSV or Parquet), or a bundled name
            (``penguins``, ``breast_cancer``, ``wine``, ``iris``, ``diabetes``).
        dataset: The data as one Parquet file.

    Returns:
        data_sha256: sha256 of the Parquet file; rows: its row count.
    """
    from collections import namedtuple

    from kfp_mlops.data.ingest import ingest_to_parquet

    result = ingest_to_parquet(source, dataset.path)
    dataset.metadata.update(
        {"rows": result.rows, "columns": result.columns, "sha256": result.sha256,
         "source": result.source_uri, "format": "parquet"}
    )
    return namedtuple("IngestOutputs", ["data_sha256", "rows"])(result.sha256, result.rows)
