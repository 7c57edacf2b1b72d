from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def compute_statistics(dataset: Input[Dataset], statistics: Output[Artifact]):
    """Per-column statistics, streamed over Parquet row groups (bounded memory).

    Args:
        dataset: Parquet data.
        statistics: JSON: per column count, missing share; numbers: mean, std, min,
            max, quantiles, histogram; categories: distinct count and top values.
    """
    from kfp_mlops.data.stats import compute_statistics as compute

    stats = compute(dataset.path)
    with open(statistics.path, "w") as handle:
        handle.write(stats.to_json())
    statistics.metadata.update({"rows": stats.rows, "columns": len(stats.columns)})
