"""The cluster's KServe version reaches the deploy task (``kfp-mlops compile --kserve-version``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from kfp_mlops.pipelines.cluster import ClusterConfig
from kfp_mlops.pipelines.compile import compile_pipelines


def _deploy_env(path: Path) -> dict[str, str]:
    # The first document is the IR; the second, the platform spec (secrets as env).
    spec = next(yaml.safe_load_all(path.read_text()))
    executors = spec["deploymentSpec"]["executors"]
    (deploy,) = [e for label, e in executors.items() if label.startswith("exec-deploy")]
    return {e["name"]: e["value"] for e in deploy["container"].get("env", [])}


def test_kserve_version_reaches_the_deploy_task_only_when_asked(tmp_path):
    compile_pipelines(tmp_path, cluster=ClusterConfig(), names=["training"])
    # Default: nothing, so the deploy step writes what KServe 0.15.0 (the oldest) accepts.
    assert "KFP_MLOPS_KSERVE_VERSION" not in _deploy_env(tmp_path / "training.yaml")
    compile_pipelines(tmp_path, cluster=ClusterConfig(kserve_version="0.15.2"),
                      names=["training"])
    assert _deploy_env(tmp_path / "training.yaml")["KFP_MLOPS_KSERVE_VERSION"] == "0.15.2"


def test_cli_refuses_a_kserve_version_that_is_no_version(tmp_path, capsys):
    from kfp_mlops.app.cli import main

    code = main(["compile", "--output-dir", str(tmp_path), "--kserve-version", "latest"])
    assert code != 0
    assert "MAJOR.MINOR.PATCH" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.yaml"))
