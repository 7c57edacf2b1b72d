"""Compile every pipeline to KFP IR YAML and to the Kubernetes-native form.

IR YAML (``NAME.yaml``) is what the Kubeflow dashboard uploads and
``kfp run create -f`` submits. The Kubernetes-native form (``NAME.k8s.yaml``: a
``Pipeline`` and a ``PipelineVersion`` of ``pipelines.kubeflow.org/v2beta1``) is for
``kubectl apply -f`` on clusters whose KFP API server stores pipelines as Kubernetes
resources.
"""

from __future__ import annotations

from pathlib import Path

from kfp import compiler
from kfp.compiler.compiler_utils import KubernetesManifestOptions

import kfp_mlops
from kfp_mlops.components.image import DEFAULT_IMAGE, use_image
from kfp_mlops.pipelines import PIPELINES
from kfp_mlops.pipelines.cluster import ClusterConfig


def compile_pipelines(
    output_dir: str | Path,
    image: str = DEFAULT_IMAGE,
    cluster: ClusterConfig | None = None,
    namespace: str | None = None,
    names: list[str] | None = None,
) -> list[Path]:
    """Write ``NAME.yaml`` and ``NAME.k8s.yaml`` for each pipeline; return the paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cluster = cluster or ClusterConfig()
    version = "v" + kfp_mlops.__version__.replace(".", "-")
    written = []
    unknown = sorted(set(names or []) - set(PIPELINES))
    if unknown:
        raise ValueError(f"unknown pipeline(s) {unknown}; known: {', '.join(PIPELINES)}")
    with use_image(image):
        for name, build in PIPELINES.items():
            if names and name not in names:
                continue
            pipeline = build(cluster)
            ir_path = output_dir / f"{name}.yaml"
            compiler.Compiler().compile(pipeline, str(ir_path))
            k8s_path = output_dir / f"{name}.k8s.yaml"
            resource = pipeline.name
            compiler.Compiler().compile(
                pipeline,
                str(k8s_path),
                kubernetes_manifest_format=True,
                kubernetes_manifest_options=KubernetesManifestOptions(
                    pipeline_name=resource,
                    pipeline_version_name=f"{resource}-{version}",
                    namespace=namespace,
                    include_pipeline_manifest=True,
                ),
            )
            written += [ir_path, k8s_path]
    return written
