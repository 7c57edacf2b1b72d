from kfp import dsl
from kfp.dsl import Dataset, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def batch_predict(
    store: str,
    model: str,
    data: str,
    predictions: Output[Dataset],
    with_probabilities: bool = False,
    keep_columns: str = "",
    ignore_unknown_columns: bool = False,
) -> int:
    """Score a CSV/Parquet file (local or s3://) with a registry version, streaming.

    Args:
        store: Store URI holding the registry.
        model: ``NAME``, ``NAME@VERSION`` or ``NAME@STAGE``.
        data: Input rows: a local path or ``s3://bucket/key`` (Parquet or CSV).
        predictions: Predictions Parquet.
        with_probabilities: Add a ``proba_<class>`` column per class.
        keep_columns: Comma-separated input columns to copy into the output (ids).
        ignore_unknown_columns: Ignore input columns that are neither features, the
            target, columns training dropped nor keep_columns, instead of refusing them.

    Returns:
        The number of rows scored.
    """
    from kfp_mlops.serving import steps

    result = steps.batch_predict(
        store, model, data, predictions.path, with_probabilities=with_probabilities,
        keep_columns=[c for c in keep_columns.split(",") if c],
        ignore_unknown_columns=ignore_unknown_columns,
    )
    predictions.metadata.update({"rows": result.rows, "model": model, "source": data})
    return result.rows
