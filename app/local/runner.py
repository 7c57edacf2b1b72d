"""Run a pipeline with ``kfp.local`` and read back what each task produced.

The local run is the product's front door: the same pipeline that compiles for a
cluster runs here with the SDK's SubprocessRunner in the installed environment
(``use_venv=False``: the suite is already installed, nothing is pip-installed).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_mlops.app.local.prefork import Stage, forked_tasks

if TYPE_CHECKING:
    from kfp_mlops.app.local.containers import ContainerRun

DEFAULT_RUNS_DIR = ".kfp-mlops/runs"
# Output names of the HTML and Markdown artifacts the suite's components write.
REPORT_OUTPUTS = {"report": ".html", "card": ".html", "summary": ".md", "comparison": ".md"}
# Environment every task process of a local run gets unless the user set the variable.
# OpenMP threads (scikit-learn's gradient boosting) otherwise spin on a core while they
# wait between parallel regions; when other processes share the cores the spinning
# starves the threads doing the work: the penguins train task took 6.5 s instead of 2.0 s,
# a 300k-row fit 31-103 s instead of 7 s, on a busy 2-core machine. How threads wait
# changes nothing computed: the same model bytes.
LOCAL_TASK_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
# What the suite's tasks import, in stages: the fork server of a local run
# (app/local/prefork.py) starts the data tasks once the first stage is imported, the
# model tasks once scikit-learn is, and the others (serving: KServe, the Kubernetes
# client) once everything is.
WARM_STAGES = (
    Stage(
        modules=("kfp.dsl.executor_main", "pyarrow.parquet", "kfp_mlops.data.ingest",
                 "kfp_mlops.data.stats", "kfp_mlops.data.validation", "kfp_mlops.data.split",
                 "kfp_mlops.data.report", "kfp_mlops.data.drift", "pandas",
                 "kfp_mlops.data.checks", "kfp_mlops.monitoring.steps", "kfp_mlops.data.shards",
                 "kfp_mlops.data.shard_stats", "datasketches",
                 # What the tasks imported on their own (their sys.modules, read after a
                 # penguins run): small each, paid once here instead of in every task.
                 "pyarrow.dataset", "pyarrow.pandas_compat", "kfp_mlops.store_uri",
                 "kfp_mlops.gates"),
        functions=("ingest", "check_data", "compute_statistics", "validate_data", "split_data",
                   "detect_drift", "make_candidates", "fixed_params", "skip_step",
                   "plan_shards", "scan_shard", "scan_shards", "merge_scans",
                   "detect_drift_sharded"),
    ),
    Stage(
        # SciPy's docstring notes skipped first: 0.3-0.8 s of this stage (lighter_imports.py).
        # model.steps imports inside its functions, so train and evaluate are named too.
        modules=("kfp_mlops.app.local.lighter_imports:skip_scipy_docstring_notes",
                 "kfp_mlops.model.train", "kfp_mlops.model.evaluate",
                 "kfp_mlops.model.steps", "kfp_mlops.model.tuning", "kfp_mlops.model.blessing",
                 "kfp_mlops.model.card", "kfp_mlops.model.publish",
                 "narwhals._pandas_like.dataframe", "narwhals._pandas_like.namespace",
                 "narwhals._interchange.dataframe", "sklearn.calibration",
                 "kfp_mlops.model.champion", "kfp_mlops.model.kubeflow_registry"),
        functions=("train", "evaluate", "run_trial", "run_trials", "select_best",
                   "bless_model", "publish", "model_card"),
    ),
    Stage(
        # The last four: what KServe's ModelServer (the infra-validation server, forked
        # from here) imports only when it starts, read from its sys.modules.
        modules=("kfp_mlops.serving.infra_validation", "httpx", "kfp_mlops.serving.server",
                 "kfp_mlops.serving.deploy", "kfp_mlops.serving.batch",
                 "kfp_mlops.serving.sharded", "pydantic.v1", "uvicorn.lifespan.on",
                 "uvicorn.protocols.http.httptools_impl",
                 "uvicorn.protocols.websockets.websockets_sansio_impl",
                 "httpcore._sync.connection_pool", "h11", "kfp_mlops.serving.release"),
    ),
)


@dataclass
class TaskResult:
    """Parameters and artifacts one task wrote (from its ``executor_output.json``)."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> uri, metadata


