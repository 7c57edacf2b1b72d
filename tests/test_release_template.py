"""templates/github-workflows/kfp-mlops-image.yml: an image release workflow to copy as it is.

Valid YAML; builds with the Dockerfile's build arguments, tests the image by running the
training pipeline in it with the real CLI's `--runner docker`, pushes only on a tag (or a
manual run that asks) to the registry the user names, tagged by version and commit, and
reports the digest to compile against. No registry or secret is written into a script.
"""

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from kfp_mlops.app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "github-workflows" / "kfp-mlops-image.yml"


def _workflow() -> dict[Any, Any]:
    return yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))


def _steps() -> list[dict[str, Any]]:
    return list(_workflow()["jobs"]["image"]["steps"])


def _step(uses: str, **where: Any) -> list[dict[str, Any]]:
    return [s for s in _steps() if str(s.get("uses", "")).startswith(uses)
            and all(s.get("with", {}).get(k) == v for k, v in where.items())]


def test_it_releases_on_version_tags_and_by_hand():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # PyYAML reads `on` as True
    assert triggers["push"]["tags"] == ["v*"] and "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["env"]["REGISTRY"] == "${{ vars.KFP_MLOPS_REGISTRY }}"


def test_the_build_passes_the_dockerfile_build_arguments():
    dockerfile = (ROOT / "Dockerfile").read_text()
    declared = set(re.findall(r"^ARG (\w+)", dockerfile, re.M))
    for step in _step("docker/build-push-action@"):
        passed = {line.split("=", 1)[0].strip() for line in step["with"]["build-args"].splitlines()
                  if "=" in line and not line.strip().startswith("${{")}
        assert passed == {"VERSION", "REVISION", "SOURCE"} <= declared
        assert "BASE_IMAGE" in step["with"]["build-args"] and "BASE_IMAGE" in declared


def test_the_image_is_tested_by_a_training_run_in_it_before_any_push():
    names = [s.get("name", s.get("uses")) for s in _steps()]
    [load] = _step("docker/build-push-action@", load=True)
    [push] = _step("docker/build-push-action@", push=True)
    train = next(s for s in _steps() if "kfp-mlops run" in s.get("run", ""))
    assert names.index(load.get("name")) < names.index(train["name"]) < names.index(push["name"])
    argv = shlex.split(train["run"])[1:]
    args = build_parser().parse_args(argv)
    assert args.command == "run" and args.runner == "docker" and args.image == load["with"]["tags"]


def test_it_pushes_version_and_commit_tags_and_reports_the_digest():
    [push] = _step("docker/build-push-action@", push=True)
    assert push["if"] == "github.event_name == 'push' || inputs.push"
    assert push["with"]["tags"] == "${{ steps.meta.outputs.tags }}"
    meta = next(s for s in _steps() if s.get("id") == "meta")["run"]
    assert 'tags=$image:$version,$image:sha-${GITHUB_SHA::12}' in meta
    assert '"$GITHUB_REF_NAME" != "v$version"' in meta  # a tag must match the version
    pin = next(s for s in _steps() if s.get("name") == "Pin pipelines to the digest")
    assert pin["env"]["DIGEST"] == "${{ steps.push.outputs.digest }}"
    compile_line = re.search(r"kfp-mlops (compile [^\"]+)", pin["run"]).group(1)
    args = build_parser().parse_args(shlex.split(compile_line.replace("$IMAGE@$DIGEST", "r/k@sha256:0")))
    assert args.image == "r/k@sha256:0"


def test_registry_credentials_come_from_secrets_through_the_login_action():
    [login] = _step("docker/login-action@")
    assert login["with"] == {"registry": "${{ env.REGISTRY }}",
                             "username": "${{ secrets.REGISTRY_USERNAME }}",
                             "password": "${{ secrets.REGISTRY_PASSWORD }}"}
    for step in _steps():
        assert "secrets." not in step.get("run", "")


def test_every_action_is_pinned_to_a_major_version():
    for step in _steps():
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
