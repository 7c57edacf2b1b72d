"""Model card: one self-contained HTML page (and a Markdown summary) per model version.

The page has no scripts and no external references: figures are inline SVG (drawn by
:mod:`kfp_mlops.plots`, no matplotlib) and the style sheet is inline, so it renders the
same in the KFP UI (an HTML artifact), in a mail attachment or offline. It shows what a
reviewer asks before approving a model: what it is, how well it does on held-out rows,
where it errs, which inputs matter, how it compares with the current champion, which
data and code made it, and what it is for.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kfp_mlops.errors import DataError
from kfp_mlops.model.blessing import Blessing, Comparison
from kfp_mlops.model.evaluate import evaluate_model
from kfp_mlops.model.features import model_inputs, plan_from_metadata
from kfp_mlops.model.package import ModelMetadata, in_reading_order
from kfp_mlops.plots import BLUE, GREY, Axis, Chart, padded

# Permutation importance refits nothing but predicts n_repeats x columns times: a sample
# keeps the card fast on big test sets and barely changes the ranking.
IMPORTANCE_MAX_ROWS = 2000
IMPORTANCE_REPEATS = 5
IMPORTANCE_TOP = 15


@dataclass
class Figure:
    """One embedded plot: a title, a caption and its inline SVG markup."""

    title: str
    caption: str
    svg: str


def _chart(title: str, x: Axis, y: Axis, legend: Sequence[tuple[str, str, str]] = (),
           **size: int) -> Chart:
    # The figure caption carries the title; the chart shows only its legend row.
    return Chart(title, x=x, y=y, legend=legend, show_title=False, **size)


def _confusion_figure(y: pd.Series, predicted: np.ndarray, labels: list[str]) -> Figure:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y, predicted, labels=labels)
    columns = Axis.of(labels, "predicted", 45 if len(labels) > 3 else 0)
    rows = Axis.of(labels, "actual")
    width = min(330 + 20 * len(labels), 520)
    probe = _chart("Confusion matrix", columns, rows, width=width, height=width)
    # Square cells: the second chart is as much less tall as the probe's plot is too tall.
    height = width - round((probe.y1 - probe.y0) - (probe.x1 - probe.x0))
    chart = _chart("Confusion matrix", columns, rows, width=width, height=height)
    chart.heatmap(matrix)
    return Figure("Confusion matrix", f"Counts on {len(y)} held-out rows; rows are the "
                  "actual class, columns the predicted one.", chart.svg())


def _roc_figure(positive: np.ndarray, score: np.ndarray, label: str) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(positive, score)
    auc = roc_auc_score(positive, score)
    chart = _chart("ROC curve", Axis(*padded(0, 1), "false positive rate"),
                   Axis(*padded(0, 1), "true positive rate"),
                   [(f"model (AUC {auc:.3f})", BLUE, "line"), ("chance", GREY, "dash")])
    chart.line([0, 1], [0, 1], GREY, dash=True)
    chart.line(fpr, tpr, BLUE)
    return Figure("ROC curve", f"Positive class {label!r}.", chart.svg())


def _precision_recall_figure(positive: np.ndarray, score: np.ndarray, label: str) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(positive, score)
    ap = average_precision_score(positive, score)
    base = float(positive.mean())
    chart = _chart("Precision-recall curve", Axis(*padded(0, 1), "recall"),
                   Axis(*padded(0, 1), "precision"),
                   [(f"model (AP {ap:.3f})", BLUE, "line"), (f"prevalence {base:.2f}", GREY,
                                                             "dash")])
    chart.line([0, 1], [base, base], GREY, dash=True)
    chart.line(recall, precision, BLUE)
    return Figure("Precision-recall curve", f"Positive class {label!r}.", chart.svg())


def _calibration_figure(positive: np.ndarray, score: np.ndarray, label: str, note: str) -> Figure:
    from sklearn.calibration import calibration_curve

    bins = int(max(3, min(10, len(positive) // 20)))
    observed, predicted = calibration_curve(positive, score, n_bins=bins, strategy="uniform")
    chart = _chart("Calibration curve", Axis(*padded(0, 1), f"predicted probability of {label!r}"),
                   Axis(*padded(0, 1), f"observed share of {label!r}"),
                   [("perfectly calibrated", GREY, "dash"), ("model", BLUE, "marker")])
    chart.line([0, 1], [0, 1], GREY, dash=True)
    chart.line(predicted, observed, BLUE)
    chart.markers(predicted, observed, BLUE)
    return Figure("Calibration curve", f"{bins} equal-width probability bins; empty bins "
                  f"have no point. {note}".strip(), chart.svg())


def _residual_figures(y: pd.Series, predicted: np.ndarray, target: str) -> list[Figure]:
    actual = y.to_numpy(dtype=float)
    residual = actual - predicted
    residuals = _chart("Residuals vs predicted",
                       Axis(*padded(predicted.min(), predicted.max()), f"predicted {target}"),
                       Axis(*padded(residual.min(), residual.max()),
                            "residual (actual - predicted)"))
    residuals.line([predicted.min(), predicted.max()], [0, 0], GREY, dash=True)
    drawn = residuals.scatter(predicted, residual, BLUE)
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    versus = _chart("Predicted vs actual", Axis(*padded(low, high), f"actual {target}"),
                    Axis(*padded(low, high), f"predicted {target}"),
                    [("perfect", GREY, "dash")])
    versus.line([low, high], [low, high], GREY, dash=True)
    versus.scatter(actual, predicted, BLUE)
    # Both plots draw the same seeded sample of rows.
    sampled = f" A random {drawn} of the {len(y)} rows are drawn." if drawn < len(y) else ""
    return [
        Figure("Residuals vs predicted", "A pattern (funnel, curve) means the errors depend "
               f"on the prediction.{sampled}", residuals.svg()),
        Figure("Predicted vs actual", f"Points on the dashed line are exact.{sampled}",
               versus.svg()),
    ]


def _permutation_importance(
    model: Any, inputs: pd.DataFrame, y: pd.Series, task: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the score drop when each column is shuffled.

    The same statistic as ``sklearn.inspection.permutation_importance``, but the
    shuffled copies of one column are scored in one ``predict`` call: a fitted
    Pipeline's per-call cost made scikit-learn's one-call-per-shuffle loop take 3.3 s
    of the card's 4.7 s on 11 columns.
    """
    from sklearn.metrics import r2_score

    # Class names compared as strings, converted once: accuracy_score would sort them
    # again for each of the columns x repeats scores.
    truth = y.astype(str).to_numpy() if task == "classification" else y

    def score(predicted: np.ndarray) -> float:
        if task == "classification":
            return float(np.mean(np.asarray(predicted).astype(str) == truth))
        return float(r2_score(truth, predicted))

    rng = np.random.default_rng(seed)
    rows = len(inputs)
    baseline = score(model.predict(inputs))
    drops = np.empty((inputs.shape[1], IMPORTANCE_REPEATS))
    for i, column in enumerate(inputs.columns):
        values = inputs[column].to_numpy()
        shuffled = pd.concat([inputs] * IMPORTANCE_REPEATS, ignore_index=True)
        shuffled[column] = np.concatenate(
            [values[rng.permutation(rows)] for _ in range(IMPORTANCE_REPEATS)]
        )
        predicted = np.asarray(model.predict(shuffled))
        for r in range(IMPORTANCE_REPEATS):
            drops[i, r] = baseline - score(predicted[r * rows:(r + 1) * rows])
    return drops.mean(axis=1), drops.std(axis=1)


