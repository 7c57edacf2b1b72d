"""submit() and schedule() against an HTTP double of the KFP API server.

The double (tests/automation/kfp_api_double.py) stands in for the KFP API server at the
network boundary: the real kfp.Client and kfp_server_api send real HTTP requests to it
on 127.0.0.1, and the tests read back what the server received.
"""

from __future__ import annotations

import socket

import pytest
import yaml

from kfp_mlops.app.automation.cron import CronError
from kfp_mlops.app.automation.submit import (
    KfpTarget,
    KfpUnreachableError,
    SubmitError,
    parse_param_pairs,
    schedule,
    submit,
)
from kfp_mlops.pipelines.cluster import TaskSettings

FAST = {"poll_interval_s": 0.01}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_first_submit_uploads_the_pipeline_and_starts_a_run(kfp_api):
    result = submit("training", kfp_api.url, arguments={"data": "iris"}, settings=TaskSettings(image="reg/kfp-mlops:1"))

    assert result.new_pipeline
    assert len(kfp_api.calls("POST", "/pipelines/upload")) == 1
    assert not kfp_api.calls("POST", "/pipelines/upload_version")
    [pipeline] = kfp_api.pipelines.values()
    assert pipeline["display_name"] == "kfp-mlops-training" == result.pipeline_name
    assert result.pipeline_id == pipeline["pipeline_id"]
    assert kfp_api.versions[result.version_id]["pipeline_id"] == result.pipeline_id
    # The uploaded file is the compiled IR with the requested image in it.
    upload = kfp_api.calls("POST", "/pipelines/upload")[0].body
    assert "reg/kfp-mlops:1" in upload["uploadfile"]
    assert yaml.safe_load_all(upload["uploadfile"]).__next__()["pipelineInfo"]["name"] == (
        "kfp-mlops-training"
    )
    assert result.url == f"{kfp_api.url}/#/runs/details/{result.run_id}"
    assert result.state == "PENDING" and not result.succeeded


def test_second_submit_uploads_a_new_version_not_a_new_pipeline(kfp_api):
    first = submit("training", kfp_api.url, settings=TaskSettings(image="reg/kfp-mlops:1"))
    second = submit("training", kfp_api.url, settings=TaskSettings(image="reg/kfp-mlops:2"))

    assert len(kfp_api.pipelines) == 1
    assert len(kfp_api.calls("POST", "/pipelines/upload")) == 1
    [version_upload] = kfp_api.calls("POST", "/pipelines/upload_version")
    assert version_upload.query["pipelineid"] == first.pipeline_id
    assert "reg/kfp-mlops:2" in version_upload.body["uploadfile"]
    assert second.pipeline_id == first.pipeline_id
    assert second.version_id != first.version_id and not second.new_pipeline
    assert len(kfp_api.versions) == 2
    runs = {r["run_id"]: r for r in kfp_api.runs.values()}
    ref = runs[second.run_id]["pipeline_version_reference"]
    assert ref == {"pipeline_id": first.pipeline_id, "pipeline_version_id": second.version_id}


def test_resubmitting_the_same_yaml_reuses_its_version(kfp_api):
    submit("training", kfp_api.url, settings=TaskSettings(image="reg/kfp-mlops:1"))
    second = submit("training", kfp_api.url, settings=TaskSettings(image="reg/kfp-mlops:2"))
    third = submit("training", kfp_api.url, settings=TaskSettings(image="reg/kfp-mlops:2"))

    assert third.version_id == second.version_id
    assert len(kfp_api.versions) == 2  # the double answered 409 and nothing was added
    assert len(kfp_api.runs) == 3


def test_run_gets_the_parameters_typed_as_the_pipeline_declares(kfp_api):
    params = parse_param_pairs(["data=iris", "test_size=0.3", "seed=7", "params={\"a\": 1}"])
    result = submit("training", KfpTarget(kfp_api.url, experiment="nightly"), arguments=params)

    [create] = kfp_api.calls("POST", "/runs")
    assert create.body["runtime_config"]["parameters"] == {
        "data": "iris", "test_size": 0.3, "seed": 7, "params": '{"a": 1}'
    }
    assert create.body["experiment_id"] == result.experiment_id
    assert kfp_api.experiments[result.experiment_id]["display_name"] == "nightly"
    assert create.body["pipeline_version_reference"]["pipeline_version_id"] == result.version_id


