"""Every compiled pipeline read as each supported KFP release reads it (2.5.0, 2.15.0, 2.16.0).

The rules and their provenance are in ``tests/releases.py``; the upstream protos they
read are vendored unmodified in ``tests/fixtures/releases/kfp-<tag>/``. What the default output
must satisfy on every release: no field the API server refuses, no executor-config field
the driver drops while it means something, no loop fan-in the driver cannot resolve.
The last tests show that the rules do catch each of those.
"""

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl, kubernetes
from kfp.dsl import TaskConfigField

from kfp_mlops.pipelines import PIPELINES
from kfp_mlops.pipelines.compile import compile_pipelines
from tests.releases import OLDEST, RELEASES, RELEASES_DIR, loop_fan_ins, problems

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    compile_pipelines(out)
    return out


def _documents(path: Path) -> tuple[dict, dict | None]:
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else None)


def test_the_vendored_protos_are_the_upstream_files():
    """The README lists each file and its sha256; an edited copy fails."""
    table = (RELEASES_DIR / "README.md").read_text()
    listed = re.findall(r"^\| (\S+\.proto) \| ", table, re.M)
    found = re.findall(r"^([0-9a-f]{64})  (\S+)$", table, re.M)
    digests = {name: digest for digest, name in found}
    rows = {name: digests.get(name) for name in listed}
    files = sorted(p.relative_to(RELEASES_DIR).as_posix() for p in RELEASES_DIR.rglob("*.proto"))
    assert sorted(rows) == files
    for name, digest in rows.items():
        assert hashlib.sha256((RELEASES_DIR / name).read_bytes()).hexdigest() == digest, name
    for release in RELEASES:
        assert release.kfp_commit in table and release.kfp in table


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"kfp-{r.kfp}")
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_the_default_output_runs_on_every_release(compiled, name, release):
    ir, platform = _documents(compiled / f"{name}.yaml")
    assert problems(release, ir, platform) == []


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"kfp-{r.kfp}")
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_the_kubernetes_native_form_runs_on_every_release(compiled, name, release):
    """The PipelineVersion's spec carries the same pipeline and platform spec (2.5.0 on)."""
    docs = list(yaml.safe_load_all((compiled / f"{name}.k8s.yaml").read_text()))
    (version,) = [d for d in docs if d["kind"] == "PipelineVersion"]
    spec = version["spec"]
    assert problems(release, spec["pipelineSpec"], spec.get("platformSpec")) == []


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_no_task_reads_a_loops_outputs(compiled, name):
    """The fan-in goes through the store (docs/cluster.md), never through dsl.Collected."""
    ir, _ = _documents(compiled / f"{name}.yaml")
    assert loop_fan_ins(ir) == []


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_secrets_are_required_not_optional(compiled, name):
    """``optional`` on a secret mapped as env exists from 2.15.0; older drivers drop it.

    The suite maps its Secrets as required (``optional: false``, which a 2.5.0 driver
    drops with the same meaning), so the pods need them on every release alike.
    """
    _, platform = _documents(compiled / f"{name}.yaml")
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for label, config in executors.items():
        for secret in config.get("secretAsEnv", []):
            assert secret.get("optional", False) is False, label


# The rules catch what they claim -------------------------------------------------------

@dsl.component(base_image="python:3.11")
def _one(x: int) -> int:
    return x


@dsl.component(base_image="python:3.11")
def _total(xs: list) -> int:
    return sum(xs)


def _compile(pipeline, tmp_path) -> tuple[dict, dict | None]:
    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return _documents(path)


def test_a_collected_loop_output_fails_2_5_0_only(tmp_path):
    @dsl.pipeline(name="collected")
    def collected():
        with dsl.ParallelFor([1, 2, 3]) as x:
            one = _one(x=x)
        _total(xs=dsl.Collected(one.output))

    ir, platform = _compile(collected, tmp_path)
    assert [p for p in problems(OLDEST, ir, platform) if "cannot resolve" in p]
    for release in RELEASES[1:]:
        assert problems(release, ir, platform) == []


def test_an_optional_secret_fails_before_2_15_0(tmp_path):
    @dsl.pipeline(name="optional-secret")
    def optional_secret():
        kubernetes.use_secret_as_env(_one(x=1), secret_name="s", secret_key_to_env={"k": "V"},
                                     optional=True)

    ir, platform = _compile(optional_secret, tmp_path)
    assert problems(OLDEST, ir, platform) == [
        "2.5.0 driver drops exec-one.secretAsEnv[0].optional = True, which is not the default"]
    for release in RELEASES[1:]:
        assert problems(release, ir, platform) == []


def test_a_field_an_older_api_server_does_not_know_is_refused(tmp_path):
    @dsl.component(base_image="python:3.11", task_config_passthroughs=[TaskConfigField.ENV])
    def passthrough() -> int:
        return 1

    @dsl.pipeline(name="passthrough")
    def uses_passthrough():
        passthrough()

    ir, platform = _compile(uses_passthrough, tmp_path)
    assert problems(OLDEST, ir, platform) == [
        "2.5.0 API server refuses unknown field components[comp-passthrough].taskConfigPassthroughs"]
    assert problems(RELEASES[1], ir, platform) == []


def test_pod_metadata_is_lost_at_2_5_0_beside_an_unknown_field(tmp_path):
    @dsl.pipeline(name="labelled")
    def labelled():
        task = _one(x=1)
        kubernetes.add_pod_label(task, "team", "a")
        kubernetes.use_secret_as_env(task, secret_name="s", secret_key_to_env={"k": "V"})

    ir, platform = _compile(labelled, tmp_path)
    assert problems(OLDEST, ir, platform) == [
        "2.5.0 Argo compiler loses exec-one's podMetadata: unknown fields "
        "['secretAsEnv[0].optional']"]
    assert problems(RELEASES[1], ir, platform) == []
