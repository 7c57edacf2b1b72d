"""The releases of the support matrix (docs/cluster.md), as test dimensions, and how
each release's KFP backend reads a compiled pipeline.

Each Kubeflow release pins one KFP, one KServe and one Knative (the component table of
kubeflow/manifests' README at the release tag): one row of ``RELEASES`` each. Tests
parametrize over ``RELEASES`` and read what the suite emits with the rules of that
release's code, vendored unmodified under ``tests/fixtures/releases`` (one folder per
upstream release; provenance and sha256 in its README): KServe's CRDs, KFP's
``pipeline-runner`` Role, the multi-user profile controller's ``sync.py`` and the
backend's protos, and Knative Serving's field masks (``fieldmask.go``).

``NEWEST_KSERVE`` (the CRDs in ``tests/fixtures/crds``, a kserve/kserve commit after
v0.20.0) is checked too, so a field KServe drops after the newest release fails here.

How each KFP backend reads a compiled pipeline (kubeflow/pipelines, Apache-2.0), so that
a change to the suite's output that one release cannot run fails a test here rather than
on that cluster (``tests/pipelines/test_release_matrix_ir.py``):

- **Which fields each release knows.** The upstream protos, unmodified, are in
  ``tests/fixtures/releases/kfp-<tag>/`` (``api/v2alpha1/pipeline_spec.proto`` and
  ``kubernetes_platform/proto/kubernetes_executor_config.proto``); :class:`ProtoSchema`
  parses their messages, fields and enums.
- **How strictly.** The API server unmarshals the pipeline spec and the platform spec
  with ``protojson.Unmarshal`` (refuses unknown fields and enum values):
  ``backend/src/apiserver/template/v2_template.go``, ``NewV2SpecTemplate`` (at 2.5.0,
  2.15.0 and 2.16.0 alike). A task's Kubernetes executor config travels as a
  ``google.protobuf.Struct`` and the driver decodes it leniently
  (``backend/src/v2/cmd/driver/main.go``, ``parseExecConfigJson`` through
  ``backend/src/common/util/json.go``, ``UnmarshalString``: ``AllowUnknownFields`` at
  2.5.0, ``DiscardUnknown`` from 2.15.0): an unknown field is *dropped*, which is
  harmless only when its value is the proto3 default (the meaning of "absent"). At
  2.5.0 the Argo compiler also decodes it strictly for the pod's metadata
  (``backend/src/v2/compiler/argocompiler/container.go``, ``addContainerExecutorTemplate``:
  ``jsonpb.UnmarshalString``, error ignored), so pod labels and annotations are lost when
  any field is unknown.
- **Fan-in over a loop.** At 2.5.0 the driver skips ParallelFor DAGs when it looks for a
  producer (``backend/src/v2/driver/driver.go``, ``getDAGTasks``: "ParallelFor outputs
  should be handled with dsl.Collected", which that driver then cannot resolve); 2.14.0
  added the resolution (``backend/src/v2/driver/resolve.go``,
  ``resolveUpstreamParameters``/``resolveUpstreamArtifacts`` gather the iterations). So
  below 2.14.0 no task may read a loop task's outputs and no DAG may expose them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RELEASES_DIR = Path(__file__).resolve().parent / "fixtures" / "releases"


@dataclass(frozen=True)
class Release:
    """One row of the support matrix: the versions a Kubeflow release ships."""

    name: str
    kfp: str
    kserve: str
    knative: str
    # Knative Serving tag whose pkg/apis/serving/fieldmask.go is vendored for this row.
    knative_rules: str
    # The kubeflow/pipelines commit of the KFP tag (the vendored protos and role).
    kfp_commit: str
    # Whether the driver resolves outputs gathered from a dsl.ParallelFor (dsl.Collected).
    loop_fan_in: bool
    # Whether an unknown executor-config field makes the pod lose its metadata.
    strict_pod_metadata: bool

    @property
    def kfp_dir(self) -> Path:
        """``tests/fixtures/releases/kfp-<version>``."""
        return RELEASES_DIR / f"kfp-{self.kfp}"

    @property
    def knative_fieldmask(self) -> Path:
        """Knative Serving's ``fieldmask.go`` at the tag this release ships."""
        return RELEASES_DIR / f"knative-serving-v{self.knative_rules}" / "fieldmask.go"

    @property
    def multi_user_s3_policy(self) -> Path | None:
        """The profile controller's ``sync.py`` when it scopes each profile's S3 key.

        KFP 2.5.0's profile controller hands every namespace the installation's own
        MinIO key (no per-profile policy), so there is nothing to check there.
        """
        path = self.kfp_dir / "sync.py"
        return path if path.is_file() else None


