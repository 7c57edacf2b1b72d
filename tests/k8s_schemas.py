"""Validate Kubernetes objects the way an API server would, without a cluster.

Two entry points, shared by every test that produces Kubernetes YAML:

- ``validate_crd_object(obj)``: custom kinds (KServe, KFP ``Pipeline``/``PipelineVersion``,
  prometheus-operator ``PodMonitor``/``PrometheusRule``/``ServiceMonitor``) against the
  upstream CRDs kept unmodified in ``tests/fixtures/crds`` (provenance in its README.md),
  or in the folder ``$KFP_MLOPS_SCHEMAS`` names.
- ``validate_standard_object(obj)``: built-in kinds (ServiceAccount, Secret, Role, ...)
  with the strict schemas that ``kubernetes-validate`` ships.

The CRD check mirrors what the API server does with a structural schema under
``kubectl``'s default strict field validation: a field that the schema does not list is
an error unless the node says ``x-kubernetes-preserve-unknown-fields: true``.
``x-kubernetes-int-or-string`` (and ``format: int-or-string``) accept an integer or a
string. Root ``metadata`` is checked as ``ObjectMeta``, as the server does. CEL rules
(``x-kubernetes-validations``) and list-map uniqueness are not checked. For
``PrometheusRule`` the rule-format checks of prometheus-operator's admission webhook are
added (see ``_prometheus_rule_admission``).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

# The Kubernetes version whose built-in schemas we validate against: the oldest one the
# suite supports, so a manifest that passes here also passes on newer clusters.
KUBERNETES_VERSION = "1.30"

_REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_CRDS = _REPO_ROOT / "tests" / "fixtures" / "crds"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

try:  # libyaml parses the 2 MB InferenceService CRD about 10x faster
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml built without libyaml
    _Loader = yaml.SafeLoader


class K8sValidationError(ValueError):
    """An object that a Kubernetes API server would reject; the message names each field."""


def schemas_dir() -> Path:
    """Return the folder holding the upstream CRDs.

    ``$KFP_MLOPS_SCHEMAS`` when set (another folder of the same layout, for example a
    newer upstream release), else the copies in ``tests/fixtures/crds``: the repository
    carries what its tests need, so they pass on a clone with nothing beside it.
    """
    env = os.environ.get("KFP_MLOPS_SCHEMAS")
    candidate = Path(env) if env else FIXTURE_CRDS
    if not candidate.is_dir():
        source = "$KFP_MLOPS_SCHEMAS" if env else "the repository"
        raise FileNotFoundError(
            f"no CRD schema folder at {candidate} (from {source}); "
            + ("unset KFP_MLOPS_SCHEMAS or point it at a folder of upstream CRDs"
               if env else "restore tests/fixtures/crds from git")
        )
    return candidate


# One folder per upstream release the suite supports (tests/fixtures/releases, provenance
# in its README.md): ``validate_crd_object(obj, folder=kserve_crds("0.15.0"))`` judges
# ``obj`` as that KServe release's API server does.
FIXTURE_RELEASES = _REPO_ROOT / "tests" / "fixtures" / "releases"


def kserve_crds(version: str) -> Path:
    """The folder holding KServe ``version``'s CRDs (``0.15.0``), or the newest for ``newest``.

    ``newest`` is the default folder (``tests/fixtures/crds``), a KServe commit after every
    release the support matrix names, so a field KServe drops later is caught too.
    """
    if version == "newest":
        return schemas_dir()
    folder = FIXTURE_RELEASES / f"kserve-v{version}"
    if not folder.is_dir():
        known = sorted(p.name for p in FIXTURE_RELEASES.glob("kserve-v*"))
        raise FileNotFoundError(
            f"no CRDs for KServe {version} under {FIXTURE_RELEASES} (have: {known}); copy "
            "config/crd/full/ of that kserve/kserve tag there and add its provenance row"
        )
    return folder


def _crd_index(folder: Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Map (group, kind) to its CRD document, for every CRD under ``folder``.

    ``folder`` defaults to ``schemas_dir()``; a KServe release's folder holds only its
    own three CRDs, so the other kinds (KFP, prometheus-operator) still come from the
    default folder.
    """
    index = dict(_crd_index_of(schemas_dir()))
    if folder is not None:
        index.update(_crd_index_of(folder.resolve()))
    return index


