"""Record each KFP task process's peak RSS at exit (bench_task_memory.py puts this on PYTHONPATH).

kfp.local starts every task as ``python -m kfp.dsl.executor_main ... --function_to_execute
NAME``; the probe appends ``NAME<TAB>self KiB<TAB>children KiB`` to ``$KFP_MLOPS_RSS_LOG``.
Children count too: infra validation runs the model server as a child process.
"""

import atexit
import os
import sys


def _record() -> None:
    import resource

    argv = sys.argv
    if "--function_to_execute" not in argv:
        return
    name = argv[argv.index("--function_to_execute") + 1]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(os.environ["KFP_MLOPS_RSS_LOG"], "a") as log:
        log.write(f"{name}\t{own}\t{children}\n")


if os.environ.get("KFP_MLOPS_RSS_LOG"):
    atexit.register(_record)
