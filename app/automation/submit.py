"""Submit and schedule the suite's pipelines on a Kubeflow Pipelines cluster.

:func:`submit` compiles a pipeline to IR YAML, uploads it (a new pipeline the first
time, a new *version* of the same pipeline afterwards), makes sure the experiment
exists, starts a run of that version and can wait for it. :func:`schedule` does the same
up to the version and then creates a recurring run with a cron trigger. Both talk to
the KFP API server through ``kfp.Client`` (REST, ``/apis/v2beta1``).

Everything that can be checked offline (pipeline name, parameter names and types, the
cron expression) is checked before the first request, and an unreachable host fails
fast with a :class:`KfpUnreachableError` that says how to reach the API server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

import kfp_mlops
from kfp_mlops.app.automation.cron import validate_cron
from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.pipelines.cluster import ClusterConfig, TaskSettings

DEFAULT_EXPERIMENT = "Default"  # the experiment every KFP API server creates at start-up
DEFAULT_TIMEOUT_S = 3600.0
FINISHED_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
_HOST_HINT = (
    "check --host: from a laptop, port-forward the KFP UI "
    "(`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`) and pass "
    "--host http://localhost:8080; inside the cluster use http://ml-pipeline.kubeflow:8888"
)


class SubmitError(KfpMlopsError):
    """A submission that failed for a reason the user can fix; the message says how."""


class KfpUnreachableError(SubmitError):
    """The KFP API server did not answer at the given host."""


@dataclass(frozen=True)
class KfpTarget:
    """Where and as whom a run goes: the KFP API server, the namespace and experiment.

    ``host`` is the KFP API (or UI) URL; ``namespace`` the profile namespace of a
    multi-user install (``None``: single-user); ``experiment`` ``None`` is KFP's
    ``Default``; ``token`` a bearer token (:func:`read_token`); ``service_account`` the
    Kubernetes service account the run's pods use (``None``: the namespace's pipeline
    runner); ``connect_timeout_s`` bounds the first health check. The CLI builds one
    from ``--host``, ``--namespace``, ``--experiment``, ``--token-file`` and
    ``--service-account``.
    """

    host: str
    namespace: str | None = None
    experiment: str | None = None
    token: str | None = None
    service_account: str | None = None
    connect_timeout_s: float = 10.0

    @classmethod
    def of(cls, target: KfpTarget | str) -> KfpTarget:
        """``target`` itself, or a target at host ``target`` with every default."""
        return target if isinstance(target, KfpTarget) else cls(host=target)

    @property
    def experiment_name(self) -> str:
        """The experiment runs go to (KFP's ``Default`` when none is named)."""
        return self.experiment or DEFAULT_EXPERIMENT


@dataclass(frozen=True)
class SubmitResult:
    """What :func:`submit` started: the run, and the pipeline version it runs."""

    run_id: str
    pipeline_id: str
    version_id: str
    url: str
    state: str
    experiment_id: str = ""
    pipeline_name: str = ""
    version_name: str = ""
    new_pipeline: bool = False

    @property
    def succeeded(self) -> bool:
        """True once the run has finished successfully."""
        return self.state == "SUCCEEDED"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (for ``--output json``)."""
        return {**asdict(self), "succeeded": self.succeeded}


@dataclass(frozen=True)
class ScheduleResult:
    """What :func:`schedule` created: the recurring run and the version it runs."""

    recurring_run_id: str
    pipeline_id: str
    version_id: str
    experiment_id: str
    cron: str
    name: str
    url: str
    pipeline_name: str = ""
    version_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (for ``--output json``)."""
        return asdict(self)


@dataclass(frozen=True)
class _Package:
    """One compiled pipeline: the IR file and what the upload needs from it."""

    path: Path
    display_name: str
    description: str
    parameters: dict[str, dict[str, Any]]
    version_name: str  # content-addressed: the same compiled YAML, the same name


# ---------------------------------------------------------------- offline checks


def parse_param_pairs(pairs: Sequence[str] | None) -> dict[str, str]:
    """Turn ``["key=value", ...]`` (repeated ``--param``) into a dict of strings."""
    params: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SubmitError(f"--param {pair!r} is not KEY=VALUE; e.g. --param test_size=0.3")
        if key.strip() in params:
            raise SubmitError(f"--param {key.strip()!r} is given twice; keep one")
        params[key.strip()] = value
    return params


def _coerce(name: str, kind: str, value: Any) -> Any:
    """Convert one argument to the type the pipeline declares (CLI values are strings)."""
    bad = SubmitError(
        f"parameter {name!r} takes {kind.lower().replace('_', ' ')}, got {value!r}; "
        f"pass e.g. --param {name}={_EXAMPLES.get(kind, 'VALUE')}"
    )
    if kind == "STRING":
        if not isinstance(value, str):
            raise bad
        return value
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise bad
    if kind in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value) if kind == "NUMBER_DOUBLE" else _to_int(value)
        except (TypeError, ValueError):
            raise bad from None
        return number
    if kind in ("LIST", "STRUCT"):
        parsed = json.loads(value) if isinstance(value, str) else value
        if not isinstance(parsed, list if kind == "LIST" else dict):
            raise bad
        return parsed
    return value  # a type newer than this code: let the server judge it


