"""Model card: a self-contained HTML page and a Markdown summary per model."""

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from kfp_mlops.data.sources import DataError, load_table
from kfp_mlops.model.blessing import BlessingPolicy, bless
from kfp_mlops.model.card import card_step, render_model_card
from kfp_mlops.model.evaluate import evaluate_model
from kfp_mlops.model.package import write_model_folder
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.steps import evaluate
from kfp_mlops.model.train import train_model

FIGURE = "<figure><svg class='plot'"  # one inline SVG chart per figure


def trained(name, target, task, tmp_path_factory, estimator="auto"):
    frame = load_table(name)
    train, test = train_test_split(frame, test_size=0.3, random_state=0)
    # One OpenMP thread: on a busy 2-core machine more threads only spin-wait.
    with threadpool_limits(limits=1, user_api="openmp"):
        model, metadata = train_model(train, TrainingSettings.from_parameters(
            target=target, task=task, estimator=estimator))
    folder = tmp_path_factory.mktemp(name) / "model"
    metadata = write_model_folder(model, metadata, folder)
    metadata.name, metadata.version, metadata.run_id = name.replace("_", "-"), 2, "run-123"
    metadata.dataset_version, metadata.data_sha256 = "v-2026-01", "d" * 64
    return model, metadata, test, folder


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return trained("breast_cancer", "target", "classification", tmp_path_factory)


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    return trained("penguins", "species", "classification", tmp_path_factory)


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return trained("diabetes", "target", "regression", tmp_path_factory)


def card_of(model, metadata, test, **options):
    """The card as the pipeline makes it: evaluate (explain=True), then render."""
    return render_model_card(metadata, evaluate_model(model, metadata, test, explain=True),
                             **options)


def assert_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # only data: URIs


def assert_metrics_shown(page, markdown, model, metadata, test):
    metrics = evaluate_model(model, metadata, test).metrics
    assert metrics
    for name, value in metrics.items():
        shown = f"{value:.4g}"
        assert f"<td>{name}</td><td>{shown}</td>" in page, name
        assert f"| {name} | {shown} |" in markdown, name


# Two rules per task, so the card's comparison table has several rows to draw.
POLICIES = {"classification": "accuracy>=0.7,f1_macro>=0.6;tolerance=0.01",
            "regression": "r2>=0.5,rmse<=~2%;tolerance=0.01"}


def blessing_for(metadata, model, test, champion_factor):
    metrics = evaluate_model(model, metadata, test).metrics
    champion = {k: v * champion_factor for k, v in metrics.items()}
    return bless(metrics, champion, BlessingPolicy.parse(POLICIES[metadata.task]))


def test_binary_card_has_five_plots_metrics_and_lineage(binary):
    model, metadata, test, _ = binary
    page, markdown = card_of(model, metadata, test, stage="staging",
                                       dataset_summary={"source": "breast_cancer", "rows": 569})
    assert_self_contained(page)
    assert page.count(FIGURE) == 5
    for title in ["Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration curve",
                  "Permutation feature importance"]:
        assert f"<title>{title}</title>" in page
    for legend in ["model (AUC 0.", "chance", "model (AP 0.", "prevalence 0.", "perfectly calibrated"]:
        assert f">{legend}" in page, legend
    assert_metrics_shown(page, markdown, model, metadata, test)
    for fact in ["breast-cancer", "v2", "staging", "HistGradientBoostingClassifier", "run-123",
                 "v-2026-01", "d" * 64, metadata.model_sha256, metadata.sklearn_version, "569",
                 "Intended use", "malignant"]:
        assert fact in page, fact
    for fact in ["breast-cancer v2", "v-2026-01", metadata.model_sha256, "run-123"]:
        assert fact in markdown, fact
    assert "Champion comparison" not in page and "lessed" not in markdown


def test_multiclass_card_with_missing_values_skips_binary_curves_with_a_note(multiclass):
    model, metadata, test, _ = multiclass
    assert test.drop(columns="species").isna().any().any()  # penguins' own gaps
    page, markdown = card_of(model, metadata, test)
    assert_self_contained(page)
    assert page.count(FIGURE) == 3
    assert "<title>ROC curve</title>" not in page
    assert "ROC and precision-recall curves are drawn for binary targets only" in page
    assert "One-vs-rest for the most frequent class" in page
    assert "roc_auc_ovr" in page and "island" in page
    assert_metrics_shown(page, markdown, model, metadata, test)


