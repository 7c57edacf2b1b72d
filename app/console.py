"""Command-line presentation: progress while kfp.local runs, and readable summaries.

kfp.local prints every task's full executor input and log to ``sys.stdout``. During a
run the CLI swaps ``sys.stdout`` for a :class:`RunLog`, which keeps that full log in a
file, shows a progress line on stderr when each task starts and ends (and every
:data:`TICK_S` seconds while a long one runs), and remembers the last error a task
raised so a failure can be explained in one paragraph.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
# What score-shards logs as each shard finishes (components/serving/score_shards.py).
_SHARD = re.compile(r"shard (\d+/\d+) scored: (.+)$")
_ERROR = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")
TICK_S = 15.0  # a "still running" line this often while a task runs


class RunLog:
    """A file-like sink for kfp.local output: full log to a file, progress to stderr."""

    def __init__(self, log_path: Path, progress: IO[str] | None, total: int | None = None,
                 names: dict[str, str] | None = None):
        self.log_path = log_path
        self.names = names or {}  # task name -> display name (app.local.runner.display_names)
        self.total = total  # tasks a run that passes every gate runs (the "/13")
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

    def _say(self, text: str) -> None:
        if self._progress:
            print(text, file=self._progress, flush=True)

    def _on_line(self, line: str) -> None:
        if match := _STARTED.search(line):
            self._started[match.group(1)] = time.monotonic()
            count = f"{len(self._started)}/{self.total}" if self.total else len(self._started)
            self._say(f"  [{count:>5}] {self._shown(match.group(1))} ...")
        elif match := _FINISHED.search(line):
            task, status = match.groups()
            took = time.monotonic() - self._started.get(task, time.monotonic())
            self.durations[task] = round(took, 3)
            ok = status == "SUCCESS"
            if not ok:
                self.failed_task = task
            self._say(f"  [{'ok' if ok else 'FAIL':>5}] {self._shown(task):<22} {took:6.1f} s")
        elif match := _SHARD.search(line):
            self._say(f"  {'':7}shard {match.group(1)}: {match.group(2)}")
        elif match := _ERROR.match(line):
            self.last_error = f"{match.group(1)}: {match.group(2).strip()}"

    def tick(self) -> None:
        """Say how long each unfinished task has run, once it has run for a while."""
        now = time.monotonic()
        for task, started in list(self._started.items()):
            if task not in self.durations and now - started >= TICK_S:
                self._say(f"  [  ...] {self._shown(task):<22} {now - started:6.0f} s, "
                          "still running")

    def _shown(self, task: str) -> str:
        return self.names.get(task, task)


def _tick_until(stop: threading.Event, sink: RunLog) -> None:
    while not stop.wait(TICK_S):
        sink.tick()


@contextlib.contextmanager
def capture_run_output(
    log_path: Path, show_progress: bool, total: int | None = None,
    names: dict[str, str] | None = None,
) -> Iterator[RunLog]:
    """Route ``sys.stdout`` (and kfp.local's logging) into a :class:`RunLog`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sink = RunLog(log_path, sys.stderr if show_progress else None, total, names)
    stop = threading.Event()
    ticker = threading.Thread(target=_tick_until, args=(stop, sink), daemon=True)
    if show_progress:
        ticker.start()
    with contextlib.redirect_stdout(sink):  # type: ignore[type-var]
        try:
            yield sink
        finally:
            stop.set()
            sink.close()


def format_metrics(metrics: dict[str, Any]) -> str:
    """``accuracy 0.9855  f1_macro 0.9829`` (floats to 4 places)."""
    return "  ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )


def describe_policy(spec: str) -> str:
    """A blessing policy string in words (the string itself if it does not parse)."""
    from kfp_mlops.model.blessing import BlessingPolicy, PolicyError

    try:
        return f"{BlessingPolicy.parse(spec).describe()} (model gate)"
    except PolicyError:
        return spec


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
    for column, tokens in (summary.get("placeholders") or {}).items():
        values = ", ".join(f"{n} {token!r}" for token, n in tokens.items())
        lines.append(f"Numbers:   {column!r} read as numbers; {values} read as missing")
    for column, parts in (summary.get("date_features") or {}).items():
        lines.append(f"Dates:     {column!r} -> calendar features {', '.join(parts)}")
    for column, reason in (summary.get("dropped_columns") or {}).items():
        lines.append(f"Dropped:   {column!r}: {reason}")
    if summary.get("tuning"):
        lines.append(f"Tuning:    {summary['tuning'].splitlines()[0]}")
    if summary.get("metrics"):
        lines.append(f"Metrics:   {format_metrics(summary['metrics'])}")
    watch = summary.get("monitor") or {}
    if watch:
        decision = "RETRAIN" if watch.get("retrain") else "KEEP"
        lines.append(f"Monitor:   [{decision}] {watch.get('headline') or watch.get('reason')}")
        if watch.get("quality"):
            lines.append(f"Quality:   {watch['quality']}")
        if watch.get("headline"):
            lines.append(f"Why:       {watch.get('reason')}")
    if summary.get("blessing_policy"):
        lines.append(f"Policy:    {describe_policy(summary['blessing_policy'])}")
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
    elif summary.get("identical_to"):
        lines.append(
            f"Published: nothing new: identical to {summary.get('model_name') or 'the model'} "
            f"version {summary['identical_to']} (same data, settings and code; "
            "--force-new-version publishes it anyway)"
        )
    elif watch and not summary.get("stopped_by"):
        if not watch.get("retrain"):
            lines.append("Published: nothing: the production version stays (no retraining "
                         "needed)")
        elif summary.get("task"):  # continuous training ran and published nothing
            lines.append("Published: nothing (see the gates and skips above)")
        else:
            lines.append("Published: nothing: monitoring only; `kfp-mlops continuous` (or "
                         "`kfp-mlops run`) retrains")
    else:
        lines.append(f"Published: nothing (stopped by {summary.get('stopped_by') or 'a gate'})")
    if summary.get("deploy"):
        lines.append(f"Deploy:    {summary['deploy']}")
    for name, path in (summary.get("reports") or {}).items():
        if name == "model-card-refused/card":
            lines.append(f"Card:      {path} (the refused model's card: the gate's reason "
                         "and the comparison with the champion)")
        else:
            lines.append(f"Report:    {name}: {path}")
    lines.append(f"Run dir:   {summary.get('run_dir')}")
    if summary.get("log"):
        lines.append(f"Full log:  {summary['log']}")
    return "\n".join(lines)
