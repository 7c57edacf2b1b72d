"""The KFP API double of tests/automation, plus the run details a finished run reports.

KFP 2.x answers ``GET /apis/v2beta1/runs/{id}`` with ``run_details.task_details``: one
entry per executed task, named by its pipeline-spec task name (``display_name``, taken
from the Argo workflow node) with its ``state``. ``final_tasks`` is what a finished run
reports here, e.g. ``{"display_name": "skip-step-2", "state": "SUCCEEDED"}`` for a run
whose model gate stopped publishing. Everything else is the shared double, unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.automation.kfp_api_double import KfpApiDouble

FINAL = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")


@dataclass
class KfpApiDoubleWithTasks(KfpApiDouble):
    """A KFP API double whose finished runs carry ``run_details.task_details``."""

    final_tasks: list[dict[str, Any]] = field(default_factory=list)

    def _get_run(self, run_id: str) -> dict[str, Any]:
        run = super()._get_run(run_id)
        if run["state"] in FINAL and self.final_tasks and "run_details" not in run:
            run["run_details"] = {"task_details": [
                {"run_id": run_id, "task_id": str(uuid.uuid4()), **task}
                for task in self.final_tasks
            ]}
        return run