def test_regression_card_has_residual_plots(regression):
    model, metadata, test, _ = regression
    page, markdown = card_of(model, metadata, test, intended_use="Triage research only.")
    assert_self_contained(page)
    assert page.count(FIGURE) == 3
    for title in ["Residuals vs predicted", "Predicted vs actual",
                  "Permutation feature importance"]:
        assert f"<title>{title}</title>" in page
    assert "<title>Confusion matrix</title>" not in page
    assert "Triage research only." in page and "Triage research only." in markdown
    assert_metrics_shown(page, markdown, model, metadata, test)


def test_blessing_table_appears_with_each_rule(regression):
    model, metadata, test, _ = regression
    verdict = blessing_for(metadata, model, test, 0.9)
    assert verdict.blessed is False  # diabetes r2 < 0.5: the absolute threshold fails
    page, markdown = card_of(model, metadata, test, blessing=verdict.to_dict())
    assert "Champion comparison" in page
    assert "Not blessed: r2" in page  # the verdict is not repeated ("Not blessed: not blessed")
    for row in verdict.comparisons:
        assert f"<td>{row.metric}</td><td>{row.direction}</td>" in page
        assert html.escape(row.why) in page
    assert page.count('<tr class="fail">') == sum(not c.passed for c in verdict.comparisons)
    assert verdict.to_markdown() in markdown


def test_blessed_verdict_on_a_classifier(binary):
    model, metadata, test, _ = binary
    verdict = blessing_for(metadata, model, test, 0.99)
    assert verdict.blessed
    page, _ = card_of(model, metadata, test, blessing=verdict.to_dict())
    assert '<p class="verdict pass">Blessed: all 2 checks passed' in page
    assert page.count('<tr class="pass">') == 2


def test_text_is_escaped_not_injected(binary):
    model, metadata, test, _ = binary
    metadata.name = "<img src=x onerror=alert(1)>"
    try:
        page, _ = card_of(model, metadata, test, intended_use="<script>bad()</script>")
    finally:
        metadata.name = "breast-cancer"
    assert "<script>bad()" not in page and "&lt;script&gt;bad()" in page
    assert "<img src=x" not in page


def test_bad_inputs_name_the_problem(binary):
    model, metadata, test, _ = binary
    with pytest.raises(DataError, match="'comparisons' list"):
        card_of(model, metadata, test, blessing={"blessed": True})
    with pytest.raises(DataError, match=r"comparisons\[0\] lacks"):
        card_of(model, metadata, test, blessing={"comparisons": [{"metric": "x"}]})
    with pytest.raises(DataError, match="no target column 'target'"):
        card_of(model, metadata, test.drop(columns="target"))


def test_importance_samples_big_test_sets():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000),
                          "<i>noise&": rng.normal(size=3000)})
    frame["y"] = 3 * frame["a"] - frame["b"] + rng.normal(scale=0.1, size=3000)
    model, metadata = train_model(frame, TrainingSettings(
        target="y", task="regression", estimator="ridge"))
    page, _ = card_of(model, metadata, frame)
    assert "2000 rows, 5 shuffles" in page
    assert "On 3000 held-out rows" in page
    assert page.count(FIGURE) == 3
    # The scatter plots draw a sample too, and say so.
    assert page.count("A random 2000 of the 3000 rows are drawn.") == 2
    assert page.count("<circle") == 2 * 2000
    assert "&lt;i&gt;noise&amp;" in page and "<i>" not in page  # column names are escaped


