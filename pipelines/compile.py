"""Compile every pipeline to KFP IR YAML and to the Kubernetes-native form.

IR YAML (``NAME.yaml``) is what the Kubeflow dashboard uploads and
``kfp run create -f`` submits. The Kubernetes-native form (``NAME.k8s.yaml``: a
``Pipeline`` and a ``PipelineVersion`` of ``pipelines.kubeflow.org/v2beta1``) is for
``kubectl apply -f`` on clusters whose KFP API server stores pipelines as Kubernetes
resources. KFP's webhook refuses a changed spec under an existing version name, so the
``PipelineVersion`` is named after the compiled IR's content (same spec, same name; any
change, the image included, a new name) while the ``Pipeline`` keeps its name: applying
a rebuilt pipeline adds a version beside the old ones.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from kfp import compiler
from kfp.compiler.compiler_utils import KubernetesManifestOptions

from kfp_mlops.pipelines import PIPELINES
from kfp_mlops.pipelines.cluster import ClusterConfig, TaskSettings

VERSION_HASH_CHARS = 12


def version_name(pipeline_name: str, ir_yaml: bytes) -> str:
    """The ``PipelineVersion`` name of a compiled spec: the pipeline name and its hash."""
    return f"{pipeline_name}-{hashlib.sha256(ir_yaml).hexdigest()[:VERSION_HASH_CHARS]}"


def compile_pipelines(
    output_dir: str | Path,
    settings: TaskSettings | None = None,
    cluster: ClusterConfig | None = None,
    namespace: str | None = None,
    names: list[str] | None = None,
    sharded: bool = False,
) -> list[Path]:
    """Write ``NAME.yaml`` and ``NAME.k8s.yaml`` for each pipeline; return the paths.

    ``sharded`` compiles ``batch-inference`` in its sharded shape (a prefix of Parquet
    files, one ``score-shard`` pod per shard) as ``batch-inference-sharded.yaml``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cluster = cluster or ClusterConfig()
    written = []
    unknown = sorted(set(names or []) - set(PIPELINES))
    if unknown:
        raise ValueError(f"unknown pipeline(s) {unknown}; known: {', '.join(PIPELINES)}")
    for name, build in PIPELINES.items():
        if names and name not in names:
            continue
        if sharded and name == "batch-inference":
            pipeline, name = build(cluster, settings, sharded=True), "batch-inference-sharded"
        else:
            pipeline = build(cluster, settings)
        ir_path = output_dir / f"{name}.yaml"
        compiler.Compiler().compile(pipeline, str(ir_path))
        k8s_path = output_dir / f"{name}.k8s.yaml"
        compiler.Compiler().compile(
            pipeline,
            str(k8s_path),
            kubernetes_manifest_format=True,
            kubernetes_manifest_options=KubernetesManifestOptions(
                pipeline_name=pipeline.name,
                pipeline_version_name=version_name(pipeline.name, ir_path.read_bytes()),
                namespace=namespace,
                include_pipeline_manifest=True,
            ),
        )
        written += [ir_path, k8s_path]
    return written