_EXAMPLES = {
    "STRING": "text",
    "NUMBER_INTEGER": "42",
    "NUMBER_DOUBLE": "0.3",
    "BOOLEAN": "true",
    "LIST": "'[1, 2]'",
    "STRUCT": '\'{"a": 1}\'',
}


def _to_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def coerce_arguments(
    pipeline_name: str, arguments: Mapping[str, Any], parameters: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Check ``arguments`` against the pipeline's inputs and convert them to their types."""
    known = ", ".join(sorted(parameters)) or "none"
    out: dict[str, Any] = {}
    for name, value in arguments.items():
        if name not in parameters:
            raise SubmitError(
                f"pipeline {pipeline_name!r} has no parameter {name!r}; its parameters: "
                f"{known} (pass them as --param NAME=VALUE)"
            )
        out[name] = _coerce(name, str(parameters[name].get("parameterType", "")), value)
    if out.get("model_name") not in (None, "", "auto"):
        # Here, before the run: on the cluster ingest would store a dataset version first
        # and publish only then refuse the name.
        from kfp_mlops.model.registry import RegistryError, validate_name

        try:
            validate_name(out["model_name"])
        except RegistryError as exc:
            raise SubmitError(f"{exc}; nothing was uploaded or run") from None
    missing = [
        name for name, spec in parameters.items()
        if name not in out and not spec.get("isOptional") and "defaultValue" not in spec
    ]
    if missing:
        raise SubmitError(
            f"pipeline {pipeline_name!r} needs parameter(s) {', '.join(sorted(missing))}; "
            "pass them as --param NAME=VALUE"
        )
    return out


def _compile(
    pipeline_name: str, workdir: Path, settings: TaskSettings, cluster: ClusterConfig | None,
    namespace: str | None,
) -> _Package:
    from kfp_mlops.pipelines import PIPELINES
    from kfp_mlops.pipelines.compile import compile_pipelines, version_name

    if pipeline_name not in PIPELINES:
        raise SubmitError(
            f"unknown pipeline {pipeline_name!r}; known: {', '.join(sorted(PIPELINES))}"
        )
    compile_pipelines(workdir, settings, cluster=cluster or ClusterConfig(),
                      namespace=namespace, names=[pipeline_name])
    path = workdir / f"{pipeline_name}.yaml"
    data = path.read_bytes()
    spec = next(yaml.safe_load_all(data))  # document 1 is the PipelineSpec, 2 the platform
    info = spec.get("pipelineInfo", {})
    return _Package(
        path=path,
        display_name=str(info.get("name") or pipeline_name),
        description=str(info.get("description") or ""),
        parameters=dict(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})),
        version_name=version_name(str(info.get("name") or pipeline_name), data),
    )


# ---------------------------------------------------------------- connecting