def test_importance_agrees_with_scikit_learn(binary):
    from sklearn.inspection import permutation_importance

    from kfp_mlops.model.evaluate import permutation_importance as ours_on
    from kfp_mlops.model.features import model_inputs

    model, metadata, test, _ = binary
    inputs, y = model_inputs(test, metadata), test[metadata.target].astype(str)
    # One OpenMP thread: 600 tiny predictions with spinning OpenMP workers take minutes
    # when other processes hold the cores.
    with threadpool_limits(limits=1, user_api="openmp"):
        ours, _ = ours_on(model, inputs, y, "classification", seed=0)
        theirs = permutation_importance(model, inputs, y, scoring="accuracy", n_repeats=20,
                                        random_state=0).importances_mean
    assert ours.shape == theirs.shape
    # Different shuffles, same statistic: the strongest columns and the sizes agree.
    assert set(np.argsort(ours)[-3:]) == set(np.argsort(theirs)[-3:])
    np.testing.assert_allclose(ours, theirs, atol=0.03)


def write_evaluation(folder, test, tmp_path, **replace):
    test_path = tmp_path / "test.parquet"
    test.to_parquet(test_path)
    evaluation, _ = evaluate(folder, test_path, explain=True)
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps({**evaluation.to_dict(), **replace}))
    return path


def test_card_step_writes_both_files_from_a_model_folder(binary, tmp_path):
    model, metadata, test, folder = binary
    evaluation = write_evaluation(folder, test, tmp_path)
    verdict = blessing_for(metadata, model, test, 0.99)
    card, summary = tmp_path / "card.html", tmp_path / "summary.md"
    card_step(folder, evaluation, card, summary, json.dumps(verdict.to_dict()), "auto")
    page = card.read_text()
    assert page.count(FIGURE) == 5 and "Champion comparison" in page
    assert html.escape("Classifies rows into 'benign', 'malignant'") in page  # default use
    assert "Model card: target model (not yet published)" in page
    assert summary.read_text().startswith("## Model card:")
    with pytest.raises(DataError, match="blessing .* is not JSON"):
        card_step(folder, evaluation, card, summary, "{nope", "auto")
    with pytest.raises(DataError, match="cannot read the evaluation"):
        card_step(folder, tmp_path / "missing.json", card, summary)


def test_card_step_shows_the_evaluation_it_is_given(binary, tmp_path):
    _, _, test, folder = binary
    # Values no computation on these rows gives: the card must show what it was handed,
    # in reading order (accuracy first) whatever order they come in.
    evaluation = write_evaluation(folder, test, tmp_path, rows=12345,
                                  metrics={"f1_macro": 0.5, "accuracy": 0.123456})
    card, summary = tmp_path / "card.html", tmp_path / "summary.md"
    card_step(folder, evaluation, card, summary)
    page = card.read_text()
    assert "<td>0.1235</td>" in page and "<td>0.5</td>" in page
    assert page.index("<td>accuracy</td>") < page.index("<td>f1_macro</td>")
    assert "On 12345 held-out rows." in page
    assert "balanced_accuracy" not in page  # nothing recomputed beside them
    assert "| accuracy | 0.1235 |" in summary.read_text()


def test_rendering_a_card_imports_neither_scikit_learn_nor_pandas():
    import subprocess
    import sys

    code = ("import sys, kfp_mlops.model.card; "
            "print(sorted({'sklearn', 'pandas', 'joblib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_model_card_component_in_a_kfp_local_pipeline(tmp_path):
    from kfp import dsl, local
    from kfp.dsl import Dataset, Output

    from kfp_mlops.components.image import DEFAULT_IMAGE
    from kfp_mlops.components.model.card import model_card
    from kfp_mlops.components.model.evaluate import evaluate as evaluate_op
    from kfp_mlops.components.model.train import train as train_op

    @dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
    def wine_parquet(dataset: Output[Dataset]):
        from kfp_mlops.data.sources import load_table

        load_table("wine").to_parquet(dataset.path)

    @dsl.pipeline(name="card-wine")
    def card_wine():
        data = wine_parquet()
        trained_task = train_op(train_data=data.outputs["dataset"], target="target",
                                task="classification", estimator="logistic_regression")
        scored = evaluate_op(model=trained_task.outputs["model"],
                             test_data=data.outputs["dataset"])
        model_card(model=trained_task.outputs["model"], evaluation=scored.outputs["evaluation"],
                   intended_use="Demo of the card component.")

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path),
               raise_on_error=True)
    card_wine()
    (run_dir,) = tmp_path.iterdir()
    page = (run_dir / "model-card" / "card").read_text()
    assert_self_contained(page)
    assert page.count(FIGURE) == 3 and "Demo of the card component." in page
    output = json.loads((run_dir / "evaluate" / "executor_output.json").read_text())
    accuracy = output["artifacts"]["metrics"]["artifacts"][0]["metadata"]["accuracy"]
    assert f"| accuracy | {accuracy:.4g} |" in (run_dir / "model-card" / "summary").read_text()