@dataclass
class RunResult:
    """Where a local run went, whether it succeeded, and each task's outputs."""

    run_dir: Path
    succeeded: bool
    tasks: dict[str, TaskResult]
    error: str | None = None

    def gates(self) -> dict[str, dict[str, Any]]:
        """Every task that reports ``passed`` and ``reason``: name -> decision."""
        return {
            name: {"passed": bool(t.parameters["passed"]), "reason": t.parameters.get("reason", "")}
            for name, t in self.tasks.items()
            if "passed" in t.parameters
        }


    def reports(self, names: dict[str, str] | None = None) -> dict[str, str]:
        """HTML and Markdown artifacts (reports, model card): ``task/output`` -> path.

        KFP artifact files have no suffix; a copy with ``.html``/``.md`` goes to
        ``<run_dir>/reports/`` so a browser or editor opens it directly. ``names``
        (:func:`display_names`) names a task by its display name (``model-card-refused``).
        """
        found = {}
        for task_name, task in self.tasks.items():
            first, _, rest = task_name.partition("/")
            name = (names or {}).get(first, first) + (f"/{rest}" if rest else "")
            for key, artifact in task.artifacts.items():
                source = Path(artifact["uri"])
                suffix = REPORT_OUTPUTS.get(key)
                if suffix is None or not source.is_file():
                    continue
                copy = self.run_dir / "reports" / f"{name.replace('/', '-')}-{key}{suffix}"
                copy.parent.mkdir(exist_ok=True)
                shutil.copyfile(source, copy)
                found[f"{name}/{key}"] = str(copy)
        return found


def display_names(pipeline) -> dict[str, str]:
    """Task name -> display name, for every task whose display name differs.

    kfp.local logs and names its folders by task name (``skip-step-2``); progress
    lines show the display name the graph shows (``publish-skipped``).
    """
    spec = pipeline.pipeline_spec
    dags = [spec.root.dag] + [c.dag for c in spec.components.values() if c.HasField("dag")]
    return {key: task.task_info.name for dag in dags for key, task in dag.tasks.items()
            if task.task_info.name and task.task_info.name != key}


def read_run(run_dir: Path, succeeded: bool = True, error: str | None = None) -> RunResult:
    """Collect the task outputs of a finished local run folder."""
    tasks = {}
    # In the order the tasks finished, so summaries read like the run.
    # Tasks inside dsl.ParallelFor sit one folder deeper (for-loop-N-iteration-I/task).
    outputs = sorted(run_dir.rglob("executor_output.json"), key=lambda p: p.stat().st_mtime)
    for output in outputs:
        raw = json.loads(output.read_text())
        artifacts = {
            key: {"uri": value["artifacts"][0]["uri"],
                  "metadata": value["artifacts"][0].get("metadata", {})}
            for key, value in raw.get("artifacts", {}).items()
        }
        name = output.parent.relative_to(run_dir).as_posix()
        tasks[name] = TaskResult(name, raw.get("parameterValues", {}), artifacts)
    return RunResult(run_dir=run_dir, succeeded=succeeded, tasks=tasks, error=error)


def import_kfp_without_client() -> None:
    """Import the KFP SDK without ``kfp.Client`` and the Kubernetes client it pulls in.

    ``import kfp`` imports its API client (kubernetes, google-auth, requests: about 1,300
    modules, 0.8-1.5 s of CPU here) unless ``_KFP_RUNTIME=true``, the switch KFP itself sets in task
    processes. A local run needs ``kfp.dsl`` and ``kfp.local`` only, so the package is
    imported under that switch and the switch removed before ``kfp.dsl`` loads (which
    reads it too). ``kfp.Client``, ``kfp.components`` and ``kfp.dsl`` stay reachable on
    the package: the first use imports them (``kfp`` 2.17's ``__init__``). A no-op when
    ``kfp`` is imported already.
    """
    if "kfp" in sys.modules:
        return
    previous = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        import kfp
    finally:
        if previous is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = previous
    kfp.__getattr__ = _kfp_attribute  # PEP 562: called for names the module lacks
    _name_callers_without_inspect_stack()


def _name_callers_without_inspect_stack() -> None:
    """KFP's ``PipelineTask._ensure_container_spec_exists``, minus its ``inspect.stack()``.

    KFP 2.17 calls it at the start of every ``set_cpu_request``-like method, only to name
    the calling method in an error, and gets that name with ``inspect.stack()``, which
    reads the source lines of every frame on the stack: the training pipeline's 100 calls
    (``pipelines/cluster.py`` sets each task's resources) took 0.1-0.25 s of CPU, half of
    building the pipeline. This version names the caller from its frame: the same check,
    the same error text, the same pipeline. Left alone when KFP's method is not the one
    read (it no longer calls ``inspect.stack``).
    """
    from kfp.dsl import pipeline_task

    task = pipeline_task.PipelineTask
    original = task._ensure_container_spec_exists
    if getattr(original, "__wrapped__", None) or "stack" not in original.__code__.co_names:
        return

    @functools.wraps(original)
    def ensure_container_spec_exists(self) -> None:
        if self.container_spec is None:
            caller = sys._getframe(1).f_code.co_name
            raise ValueError(
                f"{caller} can only be used on single-step components, not pipelines used as "
                "components, or special components like importers.")

    task._ensure_container_spec_exists = ensure_container_spec_exists


