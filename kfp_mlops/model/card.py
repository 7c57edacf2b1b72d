"""Model card: one self-contained HTML page (and a Markdown summary) per model version.

The page has no scripts and no external references: figures are inline SVG (drawn by
:mod:`kfp_mlops.plots`, no matplotlib) and the style sheet is inline, so it renders the
same in the KFP UI (an HTML artifact), in a mail attachment or offline. It shows what a
reviewer asks before approving a model: what it is, how well it does on held-out rows,
where it errs, which inputs matter, how it compares with the current champion, which
data and code made it, and what it is for.

The card only draws: every number on it comes from the evaluate step's
:class:`~kfp_mlops.model.evaluate.Evaluation` (``evaluate_model(..., explain=True)``), so
rendering needs neither scikit-learn nor the model, and the card's numbers are the
run's numbers.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kfp_mlops.data.kinds import FEATURE_KINDS
from kfp_mlops.errors import DataError
from kfp_mlops.model.blessing import Blessing, Comparison
from kfp_mlops.model.evaluate import Evaluation
from kfp_mlops.model.package import ModelMetadata, in_reading_order, read_metadata
from kfp_mlops.plots import BLUE, GREY, Axis, Chart, padded

IMPORTANCE_TOP = 15
# A calibration curve with fewer points than this shows no shape: the card says so.
CALIBRATION_MIN_POINTS = 4


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


def _confusion_figure(matrix: list[list[int]], labels: list[str], rows: int) -> Figure:
    columns = Axis.of(labels, "predicted", 45 if len(labels) > 3 else 0)
    actual = Axis.of(labels, "actual")
    width = min(330 + 20 * len(labels), 520)
    probe = _chart("Confusion matrix", columns, actual, width=width, height=width)
    # Square cells: the second chart is as much less tall as the probe's plot is too tall.
    height = width - round((probe.y1 - probe.y0) - (probe.x1 - probe.x0))
    chart = _chart("Confusion matrix", columns, actual, width=width, height=height)
    chart.heatmap(np.asarray(matrix))
    return Figure("Confusion matrix", f"Counts on {rows} held-out rows; rows are the "
                  "actual class, columns the predicted one.", chart.svg())


def _roc_figure(roc: dict[str, list[float]], auc: float, label: str) -> Figure:
    chart = _chart("ROC curve", Axis(*padded(0, 1), "false positive rate"),
                   Axis(*padded(0, 1), "true positive rate"),
                   [(f"model (AUC {auc:.3f})", BLUE, "line"), ("chance", GREY, "dash")])
    chart.line([0, 1], [0, 1], GREY, dash=True)
    chart.line(roc["fpr"], roc["tpr"], BLUE)
    return Figure("ROC curve", f"Positive class {label!r}.", chart.svg())


def _precision_recall_figure(curve: dict[str, Any]) -> Figure:
    base = curve["prevalence"]
    chart = _chart("Precision-recall curve", Axis(*padded(0, 1), "recall"),
                   Axis(*padded(0, 1), "precision"),
                   [(f"model (AP {curve['average_precision']:.3f})", BLUE, "line"),
                    (f"prevalence {base:.2f}", GREY, "dash")])
    chart.line([0, 1], [base, base], GREY, dash=True)
    chart.line(curve["recall"], curve["precision"], BLUE)
    return Figure("Precision-recall curve", f"Positive class {curve['positive']!r}.",
                  chart.svg())


def _calibration_figure(curve: dict[str, Any], rows: int) -> Figure:
    label = curve["positive"]
    chart = _chart("Calibration curve", Axis(*padded(0, 1), f"predicted probability of {label!r}"),
                   Axis(*padded(0, 1), f"observed share of {label!r}"),
                   [("perfectly calibrated", GREY, "dash"), ("model", BLUE, "marker")])
    chart.line([0, 1], [0, 1], GREY, dash=True)
    chart.line(curve["predicted"], curve["observed"], BLUE)
    chart.markers(curve["predicted"], curve["observed"], BLUE)
    points = len(curve["predicted"])
    counts = curve.get("counts")  # rows per drawn point, when the evaluation recorded them
    if counts:
        for x, y, n in zip(curve["predicted"], curve["observed"], counts, strict=True):
            chart.label(x, y, f"n={n}", dy=-8)
    caption = (f"{curve['bins']} equal-width probability bins over {rows} held-out rows; "
               "empty bins have no point.")
    if points < CALIBRATION_MIN_POINTS:
        # Two or three points draw a line whatever the model does: say it is no curve.
        caption += (f" Only {points} of the {curve['bins']} bins hold rows: too few points "
                    "for a calibration curve; judge calibration on more held-out rows.")
    return Figure("Calibration curve", f"{caption} {curve['note']}".strip(), chart.svg())


def _residual_figures(curve: dict[str, list[float]], rows: int, target: str) -> list[Figure]:
    actual = np.asarray(curve["actual"], dtype=float)
    predicted = np.asarray(curve["predicted"], dtype=float)
    residual = actual - predicted
    residuals = _chart("Residuals vs predicted",
                       Axis(*padded(predicted.min(), predicted.max()), f"predicted {target}"),
                       Axis(*padded(residual.min(), residual.max()),
                            "residual (actual - predicted)"))
    residuals.line([predicted.min(), predicted.max()], [0, 0], GREY, dash=True)
    residuals.scatter(predicted, residual, BLUE)
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    versus = _chart("Predicted vs actual", Axis(*padded(low, high), f"actual {target}"),
                    Axis(*padded(low, high), f"predicted {target}"),
                    [("perfect", GREY, "dash")])
    versus.line([low, high], [low, high], GREY, dash=True)
    versus.scatter(actual, predicted, BLUE)
    # Both plots draw the same seeded sample of rows (chosen by the evaluate step).
    sampled = (f" A random {len(actual)} of the {rows} rows are drawn."
               if len(actual) < rows else "")
    return [
        Figure("Residuals vs predicted", "A pattern (funnel, curve) means the errors depend "
               f"on the prediction.{sampled}", residuals.svg()),
        Figure("Predicted vs actual", f"Points on the dashed line are exact.{sampled}",
               versus.svg()),
    ]


def _importance_figure(importance: dict[str, Any]) -> Figure:
    means, spreads = np.asarray(importance["mean"]), np.asarray(importance["std"])
    order = np.argsort(means)[::-1][:IMPORTANCE_TOP]  # biggest first, drawn at the top
    names = [importance["columns"][i] for i in order]
    low, high = (means - spreads)[order].min(), (means + spreads)[order].max()
    chart = _chart("Permutation feature importance",
                   Axis(*padded(min(low, 0.0), max(high, 0.0)),
                        f"drop in {importance['scoring']} when the column is shuffled"),
                   Axis.of(names), height=max(250, 34 * len(names) + 60))  # 2-line names
    chart.line([0, 0], [0, len(names)], GREY, width=1)
    chart.bars(means[order], BLUE, errors=spreads[order],
               tips=[f"{n}: {m:.4g} ± {s:.2g}" for n, m, s in
                     zip(names, means[order], spreads[order], strict=True)])
    total = len(importance["columns"])
    shown = f"top {len(names)} of {total}" if total > len(names) else "all"
    # Set by the evaluate step when it bounded the measurement (wide tables).
    note = f" Bounded: {importance['note']}." if importance.get("note") else ""
    return Figure(
        "Permutation feature importance",
        f"Raw input columns ({shown}); {importance['rows']} rows, {importance['repeats']} "
        f"shuffles each, whiskers show the spread.{note}",
        chart.svg(),
    )


def _figures(metadata: ModelMetadata, evaluation: Evaluation) -> list[Figure]:
    """Every plot the evaluation has numbers for, in reading order."""
    figures: list[Figure] = []
    curves = evaluation.curves
    if evaluation.confusion_matrix is not None and evaluation.labels:
        figures.append(_confusion_figure(evaluation.confusion_matrix, evaluation.labels,
                                         evaluation.rows))
    if evaluation.roc is not None and evaluation.labels:
        figures.append(_roc_figure(evaluation.roc, evaluation.metrics.get("roc_auc", math.nan),
                                   evaluation.labels[-1]))
    if "precision_recall" in curves:
        figures.append(_precision_recall_figure(curves["precision_recall"]))
    if "calibration" in curves:
        figures.append(_calibration_figure(curves["calibration"], evaluation.rows))
    if "residuals" in curves:
        figures.extend(_residual_figures(curves["residuals"], evaluation.rows, metadata.target))
    if evaluation.importance:
        figures.append(_importance_figure(evaluation.importance))
    return figures


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


def _table(header: list[str], rows: list[list[Any]], row_class: list[str] | None = None,
           notes: list[str] | None = None) -> str:
    """A table; ``notes`` add a full-width row of text under each row (wraps on any pane)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        cells = "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
        if notes:
            body.append(f'<tr class="why"><td colspan="{len(header)}">'
                        f"{html.escape(notes[i])}</td></tr>")
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
main{max-width:1200px;margin:0 auto;padding:24px}
header{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px}
h1{margin:0 0 8px;font-size:1.6em}h2{margin:28px 0 10px;font-size:1.2em}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:4px 20px 16px;
margin-top:16px}
.badges span{display:inline-block;margin:2px 6px 2px 0;padding:2px 10px;border-radius:12px;
background:#ddf4ff;font-size:.9em}
table{border-collapse:collapse;margin:8px 0;font-size:.92em;max-width:100%}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top;
overflow-wrap:break-word}
thead th{background:#f6f8fa}table.kv th{background:#f6f8fa;white-space:nowrap}
tr.why td{border-top:0;color:#1f2328;font-size:.95em;padding-left:22px}
td code{overflow-wrap:anywhere}pre{white-space:pre-wrap;overflow-wrap:anywhere}
tr.fail td{background:#ffebe9}tr.pass td{background:#dafbe1}
.verdict{font-weight:600;padding:8px 12px;border-radius:6px;display:inline-block}
.verdict.pass{background:#dafbe1}.verdict.fail{background:#ffebe9}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,540px),1fr));
gap:16px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:8px;background:#fff}
figure svg{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.88em;color:#57606a;margin-top:4px}
.note{color:#57606a;font-size:.9em}footer{color:#57606a;font-size:.85em;margin:16px 0}
@media (max-width:760px){main{padding:10px}section{padding:4px 10px 10px}
th,td{padding:3px 6px}}
"""


def render_model_card(
    metadata: ModelMetadata,
    evaluation: Evaluation | dict[str, Any],
    *,
    blessing: dict[str, Any] | Blessing | None = None,
    dataset_summary: dict[str, Any] | None = None,
    intended_use: str = "",
    stage: str | None = None,
    version: int | None = None,
    run_id: str | None = None,
) -> tuple[str, str]:
    """Render the model card: ``(html, markdown)``. Needs neither the model nor its data.

    Args:
        metadata: The model's metadata (``metadata.json`` of the model folder).
        evaluation: What :func:`~kfp_mlops.model.evaluate.evaluate_model` found on the
            held-out rows with ``explain=True`` (or its ``to_dict()``): the metrics shown,
            and the numbers behind every plot.
        blessing: :meth:`Blessing.to_dict` output; adds the champion comparison.
        dataset_summary: Optional facts about the data (``source``, ``rows``,
            ``columns``, ``dataset_version``, ``data_sha256``; other keys are shown too).
        intended_use: What the model is for; empty: :func:`default_intended_use`.
        stage: Registry stage, if known.
        version: The registry version the model was published as, when the card is
            rendered after publishing (the model folder's metadata predates it).
        run_id: The run that trained and published it (the pipeline job name).

    """
    if isinstance(evaluation, dict):
        evaluation = Evaluation.from_dict(evaluation)
    verdict = blessing_from_dict(blessing) if blessing else None
    shown, metric_rows = in_reading_order(evaluation.metrics), evaluation.rows
    figures, notes = _figures(metadata, evaluation), evaluation.notes
    summary = dict(dataset_summary or {})
    intended = intended_use.strip() or default_intended_use(metadata)
    title = metadata.name or f"{metadata.target} model"
    if version is None:
        version = metadata.version
    run_id = run_id or metadata.run_id
    refused = verdict is not None and not verdict.blessed
    if refused:  # the model gate refused it: it is never published, the card says why
        shown_version = "(REFUSED by the model gate: not published)"
        stage = "refused"
    else:
        shown_version = f"v{version}" if version is not None else "(not yet published)"
    data_version = summary.pop("dataset_version", None) or metadata.dataset_version
    data_sha = summary.pop("data_sha256", None) or metadata.data_sha256

    badges = [("task", metadata.task), ("target", metadata.target),
              ("estimator", metadata.estimator), ("created", metadata.created_at),
              ("stage", stage)]
    parts = [
        f"<header><h1>Model card: {html.escape(title)} "
        f"<small>{html.escape(shown_version)}</small></h1><div class=\"badges\">"
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
            # "why" is a sentence: its own full-width row under each rule, so a narrow
            # pane (the KFP UI) wraps it instead of squeezing or cutting an 8th column.
            + _table(
                ["metric", "better", "challenger", "champion", "threshold", "tolerance",
                 "passed"],
                [[c.metric, c.direction, c.challenger, c.champion, c.threshold, c.tolerance,
                  c.passed] for c in verdict.comparisons],
                ["pass" if c.passed else "fail" for c in verdict.comparisons],
                notes=[f"why: {c.why}" for c in verdict.comparisons],
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
    facts: list[tuple[str, Any]] = [
        ("source", summary.pop("source", None)),
        ("rows", summary.pop("rows", None)),
        ("columns", summary.pop("columns", None)),
        ("held-out rows", evaluation.rows),
        *sorted(summary.items()),
        *[(f"{kind} features", ", ".join(f.name for f in metadata.features if f.kind == kind))
          for kind in FEATURE_KINDS],
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
    lineage = _lineage(metadata, data_version, data_sha, run_id)
    parts.append(
        "<section><h2>Lineage</h2>" + _key_values(lineage[:-1])
        + "<h3>Estimator parameters</h3><p class=\"note\">Set for this model (the rest are "
        "the estimator's defaults):</p><pre>"
        + html.escape(json.dumps(metadata.params, indent=2, sort_keys=True))
        + "</pre>" + _all_params(evaluation.estimator_params) + "</section>"
    )
    page = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Model card: {html.escape(title)} {html.escape(shown_version)}</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        + "".join(parts)
        + f"<footer>Generated by kfp-mlops {html.escape(_version())}.</footer></main></body></html>"
    )
    return page, _markdown(title, shown_version, metadata, shown, metric_rows,
                           verdict, lineage, intended)


def _all_params(params: dict[str, Any] | None) -> str:
    if params is None:  # an evaluation made without explain=True
        return "<p class=\"note\">The evaluation does not record the fitted estimator's " \
               "other parameters.</p>"
    return ("<details><summary>Every parameter of the fitted estimator</summary><pre>"
            + html.escape(json.dumps(params, indent=2, sort_keys=True)) + "</pre></details>")


def _verdict_line(verdict: Blessing) -> str:
    # Blessing reasons already start with the verdict ("blessed: ..."): don't repeat it.
    label = "Blessed" if verdict.blessed else "Not blessed"
    reason = verdict.reason
    if reason.lower().startswith(label.lower() + ":"):
        reason = reason[len(label) + 1:].strip()
    return f"{label}: {reason}"


def _version() -> str:
    import kfp_mlops

    return kfp_mlops.__version__


def _lineage(metadata: ModelMetadata, data_version: Any, data_sha: Any,
             run_id: str | None) -> list[tuple[str, Any]]:
    return [
        ("dataset version", data_version),
        ("data sha256", data_sha),
        ("model sha256", metadata.model_sha256),
        ("scikit-learn", metadata.sklearn_version),
        *([(metadata.estimator_package, metadata.estimator_package_version)]
          if metadata.estimator_package else []),
        ("kfp-mlops", metadata.kfp_mlops_version),
        ("python", metadata.python_version),
        ("run id", run_id),
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


def card_step(
    model_dir: str | Path,
    evaluation_path: str | Path,
    card_path: str | Path,
    summary_path: str | Path,
    blessing: str = "{}",
    intended_use: str = "auto",
    version: int | None = None,
    run_id: str | None = None,
) -> ModelMetadata:
    """Render the card of the model folder from the evaluate step's evaluation JSON.

    Reads only the folder's ``metadata.json``: the model itself is not loaded.
    ``version`` and ``run_id``, when the card is rendered after publishing, are what the
    registry gave the model (the folder's metadata was written before).
    """
    parsed: dict[str, Any] | None = None
    if blessing.strip() not in ("", "{}"):
        try:
            parsed = json.loads(blessing)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"blessing {blessing[:80]!r} is not JSON ({exc.msg}); pass Blessing.to_dict() "
                "as JSON, or {} for none"
            ) from None
    metadata = read_metadata(model_dir)
    try:
        evaluation = json.loads(Path(evaluation_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the evaluation {str(evaluation_path)!r}: {exc}; pass "
                        "the evaluate step's evaluation output") from None
    page, markdown = render_model_card(
        metadata, evaluation, blessing=parsed,
        intended_use="" if intended_use == "auto" else intended_use,
        version=version, run_id=run_id or None,
    )
    Path(card_path).write_text(page, encoding="utf-8")
    Path(summary_path).write_text(markdown, encoding="utf-8")
    return metadata
