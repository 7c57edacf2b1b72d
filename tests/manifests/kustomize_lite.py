"""A tiny subset of ``kustomize build`` for machines without ``kubectl``.

It understands exactly the features that ``manifests/`` uses: ``resources`` (files and
folders, recursively), a ``namespace`` field or a builtin ``NamespaceTransformer`` (with
``setRoleBindingSubjects``), ``images`` (``newName``/``newTag``) and ``patches`` given as a
partial object (``path`` or inline ``patch``) with a ``target`` (and the
``allowKindChange`` option); maps merge, lists are replaced. Anything else raises, so a
new kustomize feature can't be silently ignored.
When ``kubectl`` exists the tests check this output against ``kubectl kustomize``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

# Kinds kustomize knows are cluster-scoped; like kustomize, unknown (CRD) kinds get a namespace.
_CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "Namespace",
    "PersistentVolume",
    "StorageClass",
}
_SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "patches",
    "transformers",
}


def build(folder: Path) -> list[Obj]:
    """Return the objects ``kustomize build folder`` would emit (order not guaranteed)."""
    kustomization = _load_kustomization(folder)
    unsupported = set(kustomization) - _SUPPORTED_FIELDS
    if unsupported:
        raise NotImplementedError(
            f"{folder}/kustomization.yaml uses {sorted(unsupported)}, which kustomize_lite "
            "does not implement; extend tests/manifests/kustomize_lite.py or install kubectl"
        )
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = (folder / entry).resolve()
        objects.extend(build(path) if path.is_dir() else _load_docs(path))
    for patch in kustomization.get("patches", []):
        _apply_patch(folder, patch, objects)
    if "namespace" in kustomization:
        _set_namespace(objects, kustomization["namespace"], all_subjects=False)
    for name in kustomization.get("transformers", []):
        for transformer in _load_docs(folder / name):
            _apply_transformer(transformer, objects)
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    return objects


def _load_kustomization(folder: Path) -> Obj:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (folder / name).is_file():
            return _load_docs(folder / name)[0]
    raise FileNotFoundError(f"{folder} has no kustomization.yaml")


def _load_docs(path: Path) -> list[Obj]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def _matches(obj: Obj, target: Obj) -> bool:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    checks = {
        "group": group,
        "kind": obj.get("kind"),
        "name": obj.get("metadata", {}).get("name"),
    }
    return all(target[key] == value for key, value in checks.items() if key in target)


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


def _apply_patch(folder: Path, patch: Obj, objects: list[Obj]) -> None:
    body = (
        _load_docs(folder / patch["path"])[0] if "path" in patch else yaml.safe_load(patch["patch"])
    )
    if isinstance(body, list):
        raise NotImplementedError("JSON 6902 patches are not supported by kustomize_lite")
    target = patch.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
    options = patch.get("options") or {}
    unknown = set(options) - {"allowKindChange"}
    if unknown:
        raise NotImplementedError(f"kustomize_lite does not implement patch options {unknown}")
    # Like kustomize, a patch keeps the target's kind unless allowKindChange says otherwise.
    kept = ("apiVersion", "kind") if not options.get("allowKindChange") else ()
    for index, obj in enumerate(objects):
        if _matches(obj, target):
            patched = {k: v for k, v in body.items() if k not in kept}
            # A patch matched by target must not rename the object.
            patched.setdefault("metadata", {})["name"] = obj["metadata"]["name"]
            objects[index] = _merge(obj, patched)


def _apply_transformer(transformer: Obj, objects: list[Obj]) -> None:
    if (transformer.get("apiVersion"), transformer.get("kind")) != (
        "builtin",
        "NamespaceTransformer",
    ):
        raise NotImplementedError(f"kustomize_lite only knows NamespaceTransformer: {transformer}")
    subjects = transformer.get("setRoleBindingSubjects", "defaultOnly")
    _set_namespace(
        objects, transformer["metadata"]["namespace"], all_subjects=subjects == "allServiceAccounts"
    )


def _set_namespace(objects: list[Obj], namespace: str, *, all_subjects: bool) -> None:
    for obj in objects:
        if obj["kind"] not in _CLUSTER_SCOPED:
            obj.setdefault("metadata", {})["namespace"] = namespace
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects", []):
                is_sa = subject.get("kind") == "ServiceAccount"
                if is_sa and (all_subjects or subject.get("name") == "default"):
                    subject["namespace"] = namespace


def _set_image(objects: list[Obj], image: Obj) -> None:
    for obj in objects:
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})  # a Deployment's pod template
        for container in spec.get("containers", []) + pod.get("containers", []):
            name, _, tag = container.get("image", "").partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
