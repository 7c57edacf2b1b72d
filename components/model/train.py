from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def train(
    train_data: Input[Dataset],
    target: str,
    task: str,
    model: Output[Model],
    estimator: str = "auto",
    params: str = "{}",
    seed: int = 42,
    data_sha256: str = "",
    dataset_version: str = "",
    model_name: str = "",
):
    """Fit a scikit-learn Pipeline (imputation, scaling, one-hot encoding, estimator).

    Args:
        train_data: Training rows (Parquet).
        target: Target column.
        task: ``classification`` or ``regression``.
        model: Model folder: ``model.joblib`` plus ``metadata.json``.
        estimator: ``auto`` (hist_gradient_boosting), ``random_forest``,
            ``logistic_regression`` (classification), ``ridge`` (regression), ``xgboost``,
            ``lightgbm``, or an import path (``xgboost.XGBClassifier``, ``pkg.mod:Class``).
        params: Estimator parameters as a JSON object, e.g. ``{"max_depth": 3}``.
        seed: Random seed of the estimator.
        data_sha256: sha256 of the ingested data, recorded in the metadata.
        dataset_version: Dataset version id, recorded in the metadata.
        model_name: Registry name, recorded so reports can name the model before publishing.
    """
    from kfp_mlops.model import steps
    from kfp_mlops.model.settings import TrainingSettings

    settings = TrainingSettings.from_parameters(
        target=target, task=task, estimator=estimator, params=params, seed=seed)
    metadata = steps.train(
        train_data.path, model.path, settings, data_sha256=data_sha256 or None,
        dataset_version=dataset_version or None, model_name=model_name or None,
    )
    model.metadata.update({
        "framework": "scikit-learn", "framework_version": metadata.sklearn_version,
        "estimator": metadata.estimator, "task": task, "model_sha256": metadata.model_sha256,
        "dropped_columns": metadata.dropped_columns, "date_features": metadata.date_features,
        "estimator_package": metadata.estimator_package or "",
        "estimator_package_version": metadata.estimator_package_version or "",
    })
