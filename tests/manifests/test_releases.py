"""manifests/ read as each supported Kubeflow release's KServe and Knative read them.

Every overlay is built (``kustomize_lite``) and each KServe object validated, unknown
fields refused, against the CRDs of KServe 0.15.0 (Kubeflow 1.10), 0.15.2 (1.11),
0.16.0 (master) and the newest vendored commit. The revision KServe would hand Knative
in Knative mode is checked with the field masks of Knative Serving 1.16.2 (Kubeflow 1.10
and 1.11) and 1.21.1 (master), read from the vendored ``fieldmask.go``
(``tests/knative_rules.py``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.k8s_schemas import K8sValidationError, kserve_crds, validate_object
from tests.knative_rules import kserve_revision_pod_spec, read_masks, revision_refusals
from tests.manifests import kustomize_lite
from tests.releases import KUBEFLOW_1_10, RELEASES, RELEASES_DIR, by_kserve, by_release

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
OVERLAYS = sorted(p.parent for p in MANIFESTS.glob("overlays/*/kustomization.yaml"))
LOGGER_PATCH = MANIFESTS / "patches" / "logger-model-version.yaml"

# kserve/kserve pkg/controller/v1beta1/inferenceservice/utils/utils.go GetDeploymentMode:
# the annotation values each release honours (any other falls back to the configured
# default, which is Serverless on Kubeflow). v0.15.0/v0.15.2: RawDeployment, Serverless,
# ModelMesh. v0.16.0 and the newest: Standard, Knative, ModelMesh, and the legacy
# RawDeployment/Serverless mapped to them.
HONOURED_MODES = {
    "0.15.0": {"RawDeployment", "Serverless", "ModelMesh"},
    "0.15.2": {"RawDeployment", "Serverless", "ModelMesh"},
    "0.16.0": {"Standard", "Knative", "ModelMesh", "RawDeployment", "Serverless"},
    "newest": {"Standard", "Knative", "ModelMesh", "RawDeployment", "Serverless"},
}


def _by_key(objects):
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@by_kserve()
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_overlay_is_valid_against_the_crds_of_every_supported_kserve(overlay, kserve):
    folder = kserve_crds(kserve)
    for obj in kustomize_lite.build(overlay):
        validate_object(obj, folder)


@by_kserve()
@pytest.mark.parametrize("overlay", ["standard", "knative"])
def test_deployment_mode_annotation_is_one_every_kserve_honours(overlay, kserve):
    objects = _by_key(kustomize_lite.build(MANIFESTS / "overlays" / overlay))
    isvc = objects[("InferenceService", "kfp-mlops-model")]
    mode = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    assert mode in HONOURED_MODES[kserve]


def _with_logger_patch(overlay: str) -> dict:
    isvc = _by_key(kustomize_lite.build(MANIFESTS / "overlays" / overlay))[
        ("InferenceService", "kfp-mlops-model")]
    patch = yaml.safe_load(LOGGER_PATCH.read_text(encoding="utf-8"))
    return kustomize_lite._merge(isvc, {"spec": patch["spec"]})


@by_kserve()
def test_logger_annotation_patch_needs_kserve_0_15_1(kserve):
    patched = _with_logger_patch("standard")
    assert patched["spec"]["predictor"]["logger"]["metadataAnnotations"] == [
        "serving.kfp-mlops.io/model-version"]
    if kserve == "0.15.0":
        with pytest.raises(K8sValidationError, match=r"logger\.metadataAnnotations: unknown"):
            validate_object(patched, kserve_crds(kserve))
    else:
        validate_object(patched, kserve_crds(kserve))


def _knative_revision() -> dict:
    objects = _by_key(kustomize_lite.build(MANIFESTS / "overlays" / "knative"))
    isvc = objects[("InferenceService", "kfp-mlops-model")]
    runtime = objects[("ServingRuntime", "kfp-mlops-sklearn")]
    return kserve_revision_pod_spec(isvc, runtime)


@by_release()
def test_knative_revision_of_the_overlay_passes_knatives_field_masks(release):
    pod = _knative_revision()
    assert pod["containers"][0]["name"] == "kserve-container"
    assert revision_refusals(pod, release.knative_fieldmask) == []


@by_release()
def test_cluster_runtime_container_passes_knatives_field_masks(release):
    # The ClusterServingRuntime serves Knative-mode services in every namespace too.
    runtime = kustomize_lite.build(MANIFESTS / "overlays" / "cluster-runtime")[0]
    isvc = _by_key(kustomize_lite.build(MANIFESTS / "overlays" / "knative"))[
        ("InferenceService", "kfp-mlops-model")]
    pod = kserve_revision_pod_spec(isvc, runtime)
    assert revision_refusals(pod, release.knative_fieldmask) == []


def test_privileged_false_is_refused_before_knative_1_17_and_allowed_after():
    # The rule the runtime was changed for, read from Knative's own source.
    pod = copy.deepcopy(_knative_revision())
    pod["containers"][0]["securityContext"]["privileged"] = False
    old = RELEASES_DIR / "knative-serving-v1.16.2" / "fieldmask.go"
    new = RELEASES_DIR / "knative-serving-v1.21.1" / "fieldmask.go"
    assert revision_refusals(pod, old) == [
        "spec.containers[0].securityContext.privileged: not allowed (value False)"]
    assert revision_refusals(pod, new) == []
    pod["containers"][0]["securityContext"]["privileged"] = True
    assert revision_refusals(pod, new) == [
        "spec.containers[0].securityContext.privileged: allowed only as false (value True)"]


def test_knative_masks_refuse_what_a_revision_may_not_carry():
    pod = copy.deepcopy(_knative_revision())
    container = pod["containers"][0]
    container["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "1"]}}}
    container["ports"].append({"name": "metrics", "containerPort": 9090})
    pod["nodeName"] = "node-1"
    found = revision_refusals(pod, KUBEFLOW_1_10.knative_fieldmask)
    assert "spec.nodeName: not allowed (value 'node-1')" in found
    assert any(line.startswith("spec.containers[0].lifecycle: not allowed") for line in found)
    assert any("capabilities.add: not allowed" in line for line in found)
    assert "spec.containers: 2 ports; Knative takes at most one" in found
    assert "spec.containers[0].ports[1].containerPort: 9090 is reserved" in found
    assert any(".ports[1].name: 'metrics' is not one of" in line for line in found)


def test_every_release_has_its_rules_vendored():
    for release in RELEASES:
        assert kserve_crds(release.kserve).is_dir()
        masks = read_masks(release.knative_fieldmask)
        assert {"PodSpec", "Container", "SecurityContext"} <= set(masks)
        assert (release.kfp_dir / "pipeline-runner-role.yaml").is_file()


def test_vendored_release_files_are_unmodified():
    import hashlib

    readme = (RELEASES_DIR / "README.md").read_text(encoding="utf-8")
    listed = readme.split("in `tests/fixtures/releases`):", 1)[1].split("```")[1]
    expected = dict(reversed(line.split("  ", 1)) for line in listed.strip().splitlines())
    actual = {
        str(path.relative_to(RELEASES_DIR)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(RELEASES_DIR.rglob("*"))
        if path.is_file() and path.name != "README.md"
    }
    assert actual == expected
