"""Your own KFP training component between the suite's data gate and its release gates.

The team's training code stays theirs (``train_my_model`` below: its own feature step
and estimator); the suite does the rest: ingest a dataset version, validate it against
the stored schema (data gate), split, and after training evaluate, bless against the
champion (model gate), publish, render the model card, serve-test (serving gate) and
deploy. The one contract between them is the model folder the training component writes
with :func:`kfp_mlops.model.own.write_trained_model` (docs/tuning-and-card.md, "Your own
training component").

Compile it for a cluster::

    python examples/own_training/pipeline.py my-pipeline.yaml

or run it on this machine (kfp.local, as the suite's tests do)::

    python examples/own_training/pipeline.py --local --data breast_cancer
"""

import sys

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from kfp_mlops.components.data import (
    check_data,
    compute_statistics,
    ingest,
    split_data,
    validate_data,
)
from kfp_mlops.components.image import DEFAULT_IMAGE
from kfp_mlops.components.model import bless_model, evaluate, model_card, publish, skip_step
from kfp_mlops.components.serving import deploy, infra_validate


# Your component: any code, any image that has kfp-mlops (for the contract helper) and
# the libraries your model unpickles with. Here: the suite's image.
@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def train_my_model(
    train_data: Input[Dataset], target: str, task: str, model: Output[Model],
    model_name: str = "",
):
    """Train the team's own model: its own feature step, then gradient boosting.

    One scikit-learn Pipeline holds both, so serving computes the same.
    """
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from kfp_mlops.model.own import write_trained_model

    frame = pd.read_parquet(train_data.path)
    frame = frame[frame[target].notna()]
    inputs = frame.drop(columns=[target]).select_dtypes("number").astype("float64")
    y = frame[target].astype(str) if task == "classification" else frame[target]
    estimator = (GradientBoostingClassifier(random_state=0) if task == "classification"
                 else GradientBoostingRegressor(random_state=0))
    # The team's own feature step. Whatever the Pipeline holds must unpickle where the
    # model is served: a numpy function or scikit-learn class does; a function defined in
    # this component body would not (put such code in a package the image installs).
    pipeline = Pipeline([
        ("fill", FunctionTransformer(np.nan_to_num)),  # missing -> 0
        ("model", estimator),
    ])
    pipeline.fit(inputs, y)
    write_trained_model(
        pipeline, inputs, target=target, task=task, folder=model.path,
        params={"features": "numeric columns, missing as 0"},
        name=model_name or None,
    )
    model.metadata.update({"framework": "scikit-learn", "estimator": type(estimator).__name__})


@dsl.pipeline(name="own-training-our-gates",
              description="A team's own training component between kfp-mlops's gates.")
def own_training_pipeline(data: str = "breast_cancer", target: str = "auto",
                          task: str = "auto", store: str = "/tmp/mlops-store",
                          model_name: str = "auto", namespace: str = ""):
    """Data gate, your training, evaluate, model gate, publish and card, serving gate, deploy."""
    ingested = ingest(source=data, store=store)
    dataset = ingested.outputs["dataset"]
    checked = check_data(dataset=dataset, source=data, target=target, task=task,
                         model_name=model_name)
    stats = compute_statistics(dataset=dataset)
    data_gate = validate_data(statistics=stats.outputs["statistics"], store=store,
                              schema_name=checked.outputs["model_name"], update_schema=False,
                              warn_only=False, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
    with dsl.If(data_gate.outputs["passed"] == True, name="data-valid"):  # noqa: E712
        split = split_data(dataset=dataset, target=checked.outputs["target"],
                           task=checked.outputs["task"], test_size=0.2, seed=42)
        trained = train_my_model(train_data=split.outputs["train_data"],
                                 target=checked.outputs["target"], task=checked.outputs["task"],
                                 model_name=checked.outputs["model_name"])
        evaluated = evaluate(model=trained.outputs["model"], test_data=split.outputs["test_data"])
        model_gate = bless_model(
            model=trained.outputs["model"], metrics=evaluated.outputs["metrics"],
            test_data=split.outputs["test_data"], store=store,
            model_name=checked.outputs["model_name"], task=checked.outputs["task"],
            quality_metric="auto", quality_threshold="auto", policy="auto",
            force_new_version=False)
        with dsl.If(model_gate.outputs["passed"] == True, name="model-blessed"):  # noqa: E712
            published = publish(
                model=trained.outputs["model"], metrics=evaluated.outputs["metrics"],
                store=store, model_name=checked.outputs["model_name"], stage="staging",
                reason=model_gate.outputs["reason"], blessing=model_gate.outputs["blessing"],
                dataset_version=ingested.outputs["dataset_version"],
                run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
            model_card(model=trained.outputs["model"], evaluation=evaluated.outputs["evaluation"],
                       blessing=model_gate.outputs["blessing"],
                       model_version=published.outputs["version"],
                       run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
            serving_gate = infra_validate(model=trained.outputs["model"],
                                          test_data=split.outputs["test_data"])
            with dsl.If(serving_gate.outputs["passed"] == True, name="serving-valid"):  # noqa: E712
                deploy(store=store, model_name=published.outputs["model_name"],
                       version=published.outputs["version"],
                       blessing=model_gate.outputs["blessing"],
                       infra_validation=serving_gate.outputs["validation"],
                       namespace=namespace, canary_traffic_percent=0)
            with dsl.Else(name="deploy-skipped"):
                skip_step(step="deploy", reason=serving_gate.outputs["reason"]) \
                    .set_display_name("deploy-skipped")
        with dsl.Else(name="publish-skipped"):
            skip_step(step="publish", reason=model_gate.outputs["reason"]) \
                .set_display_name("publish-skipped")
    with dsl.Else(name="training-skipped"):
        skip_step(step="training", reason=data_gate.outputs["reason"]) \
            .set_display_name("training-skipped")


if __name__ == "__main__":
    if "--local" in sys.argv:
        from kfp_mlops.app.local.runner import run_locally

        data = sys.argv[sys.argv.index("--data") + 1] if "--data" in sys.argv else "breast_cancer"
        result = run_locally(own_training_pipeline, {"data": data}, "runs")
        print("succeeded" if result.succeeded else f"failed: {result.error}", result.gates())
    else:
        from kfp import compiler

        compiler.Compiler().compile(own_training_pipeline,
                                    sys.argv[1] if len(sys.argv) > 1 else "own-training.yaml")
