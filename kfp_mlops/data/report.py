"""Self-contained HTML data report and a short Markdown summary.

The HTML page has no external scripts, fonts or style sheets: plots are inline SVG,
so the file opens anywhere (KFP's artifact viewer, a mail attachment, an air-gapped
cluster). Plots are drawn from the statistics' histograms and category counts, so a
report never needs the data itself.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

from kfp_mlops.data.stats import NUMERIC_KINDS, ColumnStatistics, DatasetStatistics
from kfp_mlops.data.validation import ValidationResult
from kfp_mlops.plots import BLUE, ORANGE, Axis, Chart

if TYPE_CHECKING:  # drift imports scipy; the data gate's report does not need it
    from kfp_mlops.data.drift import DriftResult

MAX_PLOTS = 60  # keeps a report of a very wide table at a readable, mailable size
MAX_BARS = 15

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}
h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f4f4f4}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}
.warning{color:#9a6700}.error{color:#cf222e}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;padding:6px;border-radius:4px}
.card svg{display:block}.card svg text{font-family:inherit;fill:#333}
.card p{margin:.2em 0;font-size:.8em;color:#555}
"""


def _density(col: ColumnStatistics) -> tuple[np.ndarray, np.ndarray] | None:
    if not col.histogram:
        return None
    edges = np.asarray(col.histogram["edges"], dtype=float)
    counts = np.asarray(col.histogram["counts"], dtype=float)
    total = counts.sum()
    widths = np.diff(edges)
    if total == 0 or len(edges) < 2 or not np.all(widths > 0):
        return None
    return counts / total / widths, edges


# Plot size in SVG user units (CSS pixels at 100%): small cards in a wrapping grid.
_W, _H, _FONT = 320, 190, 8
_LEGEND = [("reference", ORANGE, "box"), ("current", BLUE, "box")]


def _histogram_svg(col: ColumnStatistics, reference: ColumnStatistics | None) -> str | None:
    current = _density(col)
    if current is None:
        return None
    ref = _density(reference) if reference is not None else None
    # Each side has its own bins (from its own min/max); densities make them comparable.
    layers = [(ref, ORANGE, 0.35), (current, BLUE, 0.5)] if ref else [(current, BLUE, 0.5)]
    low = min(edges[0] for (_, edges), _, _ in layers)
    high = max(edges[-1] for (_, edges), _, _ in layers)
    top = max(float(density.max()) for (density, _), _, _ in layers) or 1.0
    chart = Chart(col.name, x=Axis(low, high), y=Axis(0, top * 1.05, "density"), width=_W,
                  height=_H, font=_FONT, legend=_LEGEND if ref else ())
    for (density, edges), color, opacity in layers:
        for d, a, b in zip(density, edges[:-1], edges[1:], strict=True):
            chart.rect(a, b, 0, d, color, opacity)
    return chart.svg()