def _importance_figure(
    model: Any, inputs: pd.DataFrame, y: pd.Series, task: str, seed: int
) -> Figure:
    if len(inputs) > IMPORTANCE_MAX_ROWS:
        inputs = inputs.sample(IMPORTANCE_MAX_ROWS, random_state=seed)
        y = y.loc[inputs.index]
    scoring = "accuracy" if task == "classification" else "r2"
    means, spreads = _permutation_importance(model, inputs, y, task, seed)
    order = np.argsort(means)[::-1][:IMPORTANCE_TOP]  # biggest first, drawn at the top
    names = [str(inputs.columns[i]) for i in order]
    low, high = (means - spreads)[order].min(), (means + spreads)[order].max()
    chart = _chart("Permutation feature importance",
                   Axis(*padded(min(low, 0.0), max(high, 0.0)),
                        f"drop in {scoring} when the column is shuffled"),
                   Axis.of(names), height=max(250, 26 * len(names) + 60))
    chart.line([0, 0], [0, len(names)], GREY, width=1)
    chart.bars(means[order], BLUE, errors=spreads[order],
               tips=[f"{n}: {m:.4g} ± {s:.2g}" for n, m, s in
                     zip(names, means[order], spreads[order], strict=True)])
    shown = f"top {len(names)} of {inputs.shape[1]}" if inputs.shape[1] > len(names) else "all"
    return Figure(
        "Permutation feature importance",
        f"Raw input columns ({shown}); {len(inputs)} rows, {IMPORTANCE_REPEATS} shuffles each, "
        "whiskers show the spread.",
        chart.svg(),
    )


