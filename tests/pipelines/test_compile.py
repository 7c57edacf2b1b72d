"""Compiled pipelines load back in the KFP SDK and validate against the upstream CRDs."""

import yaml
from kfp import components

from kfp_mlops.app.cli import main
from kfp_mlops.pipelines import PIPELINES
from tests.k8s_schemas import validate_crd_object


def test_compile_every_pipeline_with_the_given_image(tmp_path, capsys):
    image = "registry.example.com/team/kfp-mlops:1.2.3"
    assert main(["compile", "--output-dir", str(tmp_path), "--image", image]) == 0
    for name in PIPELINES:
        ir_path = tmp_path / f"{name}.yaml"
        loaded = components.load_component_from_file(str(ir_path))
        assert loaded.name
        # The IR holds the pipeline spec, then the platform (Kubernetes) spec.
        spec, platform = yaml.safe_load_all(ir_path.read_text())
        assert "kubernetes" in platform["platforms"]
        executors = spec["deploymentSpec"]["executors"]
        assert executors and {e["container"]["image"] for e in executors.values()} == {image}
        assert "sdkVersion" in spec
        docs = list(yaml.safe_load_all((tmp_path / f"{name}.k8s.yaml").read_text()))
        assert [d["kind"] for d in docs] == ["Pipeline", "PipelineVersion"]
        for doc in docs:
            validate_crd_object(doc)


def test_credentials_come_from_a_secret_never_parameters(tmp_path, capsys):
    assert main(["compile", "--output-dir", str(tmp_path), "--s3-secret", "team-s3"]) == 0
    text = (tmp_path / "training.yaml").read_text()
    assert "team-s3" in text and "AWS_SECRET_ACCESS_KEY" in text
    spec = next(yaml.safe_load_all(text))
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert not any("secret" in p.lower() or "key" in p.lower() for p in params)


def test_default_image_is_not_a_developer_registry(tmp_path, capsys):
    assert main(["compile", "--output-dir", str(tmp_path)]) == 0
    spec = next(yaml.safe_load_all((tmp_path / "training.yaml").read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"kfp-mlops:0.1.0"}


def test_unknown_pipeline_is_a_clear_error(tmp_path, capsys):
    assert main(["compile", "--output-dir", str(tmp_path), "--pipeline", "nope"]) == 1
    assert "unknown pipeline" in capsys.readouterr().err


def test_signing_secret_reaches_the_store_tasks_only_as_a_secret(tmp_path, capsys):
    assert main(["compile", "--output-dir", str(tmp_path), "--pipeline", "training",
                 "--signing-secret", "team-signing"]) == 0
    spec, platform = yaml.safe_load_all((tmp_path / "training.yaml").read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    signed = {label for label, e in executors.items()
              if any(s["secretName"] == "team-signing" and s["keyToEnv"][0]["envVar"]
                     == "KFP_MLOPS_SIGNING_KEY" for s in e.get("secretAsEnv", []))}
    assert {"exec-publish", "exec-bless-model", "exec-ingest"} <= signed
    assert "team-signing" not in yaml.safe_dump(spec["root"])  # never a parameter
