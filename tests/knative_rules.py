"""What Knative Serving's webhook refuses in a revision's pod spec, read from its source.

Knative validates a Service's revision template by copying each Kubernetes struct
through a *field mask* that keeps only the fields it allows, and refusing every field
the copy lost (``apis.CheckDisallowedFields`` in ``pkg/apis/serving/k8s_validation.go``).
The masks are the functions of ``pkg/apis/serving/fieldmask.go``; this module reads
that file, vendored unmodified per release under ``tests/fixtures/releases``
(``knative-serving-v<tag>/fieldmask.go``, provenance in tests/fixtures/releases/README.md),
so the rules are Knative's own and a new release is one new file.

Reading a mask function: ``out.Field = in.Field`` at the top level of the body means the
field is allowed. Inside ``if in.Field != nil && !*in.Field`` it is allowed only when
false (``privileged`` from 1.17, ``automountServiceAccountToken``). Inside any other
``if`` it depends on a feature flag; those are taken as off, which is Knative's default
for every flag these masks test in the vendored releases (config/core/configmaps/
features.yaml), so a field that needs one is refused here.

Besides the masks, ``k8s_validation.go`` (same tags) refuses: more than one container
port, a port name other than ``http1`` or ``h2c`` (``validateContainersPorts``), the
ports it reserves for the queue-proxy (``reservedPorts``: 8012, 8013, 8022, 9090, 9091
and the profiling port 8008) and the container name ``queue-proxy``. Those few rules
are written out below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# k8s_validation.go: reservedPorts (networking.BackendHTTPPort 8012, BackendHTTP2Port
# 8013, QueueAdminPort 8022, AutoscalingQueueMetricsPort 9090, UserQueueMetricsPort
# 9091, profiling.ProfilingPort 8008), allowed port names, reserved container names.
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
PORT_NAMES = {"http1", "h2c"}
RESERVED_CONTAINER_NAMES = {"queue-proxy"}

_FUNC = re.compile(
    r"^func (?P<name>\w+)Mask\((?:ctx context\.Context, )?in \*corev1\.\w+(?:, \w+ \w+)?\) "
    r"\*corev1\.\w+ \{$"
)
_ASSIGN = re.compile(r"^\s*out\.(?P<field>\w+) = in\.(?P=field)$")
_FALSE_ONLY = re.compile(r"^\s*if in\.(?P<field>\w+) != nil && !\*in\.(?P=field) \{$")


@dataclass(frozen=True)
class Mask:
    """The fields one mask function lets through, as JSON field names."""

    allowed: frozenset[str]
    false_only: frozenset[str]  # allowed only with the value false

    def refusals(self, obj: dict[str, Any], where: str) -> list[str]:
        """Every field of ``obj`` this mask would drop, as ``where.field: reason``."""
        found = []
        for key, value in obj.items():
            if key in self.allowed:
                continue
            if key in self.false_only and value is False:
                continue
            reason = "allowed only as false" if key in self.false_only else "not allowed"
            found.append(f"{where}.{key}: {reason} (value {value!r})")
        return found


def json_name(go_field: str) -> str:
    """A Go field name as Kubernetes spells it in JSON (``HTTPGet`` -> ``httpGet``)."""
    match = re.match(r"^([A-Z]+)(?=[A-Z][a-z]|$)", go_field)
    if match:
        head = match.group(1)
        return head.lower() + go_field[len(head):]
    return go_field[0].lower() + go_field[1:]


def read_masks(fieldmask_go: Path) -> dict[str, Mask]:
    """Parse every ``XMask`` function of ``fieldmask.go``: name (``SecurityContext``) -> Mask."""
    masks: dict[str, Mask] = {}
    name: str | None = None
    allowed: set[str] = set()
    false_only: set[str] = set()
    condition: list[str] = []  # the enclosing if-conditions, innermost last
    for line in fieldmask_go.read_text(encoding="utf-8").splitlines():
        start = _FUNC.match(line)
        if start:
            name, allowed, false_only, condition = start.group("name"), set(), set(), []
            continue
        if name is None:
            continue
        if line == "}":
            masks[name] = Mask(frozenset(allowed), frozenset(false_only))
            name = None
            continue
        stripped = line.strip()
        if stripped.endswith("{"):  # any block: if, else, for, switch, a struct literal
            if stripped.startswith("}"):
                condition.pop()
            condition.append(line)
            continue
        if stripped.startswith("}"):
            condition.pop()
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            continue
        field = assign.group("field")
        if not condition:
            allowed.add(json_name(field))
        elif len(condition) == 1 and (m := _FALSE_ONLY.match(condition[0])) and m.group(
            "field"
        ) == field:
            false_only.add(json_name(field))
        # else: behind a feature flag, off by default
    if not masks:
        raise ValueError(f"{fieldmask_go}: no XMask functions found; is it Knative's fieldmask.go?")
    return masks


def revision_refusals(pod_spec: dict[str, Any], fieldmask_go: Path) -> list[str]:
    """What Knative (the release ``fieldmask_go`` comes from) refuses in ``pod_spec``.

    ``pod_spec`` is a revision template's ``spec`` (a PodSpec). Empty when it passes.
    """
    masks = read_masks(fieldmask_go)
    found = masks["PodSpec"].refusals(pod_spec, "spec")
    containers = pod_spec.get("containers") or []
    ports = [p for c in containers for p in c.get("ports") or []]
    if len(ports) > 1:
        found.append(f"spec.containers: {len(ports)} ports; Knative takes at most one")
    for i, container in enumerate(containers):
        where = f"spec.containers[{i}]"
        found += masks["Container"].refusals(container, where)
        if container.get("name") in RESERVED_CONTAINER_NAMES:
            found.append(f"{where}.name: {container['name']!r} is reserved")
        security = container.get("securityContext")
        if security:
            found += masks["SecurityContext"].refusals(security, f"{where}.securityContext")
            capabilities = security.get("capabilities")
            if capabilities:
                found += masks["Capabilities"].refusals(
                    capabilities, f"{where}.securityContext.capabilities")
        for j, port in enumerate(container.get("ports") or []):
            at = f"{where}.ports[{j}]"
            found += masks["ContainerPort"].refusals(port, at)
            if port.get("name", "") not in PORT_NAMES | {""}:
                found.append(f"{at}.name: {port['name']!r} is not one of {sorted(PORT_NAMES)}")
            if port.get("containerPort") in RESERVED_PORTS:
                found.append(f"{at}.containerPort: {port['containerPort']} is reserved")
        for j, env in enumerate(container.get("env") or []):
            found += masks["EnvVar"].refusals(env, f"{where}.env[{j}]")
        for j, mount in enumerate(container.get("volumeMounts") or []):
            found += masks["VolumeMount"].refusals(mount, f"{where}.volumeMounts[{j}]")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if container.get(probe):
                # ProbeHandler is embedded in Probe: its fields sit in the probe itself.
                allowed = Mask(masks["Probe"].allowed | masks["Handler"].allowed
                               - {"probeHandler"}, frozenset())
                found += allowed.refusals(container[probe], f"{where}.{probe}")
    return found


def kserve_revision_pod_spec(
    isvc: dict[str, Any], runtime: dict[str, Any]
) -> dict[str, Any]:
    """The pod spec KServe puts in the Knative Service of ``isvc`` served by ``runtime``.

    What kserve/kserve's predictor reconciler does (pkg/controller/v1beta1/
    inferenceservice/components/predictor.go at v0.15.0 through v0.16.0): the runtime's
    container named ``kserve-container`` merged with the container fields of
    ``predictor.model`` (``utils.MergeRuntimeContainers``: a strategic merge, so ``env``
    entries merge by name), the runtime's pod fields, and the predictor's own pod fields
    (``serviceAccountName`` here). The storage initializer and the logger's agent are
    added later by KServe's pod mutating webhook, to the pod, not to the revision.
    """
    predictor = isvc["spec"]["predictor"]
    model = predictor.get("model") or {}
    kserve_only = {"modelFormat", "runtime", "protocolVersion", "storageUri"}
    overrides = {k: v for k, v in model.items() if k not in kserve_only}
    containers = []
    for container in runtime["spec"]["containers"]:
        merged = dict(container)
        if container.get("name") == "kserve-container":
            for key, value in overrides.items():
                if key == "env":
                    by_name = {e["name"]: e for e in merged.get("env") or []}
                    by_name.update({e["name"]: e for e in value})
                    merged["env"] = list(by_name.values())
                else:
                    merged[key] = value
        containers.append(merged)
    pod: dict[str, Any] = {"containers": containers}
    pod_fields = {"volumes", "nodeSelector", "affinity", "tolerations", "imagePullSecrets",
                  "serviceAccountName", "securityContext"}
    for source in (runtime["spec"], predictor):
        pod.update({k: v for k, v in source.items() if k in pod_fields})
    return pod