def _check_reachable(host: str, timeout_s: float, token: str | None) -> dict[str, Any]:
    """GET ``/apis/v2beta1/healthz`` once, so a wrong host fails in seconds, not retries."""
    if not host.startswith(("http://", "https://")):
        raise KfpUnreachableError(
            f"host {host!r} has no scheme; pass the KFP API URL with http:// or https://, "
            "e.g. --host http://localhost:8080"
        )
    url = host.rstrip("/") + "/apis/v2beta1/healthz"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        fix = ("it needs credentials: pass a bearer token (token=...) or use an "
               "authenticated port-forward" if exc.code in (401, 403) else _HOST_HINT)
        raise KfpUnreachableError(
            f"the server at {host} answered HTTP {exc.code} to {url}, so it is not a reachable "
            f"KFP API server; {fix}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KfpUnreachableError(
            f"cannot reach the KFP API server at {host} ({reason}); {_HOST_HINT}"
        ) from None
    try:
        health = json.loads(body or b"{}")
    except ValueError:
        health = None
    if not isinstance(health, dict):
        raise KfpUnreachableError(
            f"{host} answered {url} with something other than JSON (a login page or the "
            f"central dashboard?); point --host at the KFP API or UI service; {_HOST_HINT}"
        )
    return health


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep kfp.Client's prints ("Run details: ...") off stdout, which --output json owns."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", FutureWarning)
        yield


@contextlib.contextmanager
def _api(host: str, doing: str) -> Iterator[None]:
    """Turn kfp_server_api and urllib3 failures into one-paragraph SubmitErrors."""
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        with _quiet():
            yield
    except ApiException as exc:
        raise SubmitError(
            f"the KFP API server at {host} refused to {doing}: HTTP {exc.status} "
            f"{_server_message(exc)}"
        ) from None
    except ValueError as exc:  # kfp.Client's own checks, e.g. two pipelines with one name
        raise SubmitError(f"could not {doing} on the KFP API server at {host}: {exc}") from None
    except Urllib3Error as exc:
        raise KfpUnreachableError(
            f"lost the connection to the KFP API server at {host} while trying to {doing} "
            f"({exc}); {_HOST_HINT}"
        ) from None


def _server_message(exc: Any) -> str:
    """Pick the human message out of a grpc-gateway or upload-handler error body."""
    try:
        body = json.loads(exc.body or b"{}")
    except (TypeError, ValueError):
        return str(exc.reason or "")
    if isinstance(body, dict):
        for key in ("message", "error_message", "error"):
            if body.get(key):
                return str(body[key])
    return str(exc.reason or "")


# Where kfp.Client's ServiceAccountTokenVolumeCredentials looks (kfp.client, 2.17): a
# projected service-account token with audience pipelines.kubeflow.org.
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"


def read_token(path: str | None = None) -> str | None:
    """The bearer token for the KFP API: from ``path``, else where kfp.Client looks.

    ``$KF_PIPELINES_SA_TOKEN_PATH`` if set, else the projected token's default path when
    it exists (a notebook or pod in the cluster); ``None`` outside a cluster.
    """
    path = path or os.environ.get(TOKEN_PATH_ENV)
    if not path:
        if not Path(DEFAULT_TOKEN_PATH).exists():
            return None
        path = DEFAULT_TOKEN_PATH
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise SubmitError(
            f"cannot read the KFP token file {path} ({exc.strerror}); pass --token-file with "
            f"a readable file, or unset {TOKEN_PATH_ENV}"
        ) from None
    if not token:
        raise SubmitError(f"the KFP token file {path} is empty")
    return token


def _connect(host: str, namespace: str | None, token: str | None, timeout_s: float) -> Any:
    health = _check_reachable(host, timeout_s, token)
    if health.get("multi_user") and not namespace:
        raise SubmitError(
            f"the KFP API server at {host} runs in multi-user mode, so a run needs a "
            "namespace: pass your profile namespace (--namespace NAME / namespace=...)"
        )
    import kfp

    with _api(host, "open a client"):
        # namespace="kubeflow" is kfp.Client's "not given" value.
        return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=token)


# ---------------------------------------------------------------- pipeline versions


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [
        {"operation": "EQUALS", "key": "display_name", "stringValue": name}
    ]})


def _find_pipeline(client: Any, name: str, namespace: str | None) -> str | None:
    if namespace is None:
        return client.get_pipeline_id(name)  # type: ignore[no-any-return]
    found = client.list_pipelines(filter=_name_filter(name), namespace=namespace).pipelines
    return found[0].pipeline_id if found else None