def test_existing_experiment_is_reused(kfp_api):
    first = submit("training", kfp_api.url)
    second = submit("training", kfp_api.url)

    assert first.experiment_id == second.experiment_id
    assert kfp_api.experiments[first.experiment_id]["display_name"] == "Default"
    assert not kfp_api.calls("POST", "/experiments")


def test_wait_follows_the_run_until_it_succeeds(kfp_api):
    result = submit("training", kfp_api.url, wait=True, timeout_s=600, **FAST)

    assert result.state == "SUCCEEDED" and result.succeeded
    assert len(kfp_api.calls("GET", f"/runs/{result.run_id}")) == kfp_api.gets_until_done


def test_wait_reports_a_failed_run(kfp_api):
    kfp_api.final_state = "FAILED"
    result = submit("training", kfp_api.url, wait=True, timeout_s=600, **FAST)

    assert result.state == "FAILED" and not result.succeeded


def test_wait_that_times_out_names_the_run_and_how_to_follow_it(kfp_api):
    kfp_api.gets_until_done = 10**9
    with pytest.raises(SubmitError) as info:
        submit("training", kfp_api.url, wait=True, timeout_s=0, **FAST)
    [run_id] = kfp_api.runs
    assert run_id in str(info.value) and "RUNNING" in str(info.value)
    assert "--timeout" in str(info.value)


def test_schedule_creates_a_recurring_run_with_the_cron(kfp_api):
    result = schedule(
        "training", KfpTarget(kfp_api.url, experiment="nightly"), cron="0 0 2 * * *",
        arguments={"seed": "3"}, job_name="nightly-training", max_concurrency=2,
    )

    [create] = kfp_api.calls("POST", "/recurringruns")
    body = create.body
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}
    assert body["display_name"] == "nightly-training" == result.name
    assert body["max_concurrency"] == 2 and body["mode"] == "ENABLE"
    assert body["no_catchup"] is True
    assert body["runtime_config"]["parameters"] == {"seed": 3}
    assert body["pipeline_version_reference"] == {
        "pipeline_id": result.pipeline_id, "pipeline_version_id": result.version_id
    }
    assert body["experiment_id"] == result.experiment_id
    assert result.recurring_run_id in kfp_api.recurring_runs
    assert result.cron == "0 0 2 * * *"


def test_schedule_refuses_a_duplicate_name_unless_replace(kfp_api):
    first = schedule("training", kfp_api.url, cron="@daily", job_name="nightly")
    with pytest.raises(SubmitError, match="already has a recurring run named 'nightly'"):
        schedule("training", kfp_api.url, cron="@daily", job_name="nightly")
    second = schedule("training", kfp_api.url, cron="@hourly", job_name="nightly", replace=True)

    assert list(kfp_api.recurring_runs) == [second.recurring_run_id]
    assert kfp_api.calls("DELETE", f"/recurringruns/{first.recurring_run_id}")


@pytest.mark.parametrize("cron", ["0 2 * * *", "0 0 25 * * *", "@sometimes", "* * * * * * *"])
def test_bad_cron_is_rejected_before_any_request(kfp_api, cron):
    with pytest.raises(CronError):
        schedule("training", kfp_api.url, cron=cron)
    assert kfp_api.requests == []


def test_max_concurrency_outside_kfp_range_is_rejected_before_any_request(kfp_api):
    with pytest.raises(SubmitError, match="1-10"):
        schedule("training", kfp_api.url, cron="@daily", max_concurrency=11)
    assert kfp_api.requests == []


def test_unknown_parameter_is_rejected_before_any_request(kfp_api):
    with pytest.raises(SubmitError, match="no parameter 'datta'.*data, estimator"):
        submit("training", kfp_api.url, arguments={"datta": "iris"})
    assert kfp_api.requests == []


def test_badly_typed_parameter_names_the_parameter_and_an_example(kfp_api):
    with pytest.raises(SubmitError, match="'test_size' takes number double.*test_size=0.3"):
        submit("training", kfp_api.url, arguments={"test_size": "a lot"})
    assert kfp_api.requests == []


