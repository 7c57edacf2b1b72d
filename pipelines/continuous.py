"""The continuous training pipeline: monitor a batch, retrain only on drift."""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.model import skip_step
from kfp_mlops.model.run_parameters import default, described
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
)
from kfp_mlops.pipelines.monitoring import add_monitoring_steps
from kfp_mlops.pipelines.steps import TrainingInputs, add_training_steps, trial_loop_pipeline

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
    @described(
        "Retrain a model on a batch when the batch drifted from its training data.",
        data="The new batch: CSV or Parquet URI, or a bundled data set name.",
        model_name="Registry name; its production version's dataset is the reference.",
        estimated_drop="Also retrain when accuracy (MAE for regression) is estimated\n"
        "this much worse than on the version's test rows (0.05), before any label\n"
        "arrives; 0: drift alone decides.",
    )
    def continuous_training_pipeline(
        data: str,
        model_name: str,
        target: str = default("target"),
        task: str = default("task"),
        store: str = DEFAULT_CLUSTER_STORE,
        force: bool = default("force"),
        drift_share: float = default("drift_share"),
        estimator: str = default("estimator"),
        params: str = default("params"),
        test_size: float = default("test_size"),
        seed: int = default("seed"),
        quality_metric: str = default("quality_metric"),
        quality_threshold: str = default("quality_threshold"),
        blessing_policy: str = default("blessing_policy"),
        namespace: str = default("namespace"),
        canary_traffic_percent: int = default("canary_traffic_percent"),
        pushgateway: str = default("pushgateway"),
        n_trials: int = default("n_trials"),
        force_new_version: bool = default("force_new_version"),
        model_registry: str = default("model_registry"),
        estimated_drop: float = default("estimated_drop"),
    ):
        watch = add_monitoring_steps(data=data, store=store, model_name=model_name,
                                     drift_share=drift_share, force=force,
                                     pushgateway=pushgateway,
                                     estimated_drop=estimated_drop, cluster=cluster)
        with dsl.If(watch.outputs["retrain"] == True, name="retrain"):  # noqa: E712
            # No update_schema, warn_only or search_space here: their defaults.
            add_training_steps(TrainingInputs.pick(locals()), cluster=cluster,
                               repeated_as="retrain-", trial_loop=trial_loop)
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