def _figures(model: Any, metadata: ModelMetadata, frame: pd.DataFrame, seed: int
             ) -> tuple[list[Figure], list[str]]:
    """Every plot for the task, and notes on plots that were left out and why."""
    inputs = model_inputs(frame, metadata)
    figures: list[Figure] = []
    notes: list[str] = []
    y: pd.Series
    if metadata.task == "classification":
        y = frame[metadata.target].astype(str)
        predicted = model.predict(inputs)
        labels = [str(c) for c in model.classes_]
        figures.append(_confusion_figure(y, predicted, labels))
        if not hasattr(model, "predict_proba"):
            notes.append("The estimator gives no probabilities: no ROC, precision-recall "
                         "or calibration curves.")
        elif len(labels) == 2:
            positive = (y == labels[1]).to_numpy().astype(int)
            score = model.predict_proba(inputs)[:, 1]
            if positive.min() == positive.max():
                notes.append("The test rows hold one class only: no ROC, precision-recall "
                             "or calibration curves.")
            else:
                figures.append(_roc_figure(positive, score, labels[1]))
                figures.append(_precision_recall_figure(positive, score, labels[1]))
                figures.append(_calibration_figure(positive, score, labels[1], ""))
        else:
            top = str(y.value_counts().idxmax())
            positive = (y == top).to_numpy().astype(int)
            score = model.predict_proba(inputs)[:, labels.index(top)]
            figures.append(_calibration_figure(
                positive, score, top, f"One-vs-rest for the most frequent class {top!r}."))
            notes.append(f"{len(labels)} classes: ROC and precision-recall curves are drawn "
                         "for binary targets only; the metrics table has roc_auc_ovr.")
    else:
        y = frame[metadata.target].astype(float)
        figures.extend(_residual_figures(y, np.asarray(model.predict(inputs), float),
                                         metadata.target))
    figures.append(_importance_figure(model, inputs, y, metadata.task, seed))
    return figures, notes


def blessing_from_dict(raw: dict[str, Any] | Blessing) -> Blessing:
    """Read :meth:`Blessing.to_dict`'s output back, with errors naming the missing part."""
    if isinstance(raw, Blessing):
        return raw
    if not isinstance(raw, dict) or not isinstance(raw.get("comparisons"), list):
        raise DataError(
            "blessing must be a dict with 'blessed', 'reason' and a 'comparisons' list "
            "(Blessing.to_dict()'s output)"
        )
    fields = set(Comparison.__dataclass_fields__)
    rows = []
    for i, row in enumerate(raw["comparisons"]):
        missing = fields - set(row) if isinstance(row, dict) else fields
        if missing:
            raise DataError(f"blessing comparisons[{i}] lacks {sorted(missing)}")
        rows.append(Comparison(**{k: row[k] for k in fields}))
    return Blessing(bool(raw.get("blessed")), str(raw.get("reason", "")), rows)


