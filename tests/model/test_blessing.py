"""Champion/challenger blessing and its policy format."""

from __future__ import annotations

import json

import pytest

from kfp_mlops.model.blessing import (
    BlessingPolicy,
    PolicyError,
    Tolerance,
    bless,
)
from kfp_mlops.model.settings import DEFAULT_METRIC, DEFAULT_THRESHOLD, BlessingSettings

POLICY = BlessingPolicy.parse("accuracy>=0.8,f1_macro>=0.7;tolerance=0.01")


def test_parse_compact_form():
    policy = BlessingPolicy.parse(" accuracy >= 0.8 , rmse<=~2% , r2>=0.5~0.05 ;tolerance=0.01")
    acc, rmse, r2 = policy.rules
    assert (acc.metric, acc.direction, acc.threshold, acc.tolerance) == (
        "accuracy", "higher", 0.8, None
    )
    assert (rmse.direction, rmse.threshold) == ("lower", None)
    assert rmse.tolerance == Tolerance(0.02, relative=True)
    assert r2.tolerance == Tolerance(0.05)
    assert policy.tolerance == Tolerance(0.01)
    # The string and dict forms round-trip.
    assert BlessingPolicy.parse(str(policy)) == policy
    assert BlessingPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty blessing policy"),
        ("accuracy>0.8", r"bad rule 'accuracy>0.8'"),
        ("accuracy>=0.8,,f1>=1", r"bad rule ''"),
        ("accuracy>=high", r"rule 'accuracy>=high': 'high' is not a number"),
        ("accuracy>=0.8;tol=0.1", r"unknown policy option 'tol=0.1'"),
        ("accuracy>=0.8;tolerance=-1", "negative"),
        ("accuracy>=0.8~x%", r"'x' is not a number"),
        ("accuracy>=0.8,accuracy>=0.9", "'accuracy' has two rules"),
        ("accuracy>=nan", "not a finite number"),
    ],
)
def test_malformed_specs_name_the_bad_part(spec, message):
    with pytest.raises(PolicyError, match=message):
        BlessingPolicy.parse(spec)


def test_malformed_dict_is_rejected():
    with pytest.raises(PolicyError, match="'rules' list"):
        BlessingPolicy.from_dict({"accuracy": 0.8})
    with pytest.raises(PolicyError, match=r"rules\[0\]: direction 'up'"):
        BlessingPolicy.from_dict({"rules": [{"metric": "accuracy", "direction": "up"}]})


def test_defaults_per_task_are_the_policy_a_run_applies():
    # One default: the library's is the one `kfp-mlops run` and the pipelines apply.
    def rules(policy):
        return [(r.metric, r.direction, r.threshold, r.tolerance) for r in policy.rules]

    classification = BlessingPolicy.default("classification")
    assert rules(classification) == [("accuracy", "higher", 0.7, Tolerance(0.01))]
    regression = BlessingPolicy.default("regression")
    assert rules(regression) == [("r2", "higher", 0.2, Tolerance(0.01))]
    for task, policy in [("classification", classification), ("regression", regression)]:
        assert policy == BlessingPolicy.parse(BlessingSettings().spec(task))
    assert BlessingPolicy.coerce(None, "regression") == regression
    assert BlessingPolicy.coerce("accuracy>=0.5", "regression").rules[0].metric == "accuracy"
    with pytest.raises(PolicyError, match="no default blessing policy for task 'ranking'"):
        BlessingPolicy.default("ranking")
    assert set(DEFAULT_METRIC) == set(DEFAULT_THRESHOLD) == {"classification", "regression"}


def test_first_model_uses_absolute_thresholds_only():
    verdict = bless({"accuracy": 0.85, "f1_macro": 0.75}, None, POLICY)
    assert verdict.blessed
    assert "first model" in verdict.reason
    assert all(c.champion is None and c.passed for c in verdict.comparisons)

    low = bless({"accuracy": 0.79, "f1_macro": 0.75}, None, POLICY)
    assert not low.blessed
    assert low.reason == "not blessed: accuracy 0.79 < threshold 0.8"


def test_champion_comparison_with_tolerance():
    champion = {"accuracy": 0.90, "f1_macro": 0.80}
    within = bless({"accuracy": 0.895, "f1_macro": 0.85}, champion, POLICY)
    assert within.blessed, within.reason
    assert [c.why.split(": ")[-1] for c in within.comparisons] == ["within tolerance", "better"]

    worse = bless({"accuracy": 0.87, "f1_macro": 0.85}, champion, POLICY)
    assert not worse.blessed
    row = worse.comparisons[0]
    assert (row.metric, row.passed, row.tolerance) == ("accuracy", False, 0.01)
    assert "worse than champion 0.9 by 0.03 (tolerance 0.01)" in row.why


def test_lower_is_better_with_relative_tolerance():
    policy = BlessingPolicy.parse("rmse<=10~5%")
    assert bless({"rmse": 8.3}, {"rmse": 8.0}, policy).blessed  # 3.75% worse
    verdict = bless({"rmse": 8.5}, {"rmse": 8.0}, policy)  # 6.25% worse
    assert not verdict.blessed
    assert verdict.comparisons[0].tolerance == pytest.approx(0.4)
    assert not bless({"rmse": 11.0}, None, policy).blessed  # above the absolute ceiling


def test_missing_or_nan_metric_fails_and_missing_champion_metric_is_skipped():
    verdict = bless({"accuracy": float("nan"), "f1_macro": 0.9}, None, POLICY)
    assert not verdict.blessed
    assert "challenger has no finite 'accuracy'" in verdict.reason
    partial = bless({"accuracy": 0.85, "f1_macro": 0.75}, {"accuracy": 0.85}, POLICY)
    assert partial.blessed
    assert partial.comparisons[1].why == "champion has no 'f1_macro': absolute threshold only"


def test_table_renders_as_json_and_markdown():
    champion = {"accuracy": 0.9, "f1_macro": 0.8}
    verdict = bless({"accuracy": 0.87, "f1_macro": 0.85}, champion, POLICY)
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["blessed"] is False
    assert data["comparisons"][0]["metric"] == "accuracy"
    assert set(data["comparisons"][0]) == {
        "metric", "direction", "challenger", "champion", "threshold", "tolerance", "passed", "why"
    }
    markdown = verdict.to_markdown().splitlines()
    assert markdown[0].startswith("**Not blessed**")
    assert markdown[4].startswith("| accuracy | higher | 0.87 | 0.9 | 0.8 | 0.01 | no |")


@pytest.mark.parametrize("spec, words", [
    ("accuracy>=0.7~0.01", "accuracy >= 0.7, at most 0.01 worse than the champion"),
    ("r2>=0.5,rmse<=~2%;tolerance=0.01",
     "r2 >= 0.5, at most 0.01 worse than the champion; "
     "rmse (no ceiling), at most 2% worse than the champion"),
])
def test_policy_in_words(spec, words):
    assert BlessingPolicy.parse(spec).describe() == words
