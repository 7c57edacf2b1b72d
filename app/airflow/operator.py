"""Airflow drives Kubeflow: run a suite pipeline on a KFP host and wait for its outcome.

:class:`KfpPipelineOperator` compiles the named pipeline with the suite's own
:func:`kfp_mlops.app.automation.submit.submit` (upload as a new pipeline or a new version,
then start a run), then waits: deferred to the triggerer by default
(:class:`KfpRunTrigger` polls ``GET /apis/v2beta1/runs/{id}`` without holding a worker
slot), or polling in the worker with ``deferrable=False``. The Airflow task fails when
the KFP run ends in any state but SUCCEEDED, or when it succeeded but a gate stopped a
step (a ``skip-step`` task ran: see :mod:`kfp_mlops.app.airflow.kfp_runs`). Steps listed in
``allowed_skips`` are normal outcomes: by default the continuous pipeline's
``retraining``, skipped when no drift was found.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from airflow.exceptions import AirflowException
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from kfp_mlops.app.airflow.kfp_runs import KfpRunError, RunOutcome, get_run, read_outcome

DEFAULT_ALLOWED_SKIPS = ("retraining",)
# Consecutive failed polls tolerated (an API server restart, a dropped port-forward).
POLL_ERRORS_TOLERATED = 5


def skip_steps_of(pipeline: str, image: str | None = None) -> dict[str, str]:
    """Compile ``pipeline`` and map its ``skip-step`` task names to the steps they skip."""
    from kfp_mlops.app.airflow.kfp_runs import skip_steps_in_spec
    from kfp_mlops.pipelines.cluster import ClusterConfig
    from kfp_mlops.pipelines.compile import compile_pipelines

    with tempfile.TemporaryDirectory(prefix="kfp-mlops-airflow-") as tmp:
        compile_pipelines(Path(tmp), _settings(image), cluster=ClusterConfig(), names=[pipeline])
        spec = next(yaml.safe_load_all((Path(tmp) / f"{pipeline}.yaml").read_text()))
    return skip_steps_in_spec(spec)


def _settings(image: str | None) -> Any:
    from kfp_mlops.pipelines.cluster import TaskSettings

    return TaskSettings(image=image) if image else TaskSettings()


def _token(token_file: str | None) -> str | None:
    from kfp_mlops.app.automation.submit import read_token

    return read_token(token_file)


class KfpRunTrigger(BaseTrigger):
    """Poll a KFP run until it finishes; fire one event with its :class:`RunOutcome`.

    Serialized into Airflow's database, so it holds no secret: the bearer token is
    re-read from ``token_file`` (or where ``kfp.Client`` looks) on every poll.
    """

    def __init__(self, host: str, run_id: str, skip_steps: Mapping[str, str],
                 allowed_skips: Sequence[str] = DEFAULT_ALLOWED_SKIPS,
                 token_file: str | None = None, poll_interval: float = 30.0):
        super().__init__()
        self.host = host
        self.run_id = run_id
        self.skip_steps = dict(skip_steps)
        self.allowed_skips = list(allowed_skips)
        self.token_file = token_file
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the keyword arguments that rebuild this trigger in the triggerer."""
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "host": self.host, "run_id": self.run_id, "skip_steps": self.skip_steps,
            "allowed_skips": self.allowed_skips, "token_file": self.token_file,
            "poll_interval": self.poll_interval,
        })

    def poll(self) -> RunOutcome:
        """One blocking poll (run in a thread by :meth:`run`)."""
        run = get_run(self.host, self.run_id, _token(self.token_file))
        return read_outcome(run, self.host, self.skip_steps, self.allowed_skips)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the run is final, then yield its outcome (or the polling error)."""
        errors = 0
        while True:
            try:
                outcome = await asyncio.to_thread(self.poll)
            except Exception as exc:  # noqa: BLE001 - reported in the event, not lost
                errors += 1
                if errors >= POLL_ERRORS_TOLERATED:
                    yield TriggerEvent({"status": "error", "run_id": self.run_id,
                                        "message": str(exc)})
                    return
                self.log.warning("poll %s of run %s failed: %s", errors, self.run_id, exc)
            else:
                errors = 0
                if outcome.finished:
                    yield TriggerEvent({"status": "finished", "outcome": outcome.to_dict()})
                    return
                self.log.info("KFP run %s is %s", self.run_id, outcome.state)
            await asyncio.sleep(self.poll_interval)


class KfpPipelineOperator(BaseOperator):
    """Run a kfp-mlops pipeline on Kubeflow Pipelines; fail on a failed run or a gate stop.

    Args:
        pipeline: ``training``, ``continuous-training``, ``monitoring`` or
            ``batch-inference`` (as ``kfp-mlops compile`` names them).
        host: KFP API URL, e.g. ``http://ml-pipeline.kubeflow:8888`` in the cluster.
        arguments: Pipeline parameters (strings are converted to the declared types).
        experiment: KFP experiment; ``None``: ``Default``.
        image: The kfp-mlops image every task runs in; ``None``: the suite's default.
        namespace: Profile namespace (multi-user KFP).
        token_file: Bearer token file; ``None``: where ``kfp.Client`` looks.
        run_name: Name of the KFP run; ``None``: ``<dag_id> <run_id>``.
        service_account: Kubernetes service account of the run's pods.
        allowed_skips: Steps whose skip is a normal outcome, not a failure.
        fail_on_gate_stop: ``False`` logs gate stops but lets the task succeed.
        poll_interval: Seconds between polls of the run.
        deferrable: Wait in the triggerer (no worker slot) instead of the worker.
        timeout: Longest wait for the run; ``None``: the task's ``execution_timeout``
            (deferred) or no limit.

    Returns (XCom): the outcome: ``run_id``, ``state``, ``url``, ``gate_stops`` ...
    """

    template_fields: Sequence[str] = (
        "pipeline", "host", "arguments", "experiment", "image", "namespace", "run_name",
    )

    def __init__(
        self,
        *,
        pipeline: str,
        host: str,
        arguments: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        image: str | None = None,
        namespace: str | None = None,
        token_file: str | None = None,
        run_name: str | None = None,
        service_account: str | None = None,
        allowed_skips: Sequence[str] = DEFAULT_ALLOWED_SKIPS,
        fail_on_gate_stop: bool = True,
        poll_interval: float = 30.0,
        deferrable: bool = True,
        timeout: timedelta | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.host = host
        self.arguments = dict(arguments or {})
        self.experiment = experiment
        self.image = image
        self.namespace = namespace
        self.token_file = token_file
        self.run_name = run_name
        self.service_account = service_account
        self.allowed_skips = list(allowed_skips)
        self.fail_on_gate_stop = fail_on_gate_stop
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.timeout = timeout

    def execute(self, context: Any) -> dict[str, Any]:
        """Submit the pipeline, then wait (deferred or here) and judge the outcome."""
        from kfp_mlops.app.automation.submit import KfpTarget, SubmitError, submit

        skip_steps = skip_steps_of(self.pipeline, self.image)
        name = self.run_name or f"{context['dag'].dag_id} {context['run_id']}"
        target = KfpTarget(host=self.host, namespace=self.namespace, experiment=self.experiment,
                           token=_token(self.token_file), service_account=self.service_account)
        try:
            result = submit(self.pipeline, target, arguments=self.arguments,
                            settings=_settings(self.image), run_name=name)
        except SubmitError as exc:
            raise AirflowException(str(exc)) from None
        self.log.info("started KFP run %s (%s): %s", result.run_id, result.version_name,
                      result.url)
        trigger = KfpRunTrigger(self.host, result.run_id, skip_steps, self.allowed_skips,
                                self.token_file, self.poll_interval)
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete",
                       timeout=self.timeout or self.execution_timeout)
        return self._judge(self._wait_here(trigger))

    def _wait_here(self, trigger: KfpRunTrigger) -> RunOutcome:
        deadline = time.monotonic() + self.timeout.total_seconds() if self.timeout else None
        errors = 0
        while True:
            try:
                outcome = trigger.poll()
                errors = 0
            except KfpRunError as exc:
                errors += 1
                if errors >= POLL_ERRORS_TOLERATED:
                    raise AirflowException(str(exc)) from None
                self.log.warning("poll %s of run %s failed: %s", errors, trigger.run_id, exc)
            else:
                if outcome.finished:
                    return outcome
            if deadline is not None and time.monotonic() > deadline:
                raise AirflowException(
                    f"KFP run {trigger.run_id} did not finish within {self.timeout}; it goes "
                    "on in the cluster: raise timeout, or follow it in the KFP UI"
                )
            time.sleep(self.poll_interval)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: judge the outcome it carries."""
        if event.get("status") != "finished":
            raise AirflowException(
                f"lost track of KFP run {event.get('run_id')}: {event.get('message')}; the run "
                "goes on in the cluster"
            )
        return self._judge(RunOutcome(**event["outcome"]))

    def _judge(self, outcome: RunOutcome) -> dict[str, Any]:
        for stop in outcome.allowed_stops:
            self.log.info("skipped as allowed: %s", stop)
        problem = outcome.problem()
        if problem and (outcome.state != "SUCCEEDED" or self.fail_on_gate_stop):
            raise AirflowException(problem)
        if problem:
            self.log.warning("%s (fail_on_gate_stop=False: the task succeeds)", problem)
        else:
            self.log.info("KFP run %s SUCCEEDED: %s", outcome.run_id, outcome.url)
        return outcome.to_dict()
