"""The continuous training pipeline: monitor a batch, retrain only on drift."""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.model import skip_step
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
)
from kfp_mlops.pipelines.monitoring import add_monitoring_steps
from kfp_mlops.pipelines.steps import TRAINING_DEFAULTS as DEFAULTS
from kfp_mlops.pipelines.steps import add_training_steps, trial_loop_pipeline

CONTINUOUS_NAME = "kfp-mlops-continuous-training"


def build_continuous_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None
):
    """Build the continuous training pipeline: monitor, then retrain only on drift."""
    # The trials as pods (cluster), built first: no pipeline is defined in another's body.
    trial_loop = trial_loop_pipeline(settings, cluster) if cluster is not None else None

    @dsl.pipeline(
        name=CONTINUOUS_NAME,
        description="Monitor a new batch; on drift (or when forced, or with no production "
        "model yet) retrain, validate, bless, serve-test, deploy and promote.",
    )
    def continuous_training_pipeline(
        data: str,
        model_name: str,
        target: str = "auto",
        task: str = "auto",
        store: str = DEFAULT_CLUSTER_STORE,
        force: bool = False,
        drift_share: float = 0.5,
        estimator: str = "auto",
        params: str = "{}",
        test_size: float = DEFAULTS.test_size,
        seed: int = DEFAULTS.seed,
        quality_metric: str = "auto",
        quality_threshold: str = "auto",
        blessing_policy: str = "auto",
        namespace: str = "",
        canary_traffic_percent: int = 0,
        pushgateway: str = "",
        n_trials: int = DEFAULTS.n_trials,
        force_new_version: bool = False,
        model_registry: str = "",
        estimated_drop: float = 0.0,
    ):
        """Retrain a model on a batch when the batch drifted from its training data.

        Args:
            data: The new batch: CSV or Parquet URI, or a bundled data set name.
            model_name: Registry name; its production version's dataset is the reference.
            target: Target column; auto takes the bundled set's own.
            task: classification or regression; auto infers it from the target.
            store: Store URI for datasets, schemas and the model registry (s3://bucket/prefix).
            force: Retrain even when the batch did not drift.
            drift_share: Share of drifted features (0-1) that counts as drift.
            estimator: hist_gradient_boosting, random_forest, logistic_regression,
                ridge, xgboost, lightgbm, or an import path (xgboost.XGBClassifier,
                pkg.module:Class); auto picks hist_gradient_boosting.
            params: Estimator parameters as a JSON object, e.g. {"max_iter": 200}.
            test_size: Share of labelled rows held out for evaluation (0-1).
            seed: Seed of the split, the estimator and the tuning search.
            quality_metric: Metric of the model gate; auto is accuracy or r2.
            quality_threshold: The gate's minimum for that metric; auto is 0.7 accuracy
                or 0.2 r2.
            blessing_policy: A full gate policy, e.g. accuracy>=0.8,f1_macro>=0.7;tolerance=0.01;
                replaces the two above; auto builds one from them.
            namespace: Kubernetes namespace of the InferenceService; empty promotes in
                the registry only.
            canary_traffic_percent: Traffic share (1-99) for the new revision before
                promotion; 0 rolls out at once.
            pushgateway: Prometheus Pushgateway host:port for the drift gauges; empty: none.
            n_trials: Tuning candidates cross-validated in parallel before training; 0
                or 1 trains with params as given.
            force_new_version: Publish even when a published version was trained from the
                same data, settings and code (otherwise nothing new is published).
            model_registry: Kubeflow Model Registry to register versions, stages and the
                InferenceService in (kubeflow: the in-cluster service); empty: none.
            estimated_drop: Also retrain when accuracy (MAE for regression) is estimated
                this much worse than on the version's test rows (0.05), before any label
                arrives; 0: drift alone decides.
        """
        watch = add_monitoring_steps(data=data, store=store, model_name=model_name,
                                     drift_share=drift_share, force=force,
                                     pushgateway=pushgateway,
                                     estimated_drop=estimated_drop, cluster=cluster)
        with dsl.If(watch.outputs["retrain"] == True, name="retrain"):  # noqa: E712
            add_training_steps(
                data=data, target=target, task=task, store=store, model_name=model_name,
                estimator=estimator, params=params, test_size=test_size, seed=seed,
                quality_metric=quality_metric, quality_threshold=quality_threshold,
                blessing_policy=blessing_policy, update_schema=False, warn_only=False,
                namespace=namespace, canary_traffic_percent=canary_traffic_percent,
                n_trials=n_trials, force_new_version=force_new_version, cluster=cluster,
                model_registry=model_registry,
                repeated_as="retrain-",
                trial_loop=trial_loop,
            )
        with dsl.Else(name="retrain-skipped"):
            skip_step(step="retraining", reason=watch.outputs["reason"]) \
                .set_display_name("retrain-skipped")
        finish_tasks(settings, cluster)

    return continuous_training_pipeline


# `continuous_training_pipeline` is what `kfp dsl compile --py pipelines/continuous.py`
# finds: the cluster form, as `kfp-mlops compile` writes it with its defaults.
__getattr__, __dir__ = module_pipeline(
    "continuous_training_pipeline", build_continuous_pipeline, globals()
)
