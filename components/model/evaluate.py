from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
):
    """Score the model on held-out rows; the KFP UI shows the metrics and curves.

    Args:
        model: Model folder from ``train``.
        test_data: Held-out rows (Parquet).
        metrics: Scalar metrics (accuracy, f1_macro, roc_auc, ... or r2, rmse, mae).
        classification_metrics: Confusion matrix and, for binary targets, the ROC curve
            (empty for regression).
        evaluation: All of it as JSON, plus the numbers behind the model card's other
            plots (precision-recall, calibration, residuals, permutation importance).
    """
    import json

    from kfp_mlops.model import steps

    result, _ = steps.evaluate(model.path, test_data.path, explain=True)
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    if result.confusion_matrix is not None:
        classification_metrics.log_confusion_matrix(result.labels, result.confusion_matrix)
    if result.roc is not None:
        classification_metrics.log_roc_curve(
            result.roc["fpr"], result.roc["tpr"], result.roc["thresholds"]
        )
    with open(evaluation.path, "w", encoding="utf-8") as out:
        json.dump(result.to_dict(), out)
    evaluation.metadata["rows"] = result.rows
