"""Command-line presentation: progress while kfp.local runs, and readable summaries.

kfp.local prints every task's full executor input and log to ``sys.stdout``. During a
run the CLI swaps ``sys.stdout`` for a :class:`RunLog`, which keeps that full log in a
file, shows one progress line per task on stderr, and remembers the last error a task
raised so a failure can be explained in one paragraph.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_ERROR = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


class RunLog:
    """A file-like sink for kfp.local output: full log to a file, progress to stderr."""

    def __init__(self, log_path: Path, progress: IO[str] | None):
        self.log_path = log_path
        self._file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._progress = progress
        self._pending = ""
        self._started: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.last_error: str | None = None
        self.failed_task: str | None = None

    def write(self, text: str) -> int:
        """Log ``text`` and react to whole lines."""
        self._file.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._on_line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        """Flush the log file."""
        self._file.flush()

    def isatty(self) -> bool:
        """Never a terminal: kfp.local must not colour-code into the file."""
        return False

    def close(self) -> None:
        """Close the log file."""
        self._file.close()

    def _on_line(self, line: str) -> None:
        if match := _STARTED.search(line):
            self._started[match.group(1)] = time.monotonic()
        elif match := _FINISHED.search(line):
            task, status = match.groups()
            took = time.monotonic() - self._started.get(task, time.monotonic())
            self.durations[task] = round(took, 3)
            ok = status == "SUCCESS"
            if not ok:
                self.failed_task = task
            if self._progress:
                mark = "ok  " if ok else "FAIL"
                print(f"  [{mark}] {task:<22} {took:6.1f} s", file=self._progress, flush=True)
        elif match := _ERROR.match(line):
            self.last_error = f"{match.group(1)}: {match.group(2).strip()}"


@contextlib.contextmanager
def capture_run_output(log_path: Path, show_progress: bool) -> Iterator[RunLog]:
    """Route ``sys.stdout`` (and kfp.local's logging) into a :class:`RunLog`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sink = RunLog(log_path, sys.stderr if show_progress else None)
    with contextlib.redirect_stdout(sink):  # type: ignore[type-var]
        try:
            yield sink
        finally:
            sink.close()


def format_metrics(metrics: dict[str, Any]) -> str:
    """``accuracy 0.9855  f1_macro 0.9829`` (floats to 4 places)."""
    return "  ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )


def format_summary(summary: dict[str, Any]) -> str:
    """A readable multi-line summary of a training run (the JSON form, as text)."""
    lines = []
    data = summary.get("data") or {}
    if data:
        version = data.get("dataset_version")
        seen = "" if not version else (" (new)" if data.get("new_version") else " (seen before)")
        lines.append(
            f"Data:      {data.get('source')}: {data.get('rows')} rows, dataset version "
            f"{version or '-'}{seen}"
        )
    if summary.get("task"):
        lines.append(f"Task:      {summary['task']} of target {summary.get('target')!r}")
    if summary.get("estimator"):
        lines.append(f"Model:     {summary['estimator']}")
    for column, reason in (summary.get("dropped_columns") or {}).items():
        lines.append(f"Dropped:   {column!r}: {reason}")
    if summary.get("tuning"):
        lines.append(f"Tuning:    {summary['tuning'].splitlines()[0]}")
    if summary.get("metrics"):
        lines.append(f"Metrics:   {format_metrics(summary['metrics'])}")
    if summary.get("monitor"):
        watch = summary["monitor"]
        decision = "RETRAIN" if watch.get("retrain") else "KEEP"
        lines.append(f"Monitor:   [{decision}] {watch.get('reason')}")
    for name, gate in (summary.get("gates") or {}).items():
        mark = "PASS" if gate["passed"] else "STOP"
        lines.append(f"Gate:      [{mark}] {name}: {gate['reason']}")
    for message in summary.get("skipped") or []:
        lines.append(f"Skipped:   {message}")
    if summary.get("model_uri"):
        lines.append(
            f"Published: {summary.get('model_name')} version {summary.get('version')} -> "
            f"{summary['model_uri']}"
        )
    else:
        lines.append("Published: nothing (a gate stopped the run)")
    if summary.get("deploy"):
        lines.append(f"Deploy:    {summary['deploy']}")
    for name, path in (summary.get("reports") or {}).items():
        lines.append(f"Report:    {name}: {path}")
    lines.append(f"Run dir:   {summary.get('run_dir')}")
    if summary.get("log"):
        lines.append(f"Full log:  {summary['log']}")
    return "\n".join(lines)