def test_bad_model_name_is_refused_before_any_request(kfp_api):
    """On the cluster ingest would store a dataset version before publish refused it."""
    with pytest.raises(SubmitError, match="invalid model name 'Wine_Quality'.*nothing was"):
        submit("training", kfp_api.url, arguments={"data": "s3://b/wine.csv",
                                                   "model_name": "Wine_Quality"})
    assert kfp_api.requests == []


def test_unknown_pipeline_lists_the_known_ones(kfp_api):
    from kfp_mlops.pipelines import PIPELINES

    with pytest.raises(SubmitError, match="unknown pipeline 'trainign'; known: ") as info:
        submit("trainign", kfp_api.url)
    assert all(name in str(info.value) for name in PIPELINES)
    assert kfp_api.requests == []


def test_unreachable_host_is_a_clear_error_naming_host_and_fix():
    host = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(KfpUnreachableError) as info:
        submit("training", host)
    message = str(info.value)
    assert host in message and "port-forward" in message and "--host" in message
    assert info.value.__suppress_context__  # no chained traceback for the CLI to print


def test_host_without_scheme_is_refused_with_the_fix():
    with pytest.raises(KfpUnreachableError, match="http://"):
        submit("training", "localhost:8080")


def test_server_that_is_not_kfp_is_named(kfp_api):
    with pytest.raises(KfpUnreachableError, match="HTTP 404"):
        submit("training", kfp_api.url + "/not-kfp")


def test_multi_user_server_without_namespace_asks_for_one(kfp_api):
    kfp_api.multi_user = True
    with pytest.raises(SubmitError, match="namespace"):
        submit("training", kfp_api.url)
    assert [r.path for r in kfp_api.requests] == ["/apis/v2beta1/healthz"]


def test_server_refusal_carries_the_server_message(kfp_api):
    kfp_api.faults[("POST", "/runs")] = (7, "PermissionDenied: user may not create runs")
    with pytest.raises(SubmitError, match="start a run .*HTTP 403 PermissionDenied: user may"):
        submit("training", kfp_api.url)


@pytest.mark.parametrize("pairs", [["noequals"], ["=x"], ["a=1", "a=2"]])
def test_bad_param_pairs_are_named(pairs):
    with pytest.raises(SubmitError, match="--param"):
        parse_param_pairs(pairs)


def test_param_values_may_contain_equals():
    assert parse_param_pairs(["params={\"a\": \"b=c\"}"]) == {"params": '{"a": "b=c"}'}


def test_cli_passes_service_account_token_and_caching(kfp_api, tmp_path, capsys):
    from kfp_mlops.app.cli import main

    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    assert main(["submit", "training", "--host", kfp_api.url, "--service-account", "trainer",
                 "--token-file", str(token), "--no-caching", "--train-memory", "8Gi",
                 "--output", "json"]) == 0
    [run] = kfp_api.calls("POST", "/runs")
    assert run.body["service_account"] == "trainer"
    assert {r.authorization for r in kfp_api.requests} == {"Bearer s3cr3t-token"}
    # --no-caching is compiled into the uploaded spec: no task caches, train asks for 8Gi.
    spec = next(yaml.safe_load_all(kfp_api.calls("POST", "/pipelines/upload")[0].body["uploadfile"]))
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    assert not any(t.get("cachingOptions", {}).get("enableCache")
                   for dag in dags for t in dag["tasks"].values())
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert train["resourceMemoryRequest"] == "8Gi"


def test_token_file_comes_from_kfp_environment_variable(kfp_api, tmp_path, monkeypatch, capsys):
    from kfp_mlops.app.cli import main

    token = tmp_path / "projected"
    token.write_text("from-env")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    assert main(["schedule", "training", "--host", kfp_api.url, "--cron", "0 0 3 * * *",
                 "--service-account", "nightly"]) == 0
    [recurring] = kfp_api.calls("POST", "/recurringruns")
    assert recurring.body["service_account"] == "nightly"
    assert {r.authorization for r in kfp_api.requests} == {"Bearer from-env"}


def test_unreadable_token_file_is_named(kfp_api, tmp_path, capsys):
    from kfp_mlops.app.cli import main

    assert main(["submit", "training", "--host", kfp_api.url,
                 "--token-file", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "--token-file" in err
    assert not kfp_api.requests