def test_a_card_from_metrics_alone_has_no_plots_and_says_what_is_missing(regression):
    _, metadata, _, _ = regression
    page, markdown = render_model_card(metadata, {"metrics": {"r2": 0.5}, "rows": 10})
    assert_self_contained(page)
    assert page.count(FIGURE) == 0
    assert "On 10 held-out rows." in page and "| r2 | 0.5 |" in markdown
    assert "does not record the fitted estimator's other parameters" in page
    with pytest.raises(DataError, match="'metrics' dict"):
        render_model_card(metadata, {"rows": 10})


def test_importance_bounds_are_counts_not_clocks():
    from kfp_mlops.model.evaluate import (
        IMPORTANCE_MAX_CELLS,
        IMPORTANCE_MAX_COLUMNS,
        IMPORTANCE_MIN_REPEATS,
        IMPORTANCE_MIN_ROWS,
        importance_bounds,
    )

    assert importance_bounds(69, 6) == (69, 6, 5)  # small: everything
    assert importance_bounds(3000, 11) == (2000, 11, 5)
    rows, columns, repeats = importance_bounds(1000, 2000)
    assert columns == IMPORTANCE_MAX_COLUMNS and repeats == 5 and rows < 1000
    assert repeats * rows * columns * 2000 <= IMPORTANCE_MAX_CELLS
    # Very wide: rows, then repeats, stop at their floors.
    assert importance_bounds(5000, 50_000) == (IMPORTANCE_MIN_ROWS, IMPORTANCE_MAX_COLUMNS,
                                               IMPORTANCE_MIN_REPEATS)


def wide_frame(rows, columns, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, columns)),
                         columns=[f"x{i}" for i in range(columns)])
    frame["color"] = rng.choice(["red", "green", "blue"], rows)
    score = (2 * frame["x0"] - 1.5 * frame["x1"] + 1.5 * frame["x2"] ** 2
             + 2 * (frame["color"] == "red"))
    frame["y"] = np.where(score + rng.normal(scale=0.3, size=rows) > score.median(), "hi", "lo")
    return frame


def test_importance_on_a_wide_table_measures_the_columns_the_model_uses():
    from kfp_mlops.model.evaluate import IMPORTANCE_MAX_COLUMNS

    frame = wide_frame(1200, 80)
    with threadpool_limits(limits=1, user_api="openmp"):
        model, metadata = train_model(frame.iloc[:800], TrainingSettings(
            target="y", task="classification", estimator="random_forest",
            params={"n_estimators": 30}))
    test = frame.iloc[800:]
    evaluation = evaluate_model(model, metadata, test, explain=True)
    first = evaluation.importance
    assert len(first["columns"]) == IMPORTANCE_MAX_COLUMNS and first["total_columns"] == 81
    # The signal (linear, squared and categorical) is among the measured columns and leads.
    assert {"x0", "x1", "x2", "color"} <= set(first["columns"])
    top = {first["columns"][i] for i in np.argsort(first["mean"])[-4:]}
    assert top == {"x0", "x1", "x2", "color"}
    assert first["note"].startswith(f"{IMPORTANCE_MAX_COLUMNS} of 81 columns measured")
    # Deterministic: the same model and rows give the same figures.
    assert evaluate_model(model, metadata, test, explain=True).importance == first
    page, _ = render_model_card(metadata, evaluation)
    assert f"Bounded: {IMPORTANCE_MAX_COLUMNS} of 81 columns measured" in page