# kubeflow/manifests pins these at its release tags (README component table).
KUBEFLOW_1_10 = Release("kubeflow-1.10", kfp="2.5.0", kserve="0.15.0", knative="1.16.2",
                        knative_rules="1.16.2",
                        kfp_commit="d07cf1c7f9bd163091986de9bb723c4078c498b1",
                        loop_fan_in=False, strict_pod_metadata=True)
KUBEFLOW_1_11 = Release("kubeflow-1.11", kfp="2.15.0", kserve="0.15.2", knative="1.16.2",
                        knative_rules="1.16.2",
                        kfp_commit="8fe8d7bdd88f027bde080f619762a0b3294796db",
                        loop_fan_in=True, strict_pod_metadata=False)
KUBEFLOW_MASTER = Release("kubeflow-master", kfp="2.16.0", kserve="0.16.0", knative="1.21.1",
                          knative_rules="1.21.1",
                          kfp_commit="e4ebca310f404dac306e16bc880de12bbbf63b95",
                          loop_fan_in=True, strict_pod_metadata=False)
RELEASES = (KUBEFLOW_1_10, KUBEFLOW_1_11, KUBEFLOW_MASTER)
# The oldest KFP backend of the matrix (the one the fan-in and field rules bite on).
OLDEST = RELEASES[0]
# Every KServe whose CRDs the suite's objects must pass: the releases' and the newest.
NEWEST_KSERVE = "newest"
KSERVE_VERSIONS = tuple(r.kserve for r in RELEASES) + (NEWEST_KSERVE,)


def by_release(test_values=RELEASES):
    """``pytest.mark.parametrize`` over releases, with their names as test ids."""
    return pytest.mark.parametrize("release", test_values, ids=lambda r: r.name)


def by_kserve():
    """``pytest.mark.parametrize`` over every supported KServe version (and the newest)."""
    return pytest.mark.parametrize("kserve", KSERVE_VERSIONS, ids=lambda v: f"kserve-{v}")


# How a KFP backend reads a compiled pipeline --------------------------------------

# Well-known types: any JSON of the right shape (Struct, Value, ListValue), a duration
# string, an rpc status. Their content is not the release's business.
_OPAQUE = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
           "google.protobuf.Duration", "google.protobuf.Any", "google.rpc.Status"}
_SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
            "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}


@dataclass
class Field:
    name: str
    type: str
    repeated: bool = False
    map_value: str | None = None  # map<string, V>: V


@dataclass
class Message:
    fields: dict[str, Field] = field(default_factory=dict)  # by proto name and JSON name


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class ProtoSchema:
    """Messages and enums of a set of .proto files, enough to walk JSON against them."""

    def __init__(self, *paths: Path):
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, set[str]] = {}
        for path in paths:
            text = re.sub(r"//[^\n]*|/\*.*?\*/", "", path.read_text(), flags=re.S)
            self._parse(text)

    def _parse(self, text: str) -> None:
        tokens = re.findall(r'"[^"]*"|[A-Za-z_][\w.]*|\d+|[{}<>;=,\[\]()]', text)
        scope: list[tuple[str, str]] = []  # (kind, name): message, enum, oneof, other
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            kind = scope[-1][0] if scope else "file"
            if tok in ("message", "enum") and i + 2 < len(tokens) and tokens[i + 2] == "{":
                name = ".".join([n for k, n in scope if k in ("message", "enum")] + [tokens[i + 1]])
                (self.messages.setdefault(name, Message()) if tok == "message"
                 else self.enums.setdefault(name, set()))
                scope.append((tok, tokens[i + 1]))
                i += 3
            elif tok == "oneof" and tokens[i + 2] == "{":
                scope.append(("oneof", tokens[i + 1]))
                i += 3
            elif tok == "{":  # service, option blocks...
                scope.append(("other", ""))
                i += 1
            elif tok == "}":
                scope.pop()
                i += 1
            elif kind == "enum" and tokens[i + 1] == "=":
                self.enums[self._current(scope)].add(tok)
                i = tokens.index(";", i) + 1
            elif kind in ("message", "oneof") and tok not in ("option", "reserved", "extensions"):
                end = tokens.index(";", i)
                self._field(scope, tokens[i:end])
                i = end + 1
            else:
                i = tokens.index(";", i) + 1 if ";" in tokens[i:] else len(tokens)

    @staticmethod
    def _current(scope) -> str:
        return ".".join(n for k, n in scope if k in ("message", "enum"))

    def _field(self, scope, words: list[str]) -> None:
        words = words[:words.index("[")] if "[" in words else words
        repeated = words[0] == "repeated"
        if words[0] in ("repeated", "optional", "required"):
            words = words[1:]
        owner = ".".join(n for k, n in scope if k == "message")
        if words[0] == "map":  # map < K , V > name = N
            value, name = words[4], words[6]
            entry = Field(name, "map", map_value=self._qualify(owner, value))
        else:
            entry = Field(words[1], self._qualify(owner, words[0]), repeated=repeated)
        message = self.messages[owner]
        message.fields[entry.name] = entry
        message.fields[_json_name(entry.name)] = entry

    def _qualify(self, owner: str, type_name: str) -> str:
        # Resolved lazily (a type may be declared after its use): keep the scope with it.
        return type_name if type_name in _SCALARS or type_name.startswith("google.") \
            else f"{owner}|{type_name}"

    def resolve(self, qualified: str) -> str:
        """The declared name of a field's type, looked up from the field's scope outwards."""
        if "|" not in qualified:
            return qualified
        owner, name = qualified.split("|")
        name = re.sub(r"^(ml_pipelines|kfp_kubernetes)\.", "", name)
        parts = owner.split(".")
        for depth in range(len(parts), -1, -1):
            candidate = ".".join(parts[:depth] + [name])
            if candidate in self.messages or candidate in self.enums:
                return candidate
        raise KeyError(f"type {name} used in {owner} is declared nowhere")

    def unknown(self, value: Any, message: str, path: str = "") -> list[tuple[str, Any]]:
        """(path, value) of every field or enum value ``message`` does not declare."""
        found: list[tuple[str, Any]] = []
        if message in _OPAQUE or message in _SCALARS:
            return found
        if message in self.enums:
            if isinstance(value, str) and value not in self.enums[message]:
                found.append((path, value))
            return found
        if not isinstance(value, dict):
            return found
        fields = self.messages[message].fields
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            spec = fields.get(key)
            if spec is None:
                found.append((where, item))
            elif spec.map_value:
                for k, v in (item or {}).items():
                    found += self.unknown(v, self.resolve(spec.map_value), f"{where}[{k}]")
            elif spec.repeated:
                for n, v in enumerate(item or []):
                    found += self.unknown(v, self.resolve(spec.type), f"{where}[{n}]")
            else:
                found += self.unknown(item, self.resolve(spec.type), where)
        return found


