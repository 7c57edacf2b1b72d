"""The monitoring report: one HTML page and a Markdown summary of a monitored batch.

What :func:`kfp_mlops.monitoring.decision.decide` found, in the order a reader needs it:
the headline, model quality (estimated and realized), drift, data quality.
"""

from __future__ import annotations

from pathlib import Path

from kfp_mlops.data.report import html_report, markdown_summary
from kfp_mlops.data.stats import DatasetStatistics
from kfp_mlops.data.validation import ValidationResult, labels_pending
from kfp_mlops.monitoring.decision import (
    REALIZED_MIN_ROWS,
    REALIZED_MIN_SHARE,
    MonitorResult,
    ReferenceDrift,
)


def report_html(
    stats: DatasetStatistics, reference: ReferenceDrift, quality: ValidationResult | None,
    result: MonitorResult | None = None,
) -> str:
    """The monitoring report, in the order a reader needs it.

    First the decision and why, then the model's quality (estimated on every row,
    realized on the labelled ones, beside the version's test score), then the charts of
    the drifted columns; the tables (drift, validation, statistics) and every column's
    chart after. On a prediction log window the title and sections name the window's
    rows and how many carry a label, and say whether the predictions drifted.
    """
    what, current = "batch", "this batch"
    if reference.logged_rows is not None:
        labelled = result.labelled_rows if result is not None else 0
        what = "prediction log"
        current = f"the prediction log: {reference.logged_rows} rows, {labelled} labelled"
        if reference.prediction_drift is not None:
            found = reference.prediction_drift
            current += (f"; predictions {'drifted' if found['drifted'] else 'did not drift'}"
                        f" from the training labels ({found['test']} {found['score']:.3f})")
    drifted = [] if reference.drift is None else [
        f.column for f in reference.drift.columns if f.drifted]
    return html_report(
        stats, drift=reference.drift, validation=quality,
        title=f"Monitoring {reference.model_name}: {what} vs dataset "
              f"{reference.reference_version}",
        reference_name=f"dataset {reference.reference_version}", current_name=current,
        lead_html=_lead_html(result) if result is not None else "",
        charts_first=drifted,
    )


def _lead_html(result: MonitorResult) -> str:
    """The decision, its reasons, and the model-quality table (the report's opening)."""
    from html import escape

    verdict = "fail" if result.retrain else "pass"
    reasons = "".join(f"<li>{escape(part)}</li>" for part in result.reason.split("; "))
    parts = [f"<h2>Decision</h2><p class='{verdict}'>{escape(result.headline)}</p>"
             f"<ul>{reasons}</ul>"]
    estimate = result.estimated
    names = list(dict.fromkeys([*(estimate.metrics if estimate else {}),
                                *result.performance]))
    if result.primary_metric is None and not names:
        return "".join(parts)
    rows = []
    for name in names:
        est = ""
        if estimate is not None and name in estimate.metrics:
            est = f"{estimate.metrics[name]:.4f} &plusmn; {estimate.band.get(name, 0):.4f}"
        real = f"{result.performance[name]:.4f}" if name in result.performance else \
            "labels pending"
        ref = f"{result.reference_metrics[name]:.4f}" if name in result.reference_metrics \
            else ""
        mark = " <b>(decides)</b>" if name == result.primary_metric and \
            result.quality_source else ""
        rows.append(f"<tr><td>{escape(name)}{mark}</td><td class='num'>{est}</td>"
                    f"<td class='num'>{real}</td><td class='num'>{ref}</td></tr>")
    rows_note = (f"Estimated on all {result.rows} rows of the batch, without labels; realized "
                 f"on the {result.labelled_rows} rows that carry a label.")
    how = estimate.note if estimate is not None else ""
    source = {"realized": "The realized metric decides: labels cover the batch.",
              "estimated": "The estimate decides until labels cover the batch (at least "
                           f"{REALIZED_MIN_ROWS} rows and {REALIZED_MIN_SHARE:.0%})."}.get(
        result.quality_source or "", "")
    parts.append(
        "<h2>Model quality</h2>"
        f"<p>{escape(rows_note)} {escape(source)} The band is a 95% interval of the "
        "value the labels will give, from the batch's size.</p>"
        + (f"<p class='note'>{escape(how)}</p>" if how else "")
        + "<table><tr><th>metric</th><th>estimated (95% band)</th><th>realized</th>"
        f"<th>version {result.model_version or '?'} on its test rows</th></tr>"
        + "".join(rows) + "</table>")
    return "".join(parts)


def summary_markdown(
    stats: DatasetStatistics, reference: ReferenceDrift, quality: ValidationResult | None,
    result: MonitorResult, rows: int,
) -> str:
    """The monitoring summary in Markdown: the decision, model quality, then the data."""
    head = f"**{result.headline}**\n\n" if result.model_ref else ""
    line = result.quality_line()
    if line:
        head += f"**Model quality**: {line}.\n\n"
    text = head + markdown_summary(stats, validation=quality, drift=reference.drift)
    if result.performance:
        text += "\n\n**Performance on labelled rows** ({} of {}): {}\n".format(
            result.labelled_rows, rows,
            ", ".join(f"{k} {v:.4f}" for k, v in result.performance.items()),
        )
    estimate = result.estimated
    if estimate is not None and estimate.metrics:
        text += "\n\n**Estimated performance** (all {} rows, no labels; 95% band): {}\n".format(
            estimate.rows, ", ".join(f"{k} {v:.4f} +/- {estimate.band.get(k, 0):.4f}"
                                     for k, v in estimate.metrics.items()))
    elif estimate is not None:
        text += f"\n\n**Estimated performance**: none ({estimate.note}).\n"
    if result.logged_rows is not None:
        text += (f"\n\n**Prediction log**: {result.logged_rows} rows served, "
                 f"{result.labelled_rows} of them labelled so far.\n")
    if result.prediction_drift is not None:
        found = result.prediction_drift
        text += (f"\n**Prediction drift** (logged predictions vs training labels): "
                 f"{'drifted' if found['drifted'] else 'no drift'}, {found['test']} "
                 f"{found['score']:.4f} (threshold {found['threshold']:g}).\n")
    return text


def write_reports(
    stats: DatasetStatistics, reference: ReferenceDrift, quality: ValidationResult | None,
    result: MonitorResult, rows: int, report_path: str | Path | None,
    summary_path: str | Path | None,
) -> None:
    """Write the HTML report and the Markdown summary (nothing without a reference)."""
    if reference.drift is None:
        return
    quality = labels_pending(quality, reference.target)
    if report_path:
        Path(report_path).write_text(report_html(stats, reference, quality, result))
    if summary_path:
        Path(summary_path).write_text(summary_markdown(stats, reference, quality, result, rows))