def _upload(client: Any, host: str, pkg: _Package, settings: TaskSettings,
            namespace: str | None) -> tuple[str, str, str, bool]:
    """Return (pipeline_id, version_id, version_name, new_pipeline) for ``pkg``."""
    with _api(host, f"look up pipeline {pkg.display_name!r}"):
        pipeline_id = _find_pipeline(client, pkg.display_name, namespace)
    if pipeline_id is None:
        with _api(host, f"upload pipeline {pkg.display_name!r}"):
            pipeline = client.upload_pipeline(
                str(pkg.path), pipeline_name=pkg.display_name,
                description=pkg.description, namespace=namespace,
            )
            # The upload also created the first version; it is the newest one.
            versions = client.list_pipeline_versions(
                pipeline.pipeline_id, page_size=1, sort_by="created_at desc"
            ).pipeline_versions or []
        if not versions:
            raise SubmitError(
                f"KFP at {host} created pipeline {pipeline.pipeline_id} but lists no version "
                "of it; open it in the dashboard and check the API server logs"
            )
        first = versions[0]
        return pipeline.pipeline_id, first.pipeline_version_id, first.display_name, True
    # Content-addressed name, as the compiled PipelineVersion's: same YAML, same version.
    version_name = pkg.version_name
    from kfp_server_api.exceptions import ApiException

    try:
        with _quiet():
            version = client.upload_pipeline_version(
                str(pkg.path), pipeline_version_name=version_name, pipeline_id=pipeline_id,
                description=f"kfp-mlops {kfp_mlops.__version__}, image {settings.image}",
            )
        return pipeline_id, version.pipeline_version_id, version_name, False
    except ApiException as exc:
        if exc.status != 409:
            raise SubmitError(
                f"the KFP API server at {host} refused to upload a version of pipeline "
                f"{pkg.display_name!r}: HTTP {exc.status} {_server_message(exc)}"
            ) from None
    # 409: this exact YAML is already a version; run that one.
    with _api(host, f"look up version {version_name!r}"):
        existing = client.list_pipeline_versions(
            pipeline_id, filter=_name_filter(version_name), page_size=1
        ).pipeline_versions or []
    if not existing:
        raise SubmitError(
            f"KFP at {host} says version {version_name!r} of pipeline {pipeline_id} exists "
            "but does not list it; delete the version in the dashboard and submit again"
        )
    return pipeline_id, existing[0].pipeline_version_id, version_name, False


def _experiment_id(client: Any, host: str, name: str, namespace: str | None) -> str:
    with _api(host, f"find or create experiment {name!r}"):
        return str(client.create_experiment(name, namespace=namespace).experiment_id)


# ---------------------------------------------------------------- public API


def submit(
    pipeline_name: str,
    target: KfpTarget | str,
    *,
    arguments: Mapping[str, Any] | None = None,
    settings: TaskSettings | None = None,
    cluster: ClusterConfig | None = None,
    run_name: str | None = None,
    wait: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    poll_interval_s: float = 5.0,
    client: Any = None,
) -> SubmitResult:
    """Compile ``pipeline_name``, upload it (or a new version of it) and start a run.

    ``target`` says where (a :class:`KfpTarget`, or just the host URL); ``arguments``
    are the pipeline parameters (strings from the CLI are converted to the declared
    types); ``settings`` and ``cluster`` shape the compiled pipeline as for
    ``kfp-mlops compile``. With ``wait`` it polls until the run finishes or ``timeout_s``
    passes; the run keeps going on the cluster either way. ``client`` replaces the
    ``kfp.Client`` this function would open (for custom authentication); the host is
    then only used for links.
    """
    target = KfpTarget.of(target)
    host, namespace = target.host, target.namespace
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-submit-") as tmp:
        settings = settings or TaskSettings()
        pkg = _compile(pipeline_name, Path(tmp), settings, cluster, namespace)
        params = coerce_arguments(pipeline_name, dict(arguments or {}), pkg.parameters)
        if client is None:
            client = _connect(host, namespace, target.token, target.connect_timeout_s)
        pipeline_id, version_id, version_name, new = _upload(client, host, pkg, settings, namespace)
    experiment_id = _experiment_id(client, host, target.experiment_name, namespace)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with _api(host, f"start a run of pipeline {pkg.display_name!r}"):
        run = client.run_pipeline(
            experiment_id=experiment_id, job_name=run_name or f"{pkg.display_name} {stamp}",
            params=params, pipeline_id=pipeline_id, version_id=version_id,
            service_account=target.service_account,
        )
    url = f"{host.rstrip('/')}/#/runs/details/{run.run_id}"
    state = str(run.state or "PENDING")
    if wait:
        state = _wait(client, host, run.run_id, url, timeout_s, poll_interval_s)
    return SubmitResult(
        run_id=run.run_id, pipeline_id=pipeline_id, version_id=version_id, url=url,
        state=state, experiment_id=experiment_id, pipeline_name=pkg.display_name,
        version_name=version_name, new_pipeline=new,
    )


