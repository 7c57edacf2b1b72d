"""The prediction log sink's manifests: replicated, durable, drained, on its own identity.

Structure is checked here (kubernetes-validate checks every field in test_manifests.py);
that the sink keeps its promises under those settings is tests/faults/test_sink_faults.py.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from kfp_mlops.live.log_sink import parse_args
from tests.k8s_schemas import validate_standard_object
from tests.manifests import kustomize_lite

SINK = Path(__file__).resolve().parents[2] / "manifests" / "base" / "log-sink"


def _objects() -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in kustomize_lite.build(SINK)}


def test_every_object_validates():
    for obj in _objects().values():
        validate_standard_object(obj)
    template = yaml.safe_load((SINK / "s3-secret.template.yaml").read_text())
    validate_standard_object(template)


def test_two_replicas_each_with_its_spool_on_a_claim_and_a_disruption_budget():
    objects = _objects()
    sink = objects[("StatefulSet", "kfp-mlops-log-sink")]
    spec = sink["spec"]
    assert spec["replicas"] >= 2
    assert spec["serviceName"] == "kfp-mlops-log-sink-pods"
    assert objects[("Service", "kfp-mlops-log-sink-pods")]["spec"]["clusterIP"] == "None"
    [claim] = spec["volumeClaimTemplates"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    args = parse_args(container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == args.spool_dir  # the spool is the claim
    assert all(v["name"] != claim["metadata"]["name"] for v in pod.get("volumes", []))
    assert args.fsync  # an acknowledged event is on the volume
    size = claim["spec"]["resources"]["requests"]["storage"]
    # The other half of a buffered pair is spooled past the cap (up to as much again).
    assert size.endswith("Gi") and 2 * args.spool_bytes < int(size[:-2]) * 2**30
    pdb = objects[("PodDisruptionBudget", "kfp-mlops-log-sink")]
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] < spec["replicas"]


def test_drain_fits_the_grace_period_and_memory_fits_the_limit():
    sink = _objects()[("StatefulSet", "kfp-mlops-log-sink")]
    pod = sink["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = parse_args(container["args"])
    assert args.drain_seconds + 10 <= pod["terminationGracePeriodSeconds"]
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi") or limit.endswith("Mi")
    limit_bytes = int(limit[:-2]) * (2**30 if limit.endswith("Gi") else 2**20)
    # The budget, two events being parsed (x12 as Python objects), the runtime (150 MiB).
    assert args.budget_bytes + 2 * 12 * args.max_event_bytes + 150 * 2**20 < limit_bytes
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_own_service_account_and_a_prediction_log_only_key():
    objects = _objects()
    pod = objects[("StatefulSet", "kfp-mlops-log-sink")]["spec"]["template"]["spec"]
    account = objects[("ServiceAccount", pod["serviceAccountName"])]
    assert account["metadata"]["name"] == "kfp-mlops-log-sink"
    assert pod["automountServiceAccountToken"] is False
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    secret = yaml.safe_load((SINK / "s3-secret.template.yaml").read_text())
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    policy = secret["metadata"]["annotations"]["kfp-mlops.io/s3-policy"]
    import json

    statements = json.loads(policy)["Statement"]
    writes = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert all(r.endswith(("/predictions/*", "/.kfp-mlops/*")) for s in writes
               for r in s["Resource"])
    service = objects[("Service", "kfp-mlops-log-sink")]
    assert service["spec"]["sessionAffinity"] == "ClientIP"  # a request's pair, one replica