@functools.cache
def _crd_index_of(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(folder.rglob("*.y*ml")):
        with path.open(encoding="utf-8") as fh:
            for doc in yaml.load_all(fh, Loader=_Loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    spec = doc["spec"]
                    index[(spec["group"], spec["names"]["kind"])] = doc
    return index


_INLINE_FLAGS = re.compile(r"(?<!\\)\(\?([ims]+)\)")


def _go_pattern(pattern: str) -> str:
    """A Go (RE2) pattern as Python's ``re`` reads it.

    The API server matches ``pattern`` with Go, which takes inline flags anywhere
    (prometheus-operator: ``^(?i)(abort|warn)?$``); Python wants them at the start. A
    flag group in the middle becomes a scoped group up to the end of its enclosing group,
    which means the same.
    """
    match = _INLINE_FLAGS.search(pattern)
    if match is None or match.start() == 0:
        return pattern
    start, end, depth = match.start(), match.end(), 0
    close = len(pattern)
    i = end
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                close = i
                break
            depth -= 1
        i += 1
    scoped = f"{pattern[:start]}(?{match.group(1)}:{pattern[end:close]}){pattern[close:]}"
    return _go_pattern(scoped)


def _structural(node: Any) -> Any:
    """Rewrite an OpenAPI v3 CRD schema node into plain JSON Schema with server semantics."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            # Keys here are field names (a field may well be called "description").
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "pattern" and isinstance(value, str):
            out[key] = _go_pattern(value)
        elif key != "description":  # the keyword, not a field: irrelevant and bulky
            out[key] = _structural(value)
    if out.get("x-kubernetes-int-or-string") or out.get("format") == "int-or-string":
        out.pop("type", None)
        out.pop("format", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("nullable"):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
    is_object = out.get("type") == "object" or "properties" in out
    if (
        is_object
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        # The server prunes (and strict validation rejects) any field the schema omits.
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_validator(
    group: str, kind: str, version: str, folder: Path | None = None
) -> jsonschema.protocols.Validator:
    index = _crd_index(folder)
    crd = index.get((group, kind))
    if crd is None:
        known = ", ".join(f"{k}.{g}" for g, k in sorted(index))
        raise K8sValidationError(
            f"no CRD for kind {kind!r} in group {group!r} under {folder or schemas_dir()} "
            f"(known: {known}); check apiVersion/kind or add the upstream CRD there"
        )
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    if version not in versions:
        raise K8sValidationError(
            f"{kind} has no version {version!r} in its CRD (served: {sorted(versions)}); "
            f"use apiVersion {group}/<one of those>"
        )
    schema = _structural(versions[version]["schema"]["openAPIV3Schema"])
    # Root metadata is ObjectMeta; the CRD only says "type: object" and the server
    # validates it itself, so borrow the built-in definition.
    schema["properties"]["metadata"] = _object_meta_schema()
    return jsonschema.Draft7Validator(schema)


def _object_meta_schema() -> dict[str, Any]:
    """Return ObjectMeta from kubernetes-validate's definitions with its $refs inlined."""
    definitions_file = _kubernetes_validate_file("_definitions.json")
    # Newer releases keep definitions under "$defs", older ones under "definitions".
    definitions = definitions_file.get("$defs") or definitions_file.get("definitions") or {}

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return inline(definitions[str(node["$ref"]).rsplit("/", 1)[-1]])
        return {k: inline(v) for k, v in node.items()}

    return dict(inline(definitions[_OBJECT_META]))


def _kubernetes_validate_file(name: str) -> dict[str, Any]:
    folder = f"v{_full_version()}-local-strict"
    ref = importlib_resources.files("kubernetes_validate").joinpath(
        "kubernetes-json-schema", folder, name
    )
    return dict(json.loads(ref.read_text(encoding="utf-8")))


def _full_version() -> str:
    matches = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) == KUBERNETES_VERSION]
    if not matches:
        raise K8sValidationError(
            f"kubernetes-validate ships no schemas for Kubernetes {KUBERNETES_VERSION}; "
            "install kubernetes-validate>=1.30,<2"
        )
    return matches[-1]


def _describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return f"{obj.get('kind', '<no kind>')} {meta.get('name', '<no name>')!r}"


def _field_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def _error_lines(errors: Iterable[jsonschema.ValidationError]) -> list[str]:
    lines: list[str] = []
    for error in errors:
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - allowed):
                hint = (
                    f"known fields here: {', '.join(sorted(allowed))}"
                    if allowed
                    else ("this object takes no fields")
                )
                lines.append(f"{_field_path([*path, extra])}: unknown field ({hint})")
            continue
        lines.append(f"{_field_path(path)}: {error.message}")
    return sorted(set(lines))


