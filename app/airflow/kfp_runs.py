"""Read a KFP run's outcome from the API server: finished or not, failed, or gate-stopped.

A gate that stops a suite pipeline does not fail the KFP run: its ``dsl.Else`` branch
runs the ``skip-step`` component, which records why, and the run ends SUCCEEDED. So an
outcome is judged from two things the KFP API (``GET /apis/v2beta1/runs/{id}``) returns:
the run's ``state``, and ``run_details.task_details``, where each executed task appears
under its pipeline-spec task name (``display_name``; KFP 2.x builds the list from the
Argo workflow's nodes). A ``skip-step``, ``skip-step-2``, ... task that SUCCEEDED means
a gate stopped the step its ``step`` argument names; which step each of those tasks
stands for is read from the compiled pipeline spec (:func:`skip_steps_in_spec`).

No Airflow import: the operator and its trigger both call this, and it is tested alone.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from kfp_mlops.errors import KfpMlopsError

FINISHED_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
_SKIP_TASK = re.compile(r"^skip-step(-\d+)?$")
SKIP_COMPONENT = "comp-skip-step"


class KfpRunError(KfpMlopsError, RuntimeError):
    """The KFP API could not be read, or the run did not end as the caller requires."""


@dataclass(frozen=True)
class RunOutcome:
    """A KFP run as seen from its API resource."""

    run_id: str
    state: str
    url: str
    gate_stops: list[str] = field(default_factory=list)  # "publish (skip-step-2)"
    allowed_stops: list[str] = field(default_factory=list)
    failed_tasks: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def finished(self) -> bool:
        """True once the run is in a final state."""
        return self.state in FINISHED_STATES

    def problem(self) -> str | None:
        """Why the caller should fail, or None when the run succeeded with no gate stop."""
        if self.state != "SUCCEEDED":
            detail = f": failed tasks {', '.join(self.failed_tasks)}" if self.failed_tasks else ""
            error = f" ({self.error})" if self.error else ""
            return (f"KFP run {self.run_id} ended {self.state}{detail}{error}; see its logs "
                    f"at {self.url}")
        if self.gate_stops:
            return (f"KFP run {self.run_id} succeeded but a gate stopped it: "
                    f"{'; '.join(self.gate_stops)} skipped. The gate's reason is in the "
                    f"skip-step task's log at {self.url}")
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an Airflow trigger event's payload and the task's XCom)."""
        return asdict(self)


def skip_steps_in_spec(spec: Mapping[str, Any]) -> dict[str, str]:
    """Map each ``skip-step`` task name (and display name) in a pipeline spec to its step."""
    dags = [spec.get("root", {}).get("dag", {})]
    dags += [c.get("dag", {}) for c in spec.get("components", {}).values()]
    found: dict[str, str] = {}
    for dag in dags:
        for name, body in (dag.get("tasks") or {}).items():
            ref = body.get("componentRef", {}).get("name", "")
            if ref == SKIP_COMPONENT or ref.startswith(SKIP_COMPONENT + "-"):
                step = (body.get("inputs", {}).get("parameters", {}).get("step", {})
                        .get("runtimeValue", {}).get("constant"))
                found[name] = str(step or name)
                # A skip task with a display name (``publish-skipped``, set in
                # pipelines/steps.py) may be listed under it: map both.
                shown = (body.get("taskInfo") or {}).get("name")
                if shown and shown != name:
                    found[shown] = found[name]
    return found


def read_outcome(run: Mapping[str, Any], host: str, skip_steps: Mapping[str, str],
                 allowed_skips: Collection[str] = ()) -> RunOutcome:
    """Judge a run resource (the API's JSON): state, gate stops, failed tasks."""
    run_id = str(run.get("run_id", ""))
    tasks = (run.get("run_details") or {}).get("task_details") or []
    stops, allowed, failed = [], [], []
    for detail in tasks:
        name, state = str(detail.get("display_name", "")), str(detail.get("state", ""))
        if state == "FAILED" and not name.endswith("-driver"):
            failed.append(name)
        if state == "SUCCEEDED" and (name in skip_steps or _SKIP_TASK.match(name)):
            step = skip_steps.get(name, "a step")
            (allowed if step in allowed_skips else stops).append(f"{step} ({name})")
    error = run.get("error") or {}
    return RunOutcome(
        run_id=run_id, state=str(run.get("state") or "PENDING"),
        url=f"{host.rstrip('/')}/#/runs/details/{run_id}", gate_stops=sorted(stops),
        allowed_stops=sorted(allowed), failed_tasks=sorted(set(failed)),
        error=str(error.get("message", "")) if isinstance(error, dict) else str(error),
    )


def get_run(host: str, run_id: str, token: str | None = None,
            timeout_s: float = 30.0) -> dict[str, Any]:
    """``GET /apis/v2beta1/runs/{run_id}``; a :class:`KfpRunError` says what went wrong."""
    url = f"{host.rstrip('/')}/apis/v2beta1/runs/{run_id}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise KfpRunError(
            f"the KFP API server at {host} answered HTTP {exc.code} for run {run_id}"
            + ("; check the token (it needs access to the run's namespace)"
               if exc.code in (401, 403) else "; check the run id and --host")
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise KfpRunError(
            f"cannot reach the KFP API server at {host} ({getattr(exc, 'reason', exc)}) "
            f"while following run {run_id}; the run goes on in the cluster"
        ) from None
    except ValueError:
        raise KfpRunError(f"{url} did not answer JSON; point host at the KFP API") from None
    if not isinstance(body, dict):
        raise KfpRunError(f"{url} answered {type(body).__name__}, not a run")
    return body
