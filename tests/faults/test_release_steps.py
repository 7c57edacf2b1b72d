"""Release steps that finish or say what is left (issue 29, point 5).

moto's S3 server behind the fault proxy. An outage between publish and promotion (the
registry's stage change fails) must leave an error naming the published version and
the command that finishes the release; that command then finishes it. A rerun of the
same training (same fingerprint) finding that version unpromoted must not report
"identical, nothing to do" with no production version: the model gate stops and says
which version and what to run; once promoted, "identical" is a success again.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

import pytest

from bench.faultkit.harness import faulty_s3
from bench.faultkit.paths import make_model_folder
from bench.faultkit.proxy import Fault
from kfp_mlops.app.cli import main
from kfp_mlops.model.champion import model_gate
from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.registry import Registry
from kfp_mlops.pipelines.training import stopping_gate
from kfp_mlops.serving.release import ReleaseUnfinishedError, release_version
from kfp_mlops.storage import open_store

pytestmark = pytest.mark.slow


@pytest.fixture
def published(tmp_path):
    """iris version 1 published (blessed, stage none) with a training fingerprint."""
    with faulty_s3(bucket="release-bucket") as faulty:
        uri = faulty.uri(f"r-{tmp_path.name[-12:]}")
        folder = make_model_folder(tmp_path)
        metadata = replace(read_metadata(folder), training_fingerprint="fp-1")
        Registry(open_store(uri)).publish("iris", folder, metadata, blessed=True)
        yield faulty, uri


def test_an_outage_before_promotion_names_the_version_and_the_command(published, capsys):
    faulty, uri = published
    faulty.proxy.inject(Fault("drop_before", times=None,
                              match=lambda method, path: method == "PUT"))
    with pytest.raises(ReleaseUnfinishedError) as caught:
        release_version(uri, "iris", 1, namespace=None)
    faulty.proxy.clear()
    message = str(caught.value)
    assert "iris version 1 IS published" in message and "NOT promoted" in message
    command = message.split("`")[1]
    assert command.startswith("kfp-mlops models promote iris 1 --stage production")
    assert Registry(open_store(uri)).get("iris@1").stage != "production"
    assert main([*shlex.split(command)[1:], "--store", uri]) == 0  # the command finishes it
    assert Registry(open_store(uri)).get("iris@production").version == 1


def test_a_rerun_finding_the_identical_version_unpromoted_says_so(published, tmp_path):
    _, uri = published

    def gate():
        return model_gate(uri, "iris", tmp_path / "unused.parquet", {"accuracy": 0.97},
                          "classification", "accuracy>=0.5", tmp_path / "verdict.json",
                          fingerprint="fp-1")

    decision = gate()
    assert not decision.passed and decision.identical_to is None
    assert "iris version 1" in decision.reason and "never promoted" in decision.reason
    assert "kfp-mlops models promote iris 1 --stage production" in decision.reason
    gates = {"bless-model": {"passed": False, "reason": decision.reason}}
    assert stopping_gate(gates, decision.identical_to) == "bless-model"  # exit status 3
    Registry(open_store(uri)).transition("iris", 1, "production", reason="t", actor="t")
    decision = gate()
    assert decision.identical_to == 1 and not decision.passed
    assert stopping_gate({"bless-model": {"passed": False, "reason": decision.reason}},
                         decision.identical_to) is None  # in production: nothing to do
