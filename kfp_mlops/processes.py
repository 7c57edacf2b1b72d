"""Process pools of the suite's local runs: how many workers, and how they start.

Tuning's trials, sharded statistics and sharded scoring each fan work out over a pool of
processes when they run locally (on a cluster the fan-out is pods instead).
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def pool_context() -> multiprocessing.context.BaseContext:
    """Fork on Linux: workers inherit the imported suite and what the parent prepared.

    Elsewhere spawn: macOS offers fork, but forking after its system libraries have
    started threads can crash.
    """
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
