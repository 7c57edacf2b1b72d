"""A gate's verdict as a file, re-checked by the steps that act on it.

A pipeline runs ``publish`` and ``deploy`` only inside ``dsl.If`` branches, but control
flow is one wiring mistake away from publishing a rejected model. So, as TFX's Pusher
reads the ModelBlessing artifact itself, each gate also writes its verdict to an
artifact (``{"passed": ..., "reason": ..., ...}``) and the acting steps take those
artifacts as inputs and refuse unless every one passed. Import-free: gate tasks start fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kfp_mlops.errors import KfpMlopsError


class GateNotPassedError(KfpMlopsError, RuntimeError):
    """A step was asked to act on a model a gate did not pass (or with no verdict)."""


def write_verdict(path: str | Path, passed: bool, reason: str, **details: Any) -> dict[str, Any]:
    """Write the verdict JSON to ``path``; return it (for the artifact's metadata)."""
    verdict = {"passed": bool(passed), "reason": reason, **details}
    Path(path).write_text(json.dumps(verdict))
    return verdict


def read_verdict(path: str | Path, gate: str) -> dict[str, Any]:
    """The verdict a gate wrote; :class:`GateNotPassedError` if it is missing or unreadable."""
    try:
        verdict = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise GateNotPassedError(
            f"no readable verdict from the {gate} gate at {path} ({exc}); wire the gate's "
            "verdict artifact into this step"
        ) from None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("passed"), bool):
        raise GateNotPassedError(f"the {gate} gate's verdict at {path} has no boolean 'passed'")
    return verdict


def require_passed(path: str | Path, gate: str, action: str) -> dict[str, Any]:
    """The gate's verdict, if it passed; otherwise refuse ``action`` with the gate's reason."""
    verdict = read_verdict(path, gate)
    if not verdict["passed"]:
        raise GateNotPassedError(
            f"refusing to {action}: the {gate} gate did not pass ({verdict.get('reason')}). "
            "Nothing was changed; run this step only in the gate's passing branch"
        )
    return verdict