def schema(release: Release) -> ProtoSchema:
    """The release's pipeline spec and Kubernetes executor config messages."""
    return ProtoSchema(release.kfp_dir / "pipeline_spec.proto",
                       release.kfp_dir / "kubernetes_executor_config.proto")


def _is_default(value: Any) -> bool:
    return value in (None, False, 0, "", [], {})


def problems(release: Release, ir: dict, platform: dict | None) -> list[str]:
    """What ``release`` refuses, drops with a changed meaning, or cannot resolve."""
    rules = schema(release)
    out = [f"{release.kfp} API server refuses unknown field {p}"
           for p, _ in rules.unknown(ir, "PipelineSpec")]
    if platform:
        out += [f"{release.kfp} API server refuses unknown platform field {p}"
                for p, _ in rules.unknown(platform, "PlatformSpec")]
        executors = (platform.get("platforms", {}).get("kubernetes", {})
                     .get("deploymentSpec", {}).get("executors", {}))
        for label, config in executors.items():
            dropped = rules.unknown(config, "KubernetesExecutorConfig")
            out += [f"{release.kfp} driver drops {label}.{p} = {v!r}, which is not the default"
                    for p, v in dropped if not _is_default(v)]
            if dropped and release.strict_pod_metadata and config.get("podMetadata"):
                out.append(f"{release.kfp} Argo compiler loses {label}'s podMetadata: unknown "
                           f"fields {[p for p, _ in dropped]}")
    if not release.loop_fan_in:
        out += [f"{release.kfp} driver cannot resolve {what}" for what in loop_fan_ins(ir)]
    return out


def loop_fan_ins(ir: dict) -> list[str]:
    """Every place an output of a ``dsl.ParallelFor`` task is read (``dsl.Collected``)."""
    dags = {"root": ir["root"]} | {n: c for n, c in ir.get("components", {}).items() if "dag" in c}
    found = []
    for name, component in dags.items():
        tasks = component["dag"].get("tasks", {})
        loops = {t for t, spec in tasks.items()
                 if "parameterIterator" in spec or "artifactIterator" in spec}
        for task, spec in tasks.items():
            for kind in ("parameters", "artifacts"):
                for arg, source in spec.get("inputs", {}).get(kind, {}).items():
                    producer = (source.get("taskOutputParameter") or
                                source.get("taskOutputArtifact") or {}).get("producerTask")
                    if producer in loops:
                        found.append(f"{name}/{task}.{arg} from loop {producer}")
        outputs = component["dag"].get("outputs", {})
        for kind in ("parameters", "artifacts"):
            for out, spec in outputs.get(kind, {}).items():
                text = repr(spec)
                for loop in loops:
                    if f"'producerSubtask': '{loop}'" in text:
                        found.append(f"{name} output {out} from loop {loop}")
    return found