def _wait(client: Any, host: str, run_id: str, url: str, timeout_s: float,
          poll_interval_s: float) -> str:
    try:
        with _api(host, f"follow run {run_id}"):
            run = client.wait_for_run_completion(run_id, timeout_s, sleep_duration=poll_interval_s)
    except TimeoutError:
        with _api(host, f"read run {run_id}"):
            state = client.get_run(run_id).state
        raise SubmitError(
            f"run {run_id} is still {state} after {timeout_s:g}s; it keeps running on the "
            f"cluster: follow it at {url}, or wait longer with --timeout"
        ) from None
    return str(run.state)


def schedule(
    pipeline_name: str,
    target: KfpTarget | str,
    *,
    cron: str,
    arguments: Mapping[str, Any] | None = None,
    settings: TaskSettings | None = None,
    cluster: ClusterConfig | None = None,
    job_name: str | None = None,
    max_concurrency: int = 1,
    catchup: bool = False,
    replace: bool = False,
    client: Any = None,
) -> ScheduleResult:
    """Upload ``pipeline_name`` as for :func:`submit` and run it on a cron schedule.

    ``cron`` is checked with :func:`validate_cron` before anything else (KFP wants six
    fields, seconds first). ``catchup=False`` skips runs missed while the schedule was
    paused. A recurring run with the same name in the experiment is an error unless
    ``replace`` deletes it first.
    """
    target = KfpTarget.of(target)
    host, namespace = target.host, target.namespace
    cron = validate_cron(cron)
    if not 1 <= max_concurrency <= 10:
        raise SubmitError(f"max_concurrency {max_concurrency} is out of range; KFP allows 1-10")
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-schedule-") as tmp:
        settings = settings or TaskSettings()
        pkg = _compile(pipeline_name, Path(tmp), settings, cluster, namespace)
        params = coerce_arguments(pipeline_name, dict(arguments or {}), pkg.parameters)
        if client is None:
            client = _connect(host, namespace, target.token, target.connect_timeout_s)
        pipeline_id, version_id, version_name, _ = _upload(client, host, pkg, settings, namespace)
    experiment_id = _experiment_id(client, host, target.experiment_name, namespace)
    name = job_name or f"{pkg.display_name} schedule"
    with _api(host, f"list recurring runs named {name!r}"):
        same = client.list_recurring_runs(
            experiment_id=experiment_id, filter=_name_filter(name), namespace=namespace
        ).recurring_runs or []
    for existing in same:
        if not replace:
            raise SubmitError(
                f"experiment {target.experiment_name!r} already has a recurring run "
                f"named {name!r} ({existing.recurring_run_id}); pick another --name, or delete "
                f"it first (`kfp recurring-run delete {existing.recurring_run_id}`)"
            )
        with _api(host, f"delete recurring run {existing.recurring_run_id}"):
            client.delete_recurring_run(existing.recurring_run_id)
    with _api(host, f"create recurring run {name!r}"):
        recurring = client.create_recurring_run(
            experiment_id=experiment_id, job_name=name, cron_expression=cron,
            max_concurrency=max_concurrency, no_catchup=not catchup, params=params,
            pipeline_id=pipeline_id, version_id=version_id,
            service_account=target.service_account,
        )
    rid = recurring.recurring_run_id
    return ScheduleResult(
        recurring_run_id=rid, pipeline_id=pipeline_id, version_id=version_id,
        experiment_id=experiment_id, cron=cron, name=name,
        url=f"{host.rstrip('/')}/#/recurringrun/details/{rid}",
        pipeline_name=pkg.display_name, version_name=version_name,
    )