def default_intended_use(metadata: ModelMetadata) -> str:
    """A conservative intended-use statement derived from the metadata."""
    what = ("Classifies rows into " + ", ".join(repr(c) for c in metadata.classes or [])
            if metadata.task == "classification" else f"Predicts the number {metadata.target!r}")
    return (
        f"{what} from {len(metadata.features)} tabular input columns, for rows drawn from "
        "the same population and time span as the training data"
        f"{' (dataset ' + metadata.dataset_version + ')' if metadata.dataset_version else ''}. "
        "Not validated for other populations, for inputs outside the training ranges, or "
        "for decisions about people without human review."
    )


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]], row_class: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        cells = "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _key_values(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(_fmt(v))}</code></td></tr>"
        for k, v in pairs
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
header{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px}
h1{margin:0 0 8px;font-size:1.6em}h2{margin:28px 0 10px;font-size:1.2em}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:4px 20px 16px;
margin-top:16px}
.badges span{display:inline-block;margin:2px 6px 2px 0;padding:2px 10px;border-radius:12px;
background:#ddf4ff;font-size:.9em}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:#f6f8fa}table.kv th{background:#f6f8fa;white-space:nowrap}
td code{overflow-wrap:anywhere}
tr.fail td{background:#ffebe9}tr.pass td{background:#dafbe1}
.verdict{font-weight:600;padding:8px 12px;border-radius:6px;display:inline-block}
.verdict.pass{background:#dafbe1}.verdict.fail{background:#ffebe9}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:8px;background:#fff}
figure svg{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.88em;color:#57606a;margin-top:4px}
.note{color:#57606a;font-size:.9em}footer{color:#57606a;font-size:.85em;margin:16px 0}
"""


def render_model_card(
    model: Any,
    metadata: ModelMetadata,
    test_frame: pd.DataFrame,
    *,
    blessing: dict[str, Any] | Blessing | None = None,
    dataset_summary: dict[str, Any] | None = None,
    intended_use: str = "",
    stage: str | None = None,
    seed: int = 0,
    metrics: tuple[dict[str, float], int] | None = None,
) -> tuple[str, str]:
    """Render the model card: ``(html, markdown)``.

    Args:
        model: The fitted scikit-learn Pipeline.
        metadata: Its metadata (``metadata.json`` of the model folder).
        test_frame: Held-out rows with the target column; metrics and plots use them.
        blessing: :meth:`Blessing.to_dict` output; adds the champion comparison.
        dataset_summary: Optional facts about the data (``source``, ``rows``,
            ``columns``, ``dataset_version``, ``data_sha256``; other keys are shown too).
        intended_use: What the model is for; empty: :func:`default_intended_use`.
        stage: Registry stage, if known.
        seed: Seed of the permutation-importance shuffles and row sample.
        metrics: ``(metrics, rows)`` computed elsewhere on ``rows`` held-out rows (the
            evaluate step, on the whole split); ``None`` computes them on ``test_frame``.

    """
    if metadata.target not in test_frame.columns:
        raise DataError(
            f"test data has no target column {metadata.target!r}; pass the held-out split"
        )
    verdict = blessing_from_dict(blessing) if blessing else None  # fail before the work
    labelled = test_frame[test_frame[metadata.target].notna()]
    shown, metric_rows = metrics or (
        evaluate_model(model, metadata, labelled).metrics, len(labelled))
    figures, notes = _figures(model, metadata, labelled, seed)
    summary = dict(dataset_summary or {})
    intended = intended_use.strip() or default_intended_use(metadata)
    title = metadata.name or f"{metadata.target} model"
    version = f"v{metadata.version}" if metadata.version is not None else "(not yet published)"
    data_version = summary.pop("dataset_version", None) or metadata.dataset_version
    data_sha = summary.pop("data_sha256", None) or metadata.data_sha256

    badges = [("task", metadata.task), ("target", metadata.target),
              ("estimator", metadata.estimator), ("created", metadata.created_at),
              ("stage", stage)]
    parts = [
        f"<header><h1>Model card: {html.escape(title)} "
        f"<small>{html.escape(version)}</small></h1><div class=\"badges\">"
        + "".join(f"<span>{html.escape(k)}: <b>{html.escape(str(v))}</b></span>"
                  for k, v in badges if v)
        + "</div></header>",
        "<section><h2>Intended use</h2><p>" + html.escape(intended) + "</p></section>",
        f"<section><h2>Metrics</h2><p class=\"note\">On {metric_rows} held-out rows.</p>"
        + _table(["metric", "value"], [[k, v] for k, v in shown.items()])
        + "</section>",
    ]
    if verdict is not None:
        cls = "pass" if verdict.blessed else "fail"
        parts.append(
            "<section><h2>Champion comparison</h2>"
            f"<p class=\"verdict {cls}\">{html.escape(_verdict_line(verdict))}</p>"
            + _table(
                ["metric", "better", "challenger", "champion", "threshold", "tolerance",
                 "passed", "why"],
                [[c.metric, c.direction, c.challenger, c.champion, c.threshold, c.tolerance,
                  c.passed, c.why] for c in verdict.comparisons],
                ["pass" if c.passed else "fail" for c in verdict.comparisons],
            )
            + "</section>"
        )
    parts.append(
        "<section><h2>Plots</h2><div class=\"figures\">"
        + "".join(
            f"<figure>{f.svg}"
            f"<figcaption><b>{html.escape(f.title)}.</b> {html.escape(f.caption)}"
            "</figcaption></figure>"
            for f in figures
        )
        + "</div>"
        + "".join(f"<p class=\"note\">{html.escape(n)}</p>" for n in notes)
        + "</section>"
    )
    plan = plan_from_metadata(metadata)
    facts: list[tuple[str, Any]] = [
        ("source", summary.pop("source", None)),
        ("rows", summary.pop("rows", None)),
        ("columns", summary.pop("columns", None)),
        ("held-out rows (this card)", len(labelled)),
        *sorted(summary.items()),
        ("numeric features", ", ".join(plan.numeric)),
        ("categorical features", ", ".join(plan.categorical)),
        ("dataset version", data_version),
        ("data sha256", data_sha),
    ]
    dropped = metadata.dropped_columns
    parts.append(
        "<section><h2>Data</h2>" + _key_values([(k, v) for k, v in facts if v not in (None, "")])
        + ("<h3>Dropped columns</h3>"
           + _table(["column", "reason"], [[k, v] for k, v in dropped.items()])
           if dropped else "<p class=\"note\">No input column was dropped.</p>")
        + "</section>"
    )
    lineage = _lineage(metadata, data_version, data_sha)
    parts.append(
        "<section><h2>Lineage</h2>" + _key_values(lineage[:-1])
        + "<h3>Estimator parameters</h3><p class=\"note\">Set for this model (the rest are "
        "the estimator's defaults):</p><pre>"
        + html.escape(json.dumps(metadata.params, indent=2, sort_keys=True))
        + "</pre><details><summary>Every parameter of the fitted estimator</summary><pre>"
        + html.escape(_estimator_params(model))
        + "</pre></details></section>"
    )
    page = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Model card: {html.escape(title)} {html.escape(version)}</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        + "".join(parts)
        + f"<footer>Generated by kfp-mlops {html.escape(_version())}.</footer></main></body></html>"
    )
    return page, _markdown(title, version, metadata, shown, metric_rows,
                           verdict, lineage, intended)


def _verdict_line(verdict: Blessing) -> str:
    # Blessing reasons already start with the verdict ("blessed: ..."): don't repeat it.
    label = "Blessed" if verdict.blessed else "Not blessed"
    reason = verdict.reason
    if reason.lower().startswith(label.lower() + ":"):
        reason = reason[len(label) + 1:].strip()
    return f"{label}: {reason}"


def _estimator_params(model: Any) -> str:
    steps = getattr(model, "named_steps", {})
    estimator = steps.get("estimator", model) if isinstance(steps, dict) else model
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return json.dumps(params, indent=2, sort_keys=True, default=repr)


def _version() -> str:
    import kfp_mlops

    return kfp_mlops.__version__


def _lineage(metadata: ModelMetadata, data_version: Any, data_sha: Any) -> list[tuple[str, Any]]:
    return [
        ("dataset version", data_version),
        ("data sha256", data_sha),
        ("model sha256", metadata.model_sha256),
        ("scikit-learn", metadata.sklearn_version),
        ("kfp-mlops", metadata.kfp_mlops_version),
        ("python", metadata.python_version),
        ("run id", metadata.run_id),
        ("params", json.dumps(metadata.params, sort_keys=True)),
    ]


def _markdown(
    title: str,
    version: str,
    metadata: ModelMetadata,
    metrics: dict[str, float],
    rows: int,
    verdict: Blessing | None,
    lineage: list[tuple[str, Any]],
    intended: str,
) -> str:
    lines = [
        f"## Model card: {title} {version}",
        "",
        f"{metadata.task} of `{metadata.target}` with {metadata.estimator}.",
        "",
        f"**Metrics** on {rows} held-out rows:",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in metrics.items()],
        "",
    ]
    if verdict is not None:
        lines += [verdict.to_markdown(), ""]
    lines += ["**Lineage**", ""]
    lines += [f"- {k}: `{_fmt(v)}`" for k, v in lineage]
    lines += ["", f"**Intended use**: {intended}"]
    return "\n".join(lines) + "\n"


MAX_CARD_ROWS = 20_000


def card_step(
    model_dir: str | Path,
    test_path: str | Path,
    card_path: str | Path,
    summary_path: str | Path,
    blessing: str = "{}",
    intended_use: str = "auto",
    metrics: dict[str, float] | None = None,
) -> ModelMetadata:
    """Render the card of the model folder on the held-out Parquet; write both files.

    ``metrics`` (the evaluate step's, on every held-out row) are shown as they are;
    without them the card computes metrics on the rows it draws.
    """
    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model.package import load_model_folder

    parsed: dict[str, Any] | None = None
    if blessing.strip() not in ("", "{}"):
        try:
            parsed = json.loads(blessing)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"blessing {blessing[:80]!r} is not JSON ({exc.msg}); pass Blessing.to_dict() "
                "as JSON, or {} for none"
            ) from None
    model, metadata = load_model_folder(model_dir)
    test_frame = read_dataset(test_path)
    # evaluate scored every labelled held-out row; the figures below use a sample.
    scored = (
        (in_reading_order(metrics), int(test_frame[metadata.target].notna().sum()))
        if metrics and metadata.target in test_frame else None
    )
    # The card's figures need a few thousand rows, not millions: the pipeline's metrics
    # (evaluate) use every held-out row; the card draws on a seeded sample.
    if len(test_frame) > MAX_CARD_ROWS:
        test_frame = test_frame.sample(MAX_CARD_ROWS, random_state=0)
    page, markdown = render_model_card(
        model, metadata, test_frame, blessing=parsed,
        intended_use="" if intended_use == "auto" else intended_use,
        metrics=scored,
    )
    Path(card_path).write_text(page, encoding="utf-8")
    Path(summary_path).write_text(markdown, encoding="utf-8")
    return metadata
