"""JSON Schemas for the prometheus-operator kinds that manifests/monitoring uses.

The upstream CRDs (monitoring.coreos.com PodMonitor and PrometheusRule) are not in
``../shared/schemas`` and ``kubernetes-validate`` only knows built-in kinds, so these
schemas are written by hand from the v1 CRDs for exactly the fields the manifests use.
Like the API server with a structural schema, they refuse any field they do not list,
so a typo fails here; a field that is valid upstream but missing here fails too, and
means: add it to this file after checking the upstream CRD.
"""

from __future__ import annotations

from typing import Any

import jsonschema

# The CRDs' duration pattern (monitoring.coreos.com/v1 Duration).
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DNS_NAME = {
    "type": "string",
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    "maxLength": 253,
}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_METADATA = _obj(
    {"name": _DNS_NAME, "namespace": _DNS_NAME, "labels": _STRING_MAP, "annotations": _STRING_MAP},
    ["name"],
)
_LABEL_SELECTOR = _obj({
    "matchLabels": _STRING_MAP,
    "matchExpressions": {"type": "array", "items": _obj({
        "key": {"type": "string"},
        "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
        "values": {"type": "array", "items": {"type": "string"}},
    }, ["key", "operator"])},
})
_RELABEL = _obj({
    "sourceLabels": {"type": "array", "items": {"type": "string",
                                                "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}},
    "separator": {"type": "string"},
    "targetLabel": {"type": "string"},
    "regex": {"type": "string"},
    "modulus": {"type": "integer"},
    "replacement": {"type": "string"},
    "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod",
                        "HashMod", "labelmap", "LabelMap", "labeldrop", "LabelDrop",
                        "labelkeep", "LabelKeep", "lowercase", "Lowercase", "uppercase",
                        "Uppercase", "keepequal", "KeepEqual", "dropequal", "DropEqual"]},
})

POD_MONITOR = _obj({
    "apiVersion": {"const": "monitoring.coreos.com/v1"},
    "kind": {"const": "PodMonitor"},
    "metadata": _METADATA,
    "spec": _obj({
        "jobLabel": {"type": "string"},
        "podTargetLabels": {"type": "array", "items": {"type": "string"}},
        "selector": _LABEL_SELECTOR,
        "namespaceSelector": _obj({"any": {"type": "boolean"},
                                   "matchNames": {"type": "array", "items": {"type": "string"}}}),
        "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _obj({
            "port": {"type": "string"},
            "portNumber": {"type": "integer", "minimum": 1, "maximum": 65535},
            "path": {"type": "string"},
            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
            "interval": {"type": "string", "pattern": DURATION},
            "scrapeTimeout": {"type": "string", "pattern": DURATION},
            "honorLabels": {"type": "boolean"},
            "relabelings": {"type": "array", "items": _RELABEL},
            "metricRelabelings": {"type": "array", "items": _RELABEL},
        })},
    }, ["selector"]),
}, ["apiVersion", "kind", "metadata", "spec"])

_RULE = {
    **_obj({
        "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "alert": {"type": "string", "minLength": 1},
        "expr": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "for": {"type": "string", "pattern": DURATION},
        "keep_firing_for": {"type": "string", "minLength": 1, "pattern": DURATION},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    }, ["expr"]),
    # Upstream: "Only one of `record` and `alert` must be set" (checked by its webhook).
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
}

PROMETHEUS_RULE = _obj({
    "apiVersion": {"const": "monitoring.coreos.com/v1"},
    "kind": {"const": "PrometheusRule"},
    "metadata": _METADATA,
    "spec": _obj({
        "groups": {"type": "array", "items": _obj({
            "name": {"type": "string", "minLength": 1},
            "interval": {"type": "string", "pattern": DURATION},
            "labels": _STRING_MAP,
            "limit": {"type": "integer"},
            "query_offset": {"type": "string", "pattern": DURATION},
            "rules": {"type": "array", "items": _RULE},
        }, ["name"])},
    }),
}, ["apiVersion", "kind", "metadata", "spec"])

SCHEMAS = {"PodMonitor": POD_MONITOR, "PrometheusRule": PROMETHEUS_RULE}


def validate_prometheus_operator_object(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` (with the field path) if ``obj`` is malformed."""
    kind = obj.get("kind")
    if kind not in SCHEMAS:
        raise ValueError(f"no schema for kind {kind!r}; known: {', '.join(SCHEMAS)}")
    validator = jsonschema.Draft7Validator(SCHEMAS[str(kind)])
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        path = ".".join(str(p) for p in error.absolute_path) or "<root>"
        raise jsonschema.ValidationError(f"{kind}: {path}: {error.message}")
