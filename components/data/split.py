from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def split_data(
    dataset: Input[Dataset],
    target: str,
    task: str,
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    test_size: float = 0.2,
    seed: int = 42,
):
    """Seeded train/test split, stratified by class for classification.

    Args:
        dataset: Parquet data.
        target: Target column.
        task: ``classification`` or ``regression``.
        train_data: Training rows (Parquet).
        test_data: Held-out rows (Parquet).
        test_size: Share of rows held out.
        seed: Random seed, so a re-run splits the same way.
    """
    from kfp_mlops.data import steps

    train_rows, test_rows = steps.split_data(
        dataset.path, train_data.path, test_data.path, target, task, test_size, seed
    )
    train_data.metadata["rows"] = train_rows
    test_data.metadata["rows"] = test_rows