_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _prometheus_rule_admission(obj: dict[str, Any]) -> list[str]:
    """What prometheus-operator's admission webhook refuses that its CRD schema lets by.

    The webhook loads the groups with Prometheus's own rule parser (``rulefmt``), which
    wants exactly one of ``record`` and ``alert`` per rule, a metric name as ``record``,
    no ``for``/``keep_firing_for``/``annotations`` on a recording rule and label names
    that Prometheus accepts. PromQL itself is parsed by tests/monitoring.
    """
    lines: list[str] = []
    for g, group in enumerate(obj.get("spec", {}).get("groups") or []):
        for r, rule in enumerate(group.get("rules") or []):
            where = f"spec.groups[{g}].rules[{r}]"
            if ("record" in rule) == ("alert" in rule):
                lines.append(f"{where}: exactly one of 'record' and 'alert' must be set")
            if "record" in rule:
                if not _METRIC_NAME.match(str(rule["record"])):
                    lines.append(f"{where}.record: {rule['record']!r} is not a metric name")
                for field in ("for", "keep_firing_for", "annotations"):
                    if field in rule:
                        lines.append(f"{where}.{field}: not allowed in a recording rule")
            elif not str(rule.get("alert", "")).strip():
                lines.append(f"{where}.alert: must not be empty")
            for name in rule.get("labels") or {}:
                if not _LABEL_NAME.match(name):
                    lines.append(f"{where}.labels: {name!r} is not a label name")
    return lines


# (group, kind) -> checks an admission webhook makes beyond the CRD's schema.
_ADMISSION_CHECKS = {("monitoring.coreos.com", "PrometheusRule"): _prometheus_rule_admission}


def validate_crd_object(obj: dict[str, Any], folder: Path | None = None) -> None:
    """Validate a custom resource against its upstream CRD schema.

    ``folder``: where the CRDs of one release live (``kserve_crds("0.15.0")``); kinds it
    does not hold come from ``schemas_dir()``. Raises ``K8sValidationError`` listing every bad field by path, for example
    ``spec.predictor.model.storageUrl: unknown field (...)``.
    """
    api_version = obj.get("apiVersion", "")
    if "/" not in api_version or not obj.get("kind"):
        raise K8sValidationError(
            f"{_describe(obj)}: apiVersion {api_version!r} / kind {obj.get('kind')!r} do not "
            "name a custom resource; set apiVersion: <group>/<version> and kind"
        )
    group, version = api_version.split("/", 1)
    validator = _crd_validator(group, obj["kind"], version, folder)
    lines = _error_lines(validator.iter_errors(obj))
    admission = _ADMISSION_CHECKS.get((group, obj["kind"]))
    if admission is not None and not lines:
        lines = admission(obj)
    if lines:
        where = f" of {folder.name}" if folder is not None else ""
        raise K8sValidationError(
            f"{_describe(obj)} ({api_version}) would be rejected by the API server{where}:\n  "
            + "\n  ".join(lines)
        )


def validate_standard_object(obj: dict[str, Any]) -> None:
    """Validate a built-in Kubernetes kind with kubernetes-validate's strict schemas."""
    try:
        kubernetes_validate.validate(copy.deepcopy(obj), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise K8sValidationError(
            f"{_describe(obj)}: {exc.message}; is it a custom resource? "
            "use validate_crd_object for those"
        ) from exc
    except kubernetes_validate.ValidationError as exc:
        errors = [exc, *exc.context] if exc.validator != "anyOf" else list(exc.context)
        lines = _error_lines(errors) or [f"{_field_path(exc.absolute_path)}: {exc.message}"]
        raise K8sValidationError(
            f"{_describe(obj)} ({obj.get('apiVersion')}) fails Kubernetes "
            f"{KUBERNETES_VERSION} validation:\n  " + "\n  ".join(lines)
        ) from exc


def is_crd_kind(obj: dict[str, Any]) -> bool:
    """Say whether ``obj``'s group and kind have a CRD under ``schemas_dir()``."""
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return (group, str(obj.get("kind", ""))) in _crd_index()


def validate_object(obj: dict[str, Any], folder: Path | None = None) -> None:
    """Validate any object: CRD kinds against their CRD, the rest as built-in kinds."""
    if is_crd_kind(obj):
        validate_crd_object(obj, folder)
    else:
        validate_standard_object(obj)