def _bars_svg(col: ColumnStatistics, reference: ColumnStatistics | None) -> str | None:
    if not col.top_values:
        return None
    counts = dict(col.top_values)
    ref_counts = reference.category_counts() if reference is not None else {}
    keys = [k for k, _ in col.top_values[:MAX_BARS]]
    keys += [k for k in list(ref_counts)[:MAX_BARS] if k not in counts][: MAX_BARS // 3]
    shares = [counts.get(k, 0) / max(col.count, 1) for k in keys]
    series = [(shares, BLUE, 0.8)]
    if ref_counts:
        ref_total = max(sum(ref_counts.values()), 1)
        series.insert(0, ([ref_counts.get(k, 0) / ref_total for k in keys], ORANGE, 0.6))
    top = max(max(values) for values, _, _ in series) or 1.0
    chart = Chart(col.name, x=Axis.of(keys, rotate=45), y=Axis(0, top * 1.05, "share"),
                  width=_W, height=_H, font=_FONT, legend=_LEGEND if ref_counts else ())
    for j, (values, color, opacity) in enumerate(series):
        chart.bars(values, color, group=(j, len(series)), opacity=opacity,
                   tips=[f"{k}: {v:.1%}" for k, v in zip(keys, values, strict=True)])
    return chart.svg()


def column_plot(col: ColumnStatistics, reference: ColumnStatistics | None = None) -> str | None:
    """Inline SVG of a column's histogram (or top categories), over the reference's.

    Drawn from the statistics with :mod:`kfp_mlops.plots`, not matplotlib: a 12-column
    report took 2.5 s to render as PNGs and takes milliseconds as SVG, which also stays
    sharp when zoomed and needs no image decoding in the KFP UI.
    """
    if col.kind in NUMERIC_KINDS:
        return _histogram_svg(col, reference)
    return _bars_svg(col, reference)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "nan" if np.isnan(value) else f"{value:.4g}"
    return "" if value is None else escape(str(value))


def _stats_table(stats: DatasetStatistics) -> str:
    rows = []
    for c in stats.columns.values():
        q = c.quantiles or {}
        extra = ""
        if c.kind in NUMERIC_KINDS:
            extra = _fmt(q.get("p50"))
        elif c.distinct is not None:
            extra = f"{c.distinct}{'+' if c.distinct_capped else ''} distinct"
        rows.append(
            f"<tr><td>{escape(c.name)}</td><td>{c.kind}</td><td>{c.count}</td>"
            f"<td>{c.missing_share:.1%}</td><td>{_fmt(c.mean)}</td><td>{_fmt(c.std)}</td>"
            f"<td>{_fmt(c.min)}</td><td>{_fmt(c.max)}</td><td>{extra}</td></tr>"
        )
    head = ("<tr><th>column</th><th>kind</th><th>count</th><th>missing</th><th>mean</th>"
            "<th>std</th><th>min</th><th>max</th><th>median / distinct</th></tr>")
    dup = "" if stats.duplicate_rows is None else f", {stats.duplicate_rows} duplicate rows"
    return (f"<p>{stats.rows} rows, {len(stats.columns)} columns{dup}.</p>"
            f"<table>{head}{''.join(rows)}</table>")


def _validation_section(result: ValidationResult) -> str:
    verdict = "pass" if result.passed else "fail"
    rows = "".join(
        f"<tr><td class='{a.severity}'>{a.severity}</td><td>{_fmt(a.column)}</td>"
        f"<td>{a.kind}</td><td>{escape(a.message)}</td><td>{escape(a.fix)}</td></tr>"
        for a in result.anomalies
    )
    table = (
        "<table><tr><th>severity</th><th>column</th><th>kind</th><th>what</th>"
        f"<th>how to accept or fix</th></tr>{rows}</table>" if rows else "<p>No anomalies.</p>"
    )
    return (f"<h2>Validation</h2><p class='{verdict}'>{verdict.upper()}: "
            f"{escape(result.reason)}</p>{table}")


def _drift_section(drift: DriftResult) -> str:
    verdict = "fail" if drift.dataset_drift else "pass"
    rows = []
    for f in drift.features:
        m = f.metrics
        rows.append(
            f"<tr><td>{escape(f.column)}</td><td>{f.kind}</td><td>{f.test}</td>"
            f"<td>{_fmt(f.score)}</td><td>{_fmt(f.threshold)}</td>"
            f"<td class='{'error' if f.drifted else ''}'>{'yes' if f.drifted else 'no'}</td>"
            f"<td>{_fmt(m.get('psi'))}</td><td>{_fmt(m.get('ks_pvalue'))}</td>"
            f"<td>{_fmt(m.get('wasserstein_normed'))}</td><td>{_fmt(m.get('chi2_pvalue'))}</td>"
            f"<td>{_fmt(m.get('jensenshannon'))}</td></tr>"
        )
    head = ("<tr><th>feature</th><th>kind</th><th>test</th><th>score</th><th>threshold</th>"
            "<th>drifted</th><th>PSI</th><th>KS p</th><th>Wasserstein (normed)</th>"
            "<th>chi2 p</th><th>JS distance</th></tr>")
    return (f"<h2>Drift</h2><p class='{verdict}'>{escape(drift.reason)}</p>"
            f"<p>reference {drift.reference_rows} rows, current {drift.current_rows} rows</p>"
            f"<table>{head}{''.join(rows)}</table>")


def html_report(
    stats: DatasetStatistics,
    *,
    reference: DatasetStatistics | None = None,
    validation: ValidationResult | None = None,
    drift: DriftResult | None = None,
    title: str = "Data report",
) -> str:
    """One self-contained HTML page: verdicts first, then statistics and plots.

    ``reference`` (or, if not given, the drift result's reference statistics) adds
    reference-vs-current overlays to every plot.
    """
    if reference is None and drift is not None:
        reference = drift.reference_stats
    parts = [f"<h1>{escape(title)}</h1>"]
    if validation is not None:
        parts.append(_validation_section(validation))
    if drift is not None:
        parts.append(_drift_section(drift))
    parts.append("<h2>Statistics</h2>" + _stats_table(stats))
    cards = []
    for col in list(stats.columns.values())[:MAX_PLOTS]:
        ref_col = reference.columns.get(col.name) if reference is not None else None
        svg = column_plot(col, ref_col)
        if svg:
            cards.append(f"<div class='card'>{svg}"
                         f"<p>{escape(col.name)} ({col.kind})</p></div>")
    if len(stats.columns) > MAX_PLOTS:
        parts.append(f"<p>Plots for the first {MAX_PLOTS} of {len(stats.columns)} columns.</p>")
    parts.append("<h2>Distributions</h2><div class='grid'>" + "".join(cards) + "</div>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")


def markdown_summary(
    stats: DatasetStatistics | None = None,
    validation: ValidationResult | None = None,
    drift: DriftResult | None = None,
) -> str:
    """Summarize in a few lines of Markdown (a KFP Markdown visualization, a PR comment)."""
    lines = ["## Data report"]
    if stats is not None:
        lines.append(f"- **{stats.rows}** rows, **{len(stats.columns)}** columns")
    if validation is not None:
        mark = "PASS" if validation.passed else "FAIL"
        lines.append(f"- Validation **{mark}**: {validation.reason}")
        for a in validation.anomalies[:10]:
            lines.append(f"  - `{a.severity}` {a.message}; {a.fix}")
        if len(validation.anomalies) > 10:
            lines.append(f"  - ... and {len(validation.anomalies) - 10} more")
    if drift is not None:
        mark = "DRIFT" if drift.dataset_drift else "no drift"
        lines.append(f"- Drift **{mark}**: {drift.reason}")
        if drift.features:
            lines += ["", "| feature | test | score | threshold | drifted |"]
            lines += ["|---|---|---|---|---|"]
            lines += [
                f"| {f.column} | {f.test} | {f.score:.4g} | {f.threshold:.4g} | "
                f"{'yes' if f.drifted else 'no'} |"
                for f in drift.features
            ]
    return "\n".join(lines) + "\n"