def test_screening_finds_the_columns_the_model_reads_among_many():
    from kfp_mlops.model.evaluate import screen_columns

    class Model:  # reads x3 (through its square: no linear trace), x40 a little, and "kind"
        def predict(self, rows):
            return (rows["x3"].to_numpy() ** 2 + 0.1 * rows["x40"].to_numpy()
                    + (rows["kind"] == "b").to_numpy() * 3)

    rng = np.random.default_rng(1)
    rows = pd.DataFrame(rng.normal(size=(100, 300)), columns=[f"x{i}" for i in range(300)])
    rows["kind"] = rng.choice(["a", "b", "c"], 100).astype(object)
    # 301 columns, 3 kept: groups of columns first, then the best groups' columns alone.
    chosen = screen_columns(Model(), rows, 3, seed=0)
    assert chosen == ["x3", "x40", "kind"]
    assert screen_columns(Model(), rows, 3, seed=0) == chosen  # seeded: reproducible


def test_card_shows_the_published_version_and_run(binary, tmp_path):
    _, metadata, test, folder = binary
    evaluation = write_evaluation(folder, test, tmp_path)
    card, summary = tmp_path / "card.html", tmp_path / "summary.md"
    # The folder was written before publishing: no version, no run (as in a pipeline).
    card_step(folder, evaluation, card, summary)
    assert "(not yet published)" in card.read_text()
    card_step(folder, evaluation, card, summary, version=1, run_id="training-abc12")
    page = card.read_text()
    assert "(not yet published)" not in page and "<small>v1</small>" in page
    assert "<th>run id</th><td><code>training-abc12</code></td>" in page
    assert summary.read_text().startswith("## Model card: target model v1")
    assert "- run id: `training-abc12`" in summary.read_text()


def test_a_calibration_curve_with_too_few_points_says_so(binary):
    _, metadata, _, _ = binary
    curve = {"predicted": [0.08, 0.93], "observed": [0.0, 1.0], "bins": 3, "positive": "yes",
             "note": ""}
    page, _ = render_model_card(metadata, {"metrics": {"accuracy": 1.0}, "rows": 69,
                                           "curves": {"calibration": curve}})
    assert "over 69 held-out rows" in page
    assert "Only 2 of the 3 bins hold rows: too few points for a calibration curve" in page
    curve.update(predicted=[0.1, 0.3, 0.5, 0.7, 0.9], observed=[0.1, 0.3, 0.5, 0.7, 0.9],
                 bins=5, counts=[20, 5, 3, 9, 32])
    page, _ = render_model_card(metadata, {"metrics": {"accuracy": 1.0}, "rows": 69,
                                           "curves": {"calibration": curve}})
    assert "too few points" not in page
    assert all(f">n={n}</text>" in page for n in (20, 5, 3, 9, 32))  # rows per point


def test_card_reads_in_a_700_px_pane(binary, regression):
    model, metadata, test, _ = binary
    verdict = blessing_for(metadata, model, test, 0.99)
    page, _ = card_of(model, metadata, test, blessing=verdict.to_dict())
    sizes = [float(v) for v in re.findall(r"font-size='([\d.]+)'", page)]
    assert sizes and min(sizes) >= 11
    # No chart wider than a 700 px pane's content box (so none is scaled down there).
    widths = [int(v) for v in re.findall(r"<svg class='plot' viewBox='0 0 (\d+)", page)]
    assert widths and max(widths) <= 560
    assert "minmax(min(100%,540px),1fr)" in page and "overflow-wrap:break-word" in page
    # The champion table keeps 7 short columns; each "why" is a full-width row beneath.
    header = re.search(r"<h2>Champion comparison</h2>.*?<thead><tr>(.*?)</tr>", page).group(1)
    assert header.count("<th>") == 7 and "why" not in header
    for row in verdict.comparisons:
        assert f'<tr class="why"><td colspan="7">why: {html.escape(row.why)}</td></tr>' in page
    # Long feature names wrap onto lines; none is cut ("mean fract... dimension").
    importance = re.search(r"<title>Permutation feature importance</title>.*?</svg>", page)
    assert "…" not in importance.group(0)
    lines = re.findall(r"<text [^>]*text-anchor='end'[^>]*>(?:<title>[^<]*</title>)?"
                       r"((?:<tspan[^>]*>[^<]*</tspan>)+)</text>", importance.group(0))
    names = [" ".join(re.findall(r">([^<]*)</tspan>", spans)) for spans in lines]
    assert names and all(name in metadata.feature_names for name in names)
