"""Each task of a local run in its own container from the suite image (``--runner docker``).

``kfp.local.DockerRunner`` starts one container per task through the Docker Engine API:
Docker, or Podman's compatible service (``DOCKER_HOST=unix:///run/podman/podman.sock``
after ``podman system service``). That is as close to a cluster as a laptop gets: the
task's command and arguments from the IR, in the image, as the image's user. KFP 2.17's
runner cannot run this suite's image as it is, so :func:`container_tasks` puts these
fixes in place for the length of a run (and only then; the default runner is untouched).
Each names the KFP behaviour it works around, read in ``kfp/local/docker_task_handler.py``,
``task_dispatcher.py`` and ``orchestrator/task_executor.py`` of kfp 2.17.3:

(a) **ENTRYPOINT.** ``run_docker_container`` passes the task's command as the
    container's ``Cmd``; the image's ENTRYPOINT (the model server) would receive it as
    arguments. The entrypoint is reset (``entrypoint=[""]``), as a pod's ``command`` does.
(b) **Exit status.** It always starts containers with ``auto_remove=True`` and reads the
    status after streaming the logs; when the container is gone by then (Podman removes
    it as it exits) ``wait()`` raises ``NotFound``, which it reads as exit status 0: a
    failing task is reported SUCCESS and the run fails later, elsewhere ("task 'ingest'
    not found"). Here containers are not auto-removed: the status is waited for, then
    the container removed.
(c) **Permissions.** kfp.local creates the run folders as the user running it (root,
    0755) and mounts them; the image's user, uid 1000, cannot write its outputs there
    (a PermissionError, also reported as success by (b)). Run as root, the folders tasks
    write (this run's folder, a local store) are handed to uid 1000 before each task, as
    a pod's ``fsGroup`` does to its volumes; run as another user, tasks run as that user.
(d) **Resources.** kfp.local ignores the IR's resources ("have no effect in the current
    local runner"); here each container gets its task's CPU and memory limits (the CPU
    limit capped at this machine's cores: the engine refuses more than it has).

Paths are the one thing a container cannot share with the command that started it:
:func:`local_paths` turns the path arguments of a run (data, a local store) into absolute
paths and mounts each at the same path, so a run reads and writes what it would with the
default runner. Tasks get a read-only root filesystem with ``/tmp`` a tmpfs (``HOME``
points there: caches), the host's network (a store or a Pushgateway on localhost works
as it does for the default runner), and the store settings of this environment
(``AWS_*``, ``S3_*``, ``KFP_MLOPS_*``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_mlops.errors import KfpMlopsError

# The image's user (Dockerfile: useradd --uid 1000), the user a cluster runs it as.
IMAGE_USER = (1000, 1000)
# Variables of this environment a task container gets (store credentials and settings).
PASSED_PREFIXES = ("AWS_", "S3_", "KFP_MLOPS_")
# Set in every task container: caches go to the tmpfs; OpenMP waits without spinning
# (app/local/runner.py LOCAL_TASK_ENV says why).
TASK_ENV = {"HOME": "/tmp", "OMP_WAIT_POLICY": "PASSIVE"}
# A tmpfs on /tmp: the only writable place besides the mounts (KFP's launcher writes the
# component source to a mktemp -d folder there).
TMPFS = {"/tmp": "rw,exec,nosuid,nodev,mode=1777"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # s3://, bundled:, predictions:, ...
_QUANTITY = re.compile(r"^([0-9]*\.?[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_FACTOR = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
           "Ei": 2**60}


class ContainerRunError(KfpMlopsError, RuntimeError):
    """A run in containers cannot start: no engine, no image, or unusable settings."""


@dataclass(frozen=True)
class ContainerRun:
    """What every task container of one run gets besides its task's command.

    ``mounts`` maps absolute host paths to ``"ro"`` or ``"rw"``, each mounted at the same
    path; ``user`` is ``uid:gid``; ``hand_over``: whether the folders tasks write (the
    read-write mounts, the run's folder) are handed to that user (as root: (c) above).
    """

    image: str
    mounts: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    user: str = f"{IMAGE_USER[0]}:{IMAGE_USER[1]}"
    hand_over: bool = False
    read_only: bool = True

    def written(self) -> list[str]:
        """The mounted folders tasks write."""
        return [path for path, mode in sorted(self.mounts.items()) if mode == "rw"]

    def run_args(self) -> dict[str, Any]:
        """``containers.run`` keyword arguments for :class:`kfp.local.DockerRunner`."""
        from docker.types import Mount

        return {
            "entrypoint": [""],  # (a)
            "user": self.user,
            "read_only": self.read_only,
            "tmpfs": dict(TMPFS),
            "working_dir": "/tmp",
            "network_mode": "host",
            "environment": dict(self.environment),
            "mounts": [Mount(target=path, source=path, type="bind", read_only=mode == "ro")
                       for path, mode in sorted(self.mounts.items())],
        }


def container_user(euid: int | None = None, egid: int | None = None) -> tuple[str, bool]:
    """``(uid:gid to run tasks as, whether written folders must be handed over)``.

    Root runs tasks as the image's user and hands it the folders (c); anyone else runs
    them as themselves, so what tasks write stays theirs and nothing changes owner.
    """
    euid = os.geteuid() if euid is None else euid
    egid = os.getegid() if egid is None else egid
    if euid == 0:
        return f"{IMAGE_USER[0]}:{IMAGE_USER[1]}", True
    return f"{euid}:{egid}", False


def is_local_path(value: object) -> bool:
    """Whether a pipeline argument names a local path (not a URI or a bundled data set)."""
    from kfp_mlops.data.bundled import BUNDLED

    return isinstance(value, str) and bool(value) and value not in BUNDLED and not \
        _SCHEME.match(value)


def _mount_point(path: Path) -> Path:
    """``path`` if it exists and is no glob, else its nearest existing folder above."""
    if path.exists() and not any(c in path.name for c in "*?["):
        return path
    for parent in path.parents:
        if parent.is_dir() and not any(c in str(parent) for c in "*?["):
            return parent
    return Path("/")


def local_paths(
    arguments: Mapping[str, Any], inputs: Iterable[str] = (), outputs: Iterable[str] = (),
    cwd: Path | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """``arguments`` with local paths made absolute, and the mounts they need.

    ``inputs`` name arguments read (a data file, folder or glob: mounted read-only; a
    missing file's folder is mounted so the task reports the missing file itself);
    ``outputs`` name folders written (a local store: created, mounted read-write).
    Values that are URIs (``s3://``, ``predictions:``) or bundled data sets are left
    as they are.
    """
    cwd = cwd or Path.cwd()
    rewritten, mounts = dict(arguments), {}
    for name, mode in [*((n, "ro") for n in inputs), *((n, "rw") for n in outputs)]:
        value = arguments.get(name)
        if not is_local_path(value):
            continue
        path = Path(os.path.normpath(cwd / Path(value).expanduser()))
        if mode == "rw":
            path.mkdir(parents=True, exist_ok=True)
        rewritten[name] = str(path)
        point = str(_mount_point(path))
        if point == "/":
            raise ContainerRunError(
                f"{name} {value!r} is under no folder that can be mounted into the task "
                "containers; give a path below /"
            )
        if mounts.get(point) != "rw":
            mounts[point] = mode
    return rewritten, mounts


def passed_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` a task container gets, plus :data:`TASK_ENV`."""
    passed = {k: v for k, v in environ.items() if k.startswith(PASSED_PREFIXES)}
    passed.pop("KFP_MLOPS_PREFORK", None)  # the fork server is the default runner's
    return {**passed, **{k: environ.get(k, v) if k != "HOME" else v
                         for k, v in TASK_ENV.items()}}


def plan_run(
    image: str, arguments: Mapping[str, Any], inputs: Iterable[str] = (),
    outputs: Iterable[str] = (), environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], ContainerRun]:
    """The arguments a containerised run passes and its :class:`ContainerRun`."""
    if not image.strip():
        raise ContainerRunError("the image is empty; pass --image REGISTRY/kfp-mlops:TAG")
    rewritten, mounts = local_paths(arguments, inputs, outputs)
    environ = os.environ if environ is None else environ
    environment = passed_environment(environ)
    key_file = environment.get("KFP_MLOPS_SIGNING_KEY_FILE")
    if key_file and Path(key_file).is_file():
        mounts.setdefault(str(Path(key_file).absolute()), "ro")
    user, hand = container_user()
    return rewritten, ContainerRun(image=image, mounts=mounts, environment=environment,
                                   user=user, hand_over=hand)


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``512Mi``, ``4Gi``, ``1e3``) as a number."""
    text = str(text).strip()
    match = _QUANTITY.match(text)
    if not match:
        try:
            return float(text)
        except ValueError:
            raise ContainerRunError(
                f"resource quantity {text!r} is not a Kubernetes quantity (e.g. 500m, 2, "
                "512Mi, 4Gi)"
            ) from None
    return float(match.group(1)) * _FACTOR[match.group(2)]


def resource_args(resources: Any, cores: int | None = None) -> dict[str, int]:
    """``containers.run`` limits for an IR ``resources`` message (d).

    The Kubernetes quantities (``resourceCpuLimit``, ``resourceMemoryLimit``) win over
    the older float fields (CPUs; memory in GB). The CPU limit is capped at ``cores``.
    """
    cores = cores or os.cpu_count() or 1
    found: dict[str, int] = {}
    cpu = resources.resource_cpu_limit or resources.cpu_limit
    if cpu:
        amount = min(parse_quantity(cpu) if isinstance(cpu, str) else float(cpu), cores)
        found["nano_cpus"] = int(amount * 1e9)
    if resources.resource_memory_limit:
        found["mem_limit"] = int(parse_quantity(resources.resource_memory_limit))
    elif resources.memory_limit:
        found["mem_limit"] = int(resources.memory_limit * 1e9)
    return found


def hand_over(folder: str | Path, user: str, recursive: bool = True) -> None:
    """Make ``folder`` (and everything under it) owned by ``uid:gid`` (c); as root only."""
    uid, gid = (int(x) for x in user.split(":"))
    folder = Path(folder)
    if not folder.exists():
        return
    if not recursive:
        if (folder.stat().st_uid, folder.stat().st_gid) != (uid, gid):
            os.lchown(folder, uid, gid)
        return
    for root, dirs, files in os.walk(folder):
        for name in [".", *dirs, *files]:
            path = os.path.join(root, name)
            stat = os.lstat(path)
            if (stat.st_uid, stat.st_gid) != (uid, gid):
                os.lchown(path, uid, gid)


def run_folder(full_command: list[str], pipeline_root: str) -> Path | None:
    """The folder of the running pipeline under ``pipeline_root``, from the executor input."""
    try:
        raw = full_command[full_command.index("--executor_input") + 1]
        output_file = Path(json.loads(raw)["outputs"]["outputFile"])
        first = output_file.relative_to(pipeline_root).parts[0]
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    return Path(pipeline_root) / first


class _Lines:
    """Print a container's log bytes whole lines at a time, as they arrive."""

    def __init__(self) -> None:
        import codecs

        self.received = 0
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self._pending = ""

    def add(self, chunk: bytes) -> None:
        """Print the whole lines ``chunk`` completes; keep the rest for later."""
        self.received += len(chunk)
        *whole, self._pending = (self._pending + self._decode(chunk)).split("\n")
        for line in whole:
            print(line)

    def close(self) -> None:
        """Print what is left (a last line without a newline)."""
        rest = self._pending + self._decode(b"", final=True)
        if rest:
            print(rest)


def _task_handler(base: type) -> type:
    """kfp.local's DockerTaskHandler with fixes (a), (b) and (c)."""
    import sys

    from kfp.local import status

    class TaskContainer(base):  # type: ignore[misc, valid-type]
        """One task, one container: its own exit status, run as the image's user."""

        def run(self) -> status.Status:
            import docker

            args = dict(self.runner.container_run_args)
            args.pop("environment", None)  # kfp merged it into env_vars already
            plan: ContainerRun | None = getattr(self.runner, "kfp_mlops_plan", None)
            client = docker.from_env()
            try:
                volumes = self.get_volumes_to_mount(client)
                if plan is not None and plan.hand_over:  # (c)
                    hand_over(self.pipeline_root, plan.user, recursive=False)
                    folder = run_folder(self.full_command, self.pipeline_root)
                    if folder is not None:
                        folder.mkdir(parents=True, exist_ok=True)
                        hand_over(folder, plan.user)
                try:
                    container = client.containers.run(  # no auto_remove: (b)
                        image=self.image, command=self.full_command, volumes=volumes,
                        environment=self.env_vars, detach=True, stdout=True, stderr=True,
                        **args,
                    )
                except docker.errors.APIError as exc:  # the line the CLI reports
                    print(f"ContainerRunError: the engine refused the task's container "
                          f"({exc.explanation or exc})")
                    return status.Status.FAILURE
                try:
                    lines = _Lines()
                    for chunk in container.logs(stream=True, follow=True):
                        lines.add(chunk)
                    code = container.wait()["StatusCode"]
                    # Podman 4.3's followed log stream can end before the container's
                    # last lines (seen once here: a failed task's traceback missing), so
                    # what the stream did not carry is read from the finished log.
                    lines.add(container.logs(stdout=True, stderr=True)[lines.received:])
                    lines.close()
                finally:
                    with contextlib.suppress(docker.errors.APIError):
                        container.remove(force=True)
            finally:
                client.close()
            if code != 0:
                print(f"task container exited with status {code}", file=sys.stdout)
            return status.Status.SUCCESS if code == 0 else status.Status.FAILURE

    return TaskContainer


def _with_resources(original):
    """Wrap task_dispatcher.run_single_task_implementation to apply the IR's limits (d)."""
    from kfp import local

    @functools.wraps(original)
    def run_single_task_implementation(*args, **kwargs):
        runner, spec = kwargs.get("runner"), kwargs.get("executor_spec")
        if isinstance(runner, local.DockerRunner) and spec is not None and \
                spec.container.HasField("resources"):
            runner = copy.copy(runner)
            runner.container_run_args = {**runner.container_run_args,
                                         **resource_args(spec.container.resources)}
            kwargs["runner"] = runner
        return original(*args, **kwargs)

    return run_single_task_implementation


def check_engine(image: str) -> None:
    """Fail early, saying what to do, when no engine answers or the image is missing."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ContainerRunError(
            f"no Docker engine answers at {where} ({exc}). Start Docker, or Podman's "
            "service (`podman system service --time=0 unix:///run/podman/podman.sock &`) "
            "and set DOCKER_HOST=unix:///run/podman/podman.sock. No task was run."
        ) from None
    try:
        try:
            client.images.get(image)
        except docker.errors.NotFound:  # Podman's "image not known" is no ImageNotFound
            try:
                client.images.pull(image)
            except docker.errors.APIError as exc:
                raise ContainerRunError(
                    f"image {image!r} is not on this engine and could not be pulled "
                    f"({exc.explanation or exc}). Build it (`docker build -t {image} .` or "
                    f"`podman build -t {image} .` in the kfp-mlops checkout) or pass "
                    "--image with one the engine has. No task was run."
                ) from None
    finally:
        client.close()


def docker_runner(plan: ContainerRun):
    """A :class:`kfp.local.DockerRunner` for ``plan`` (read by the fixed task handler)."""
    from kfp import local

    runner = local.DockerRunner(**plan.run_args())
    runner.kfp_mlops_plan = plan
    return runner


@contextlib.contextmanager
def container_tasks(plan: ContainerRun) -> Iterator[None]:
    """While active, kfp.local's DockerRunner runs tasks with fixes (a)-(d).

    As root, the folders ``plan``'s tasks write are handed to its user first (c).
    """
    from kfp.local import docker_task_handler, task_dispatcher

    if plan.hand_over:
        for folder in plan.written():
            hand_over(folder, plan.user)

    handler = docker_task_handler.DockerTaskHandler
    dispatch = task_dispatcher.run_single_task_implementation
    docker_task_handler.DockerTaskHandler = _task_handler(handler)
    task_dispatcher.run_single_task_implementation = _with_resources(dispatch)
    try:
        yield
    finally:
        docker_task_handler.DockerTaskHandler = handler
        task_dispatcher.run_single_task_implementation = dispatch
