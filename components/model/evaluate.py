from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
):
    """Score the model on held-out rows; the KFP UI shows the metrics and curves.

    Args:
        model: Model folder from ``train``.
        test_data: Held-out rows (Parquet).
        metrics: Scalar metrics (accuracy, f1_macro, roc_auc, ... or r2, rmse, mae).
        classification_metrics: Confusion matrix and, for binary targets, the ROC curve
            (empty for regression).
    """
    from kfp_mlops.model.steps import evaluate_step

    evaluation, _ = evaluate_step(model.path, test_data.path)
    for name, value in evaluation.metrics.items():
        metrics.log_metric(name, value)
    if evaluation.confusion_matrix is not None:
        classification_metrics.log_confusion_matrix(evaluation.labels, evaluation.confusion_matrix)
    if evaluation.roc is not None:
        classification_metrics.log_roc_curve(
            evaluation.roc["fpr"], evaluation.roc["tpr"], evaluation.roc["thresholds"]
        )
