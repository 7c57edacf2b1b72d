from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Model, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def model_card(
    model: Input[Model],
    evaluation: Input[Artifact],
    card: Output[HTML],
    summary: Output[Markdown],
    blessing: Input[Artifact] = None,
    intended_use: str = "auto",
    # 0 and "" mean unset: kfp.local 2.17 cannot pass None to an int parameter.
    model_version: int = 0,
    run_id: str = "",
):
    """Render the model card (HTML, self-contained) and a Markdown summary; the KFP UI shows both.

    Args:
        model: Model folder from ``train``; only its metadata is read.
        evaluation: The ``evaluate`` step's evaluation (JSON): the metrics on every
            held-out row, as in the run's metrics panel, and the numbers behind the plots.
        card: The card: header, metrics, plots (confusion matrix, ROC, precision-recall,
            calibration, residuals, permutation importance), champion comparison, data
            summary, lineage and intended use, in one HTML page with embedded images.
        summary: Metrics, blessing verdict and lineage as Markdown.
        blessing: The ``bless-model`` verdict, whose champion comparison the card shows;
            none: the card has no comparison (reusing the card outside the pipeline).
        intended_use: What the model is for; ``auto``: a conservative statement from its
            metadata.
        model_version: The version ``publish`` gave the model; unset: the card says "not
            yet published" (or the folder's own version).
        run_id: The run that published it (the pipeline job name); unset: the folder's.

    """
    from kfp_mlops.model import steps

    metadata = steps.model_card(model.path, evaluation.path, card.path, summary.path,
                                None if blessing is None else blessing.path, intended_use,
                                version=model_version or None, run_id=run_id or None)
    card.metadata.update({"task": metadata.task, "estimator": metadata.estimator})


COMPONENTS = [model_card]
