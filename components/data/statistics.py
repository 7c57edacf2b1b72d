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
    from kfp_mlops.data import steps

    stats = steps.compute_statistics(dataset.path, statistics.path)
    statistics.metadata.update({"rows": stats.rows, "columns": len(stats.columns)})