def _kfp_attribute(name: str) -> Any:
    """What ``kfp``'s full ``__init__`` would have imported, on first use."""
    import importlib

    if name == "Client":
        return importlib.import_module("kfp.client").Client
    if name in ("client", "components", "dsl"):
        return importlib.import_module(f"kfp.{name}")
    raise AttributeError(f"module 'kfp' has no attribute {name!r}")


def _import_kfp_local(docker: bool) -> None:
    """Import ``kfp.local`` with its DockerRunner's handler only when the run needs it.

    KFP 2.17's task dispatcher imports ``docker_task_handler``, and with it the Docker
    SDK and ``requests`` (0.13-0.16 s of CPU in the ``kfp-mlops`` process, before the first
    task), whatever the runner; it catches the ImportError of a machine without the SDK
    and then runs SubprocessRunner tasks alone. A run of local processes imports the
    dispatcher that way; a ``--runner docker`` run (or a later one in the same process)
    gets the handler imported and handed to the dispatcher, as KFP's own import does.
    """
    if "kfp.local.task_dispatcher" not in sys.modules and not docker:
        handler = "kfp.local.docker_task_handler"
        had = sys.modules.get(handler, _MISSING)
        if had is _MISSING:
            sys.modules[handler] = None  # type: ignore[assignment]  # "not installed"
        try:
            import kfp.local.task_dispatcher  # noqa: F401
        finally:
            if had is _MISSING:
                del sys.modules[handler]
        return
    from kfp.local import task_dispatcher

    if docker and task_dispatcher.docker_task_handler is None:
        from kfp.local import docker_task_handler

        task_dispatcher.docker_task_handler = docker_task_handler
        task_dispatcher._DOCKER_AVAILABLE = True


_MISSING = object()


@contextlib.contextmanager
def local_task_environment() -> Iterator[None]:
    """Set :data:`LOCAL_TASK_ENV` (where unset) while kfp.local starts task processes."""
    added = {k: v for k, v in LOCAL_TASK_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def local_tasks() -> Iterator[None]:
    """Start local task processes with :data:`LOCAL_TASK_ENV`, from the warm fork server.

    Commands enter it before they import KFP and build their pipeline, so the server
    imports meanwhile; :func:`run_locally` enters it too (a no-op when already active).
    """
    with local_task_environment(), forked_tasks(WARM_STAGES):
        yield


def with_local_tasks(command: Callable[..., int]) -> Callable[..., int]:
    """Run a CLI command that runs pipelines locally inside :func:`local_tasks`.

    The fork server then imports while the command imports KFP and builds its pipeline.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        if args and getattr(args[0], "runner", None) == "docker":
            return command(*args, **kwargs)  # tasks run in containers: no fork server
        with local_tasks():
            return command(*args, **kwargs)

    return run


def run_locally(
    pipeline, arguments: dict[str, Any], runs_dir: str | Path = DEFAULT_RUNS_DIR,
    containers: ContainerRun | None = None,
) -> RunResult:
    """Run ``pipeline`` with ``kfp.local``; never raises for a failed task.

    By default each task is a process of this installed environment (SubprocessRunner,
    from the fork server); with ``containers`` (``--runner docker``) each is a container
    from the suite image (DockerRunner, app/local/containers.py), and ``arguments`` must
    be the ones :func:`kfp_mlops.app.local.containers.plan_run` returned with it.
    """
    _import_kfp_local(docker=containers is not None)
    from kfp import local

    # The suite image holds exactly this installed environment, so running its
    # components in-process-environment is the intended use, not a mistake.
    warnings.filterwarnings("ignore", message="You may be attemping", category=RuntimeWarning)
    # The CPU and memory requests are for a cluster; locally they size nothing.
    warnings.filterwarnings("ignore", message="Task .* have no effect in the current local runner",
                            category=UserWarning)
    runs_dir = Path(runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    before = set(runs_dir.iterdir())
    if containers is None:
        runner, tasks = local.SubprocessRunner(use_venv=False), local_tasks()
    else:
        from kfp_mlops.app.local.containers import check_engine, container_tasks, docker_runner

        check_engine(containers.image)
        runner, tasks = docker_runner(containers), container_tasks(containers)
    local.init(runner=runner, pipeline_root=str(runs_dir), raise_on_error=True)
    error = None
    try:
        with tasks:
            pipeline(**arguments)
    except RuntimeError as exc:  # kfp.local raises RuntimeError when a task fails
        error = str(exc)
    new = sorted(set(runs_dir.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        return RunResult(run_dir=runs_dir, succeeded=False, tasks={}, error=error)
    return read_run(new[-1], succeeded=error is None, error=error)
