"""Self-contained HTML data report and a short Markdown summary.

The HTML page has no external scripts, fonts or style sheets: plots are inline SVG,
so the file opens anywhere (KFP's artifact viewer, a mail attachment, an air-gapped
cluster). Plots are drawn from the statistics' histograms and category counts, so a
report never needs the data itself.

Readable in a narrow KFP UI pane (700 px) as on a wide screen: text of at least 11 px,
table cells that wrap instead of widening the page, every chart captioned with its column
name (wrapped by the browser, never cut) and how many values are missing, since a
histogram or a bar chart draws only the values present.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

from kfp_mlops.data.kinds import NUMERIC_KINDS
from kfp_mlops.data.stats import ColumnStatistics, DatasetStatistics
from kfp_mlops.plots import BLUE, MIN_FONT, ORANGE, Axis, Chart

if TYPE_CHECKING:  # drift is not needed by the data gate's report
    from kfp_mlops.data.drift import DriftResult
    from kfp_mlops.data.validation import ValidationResult  # imports schema, yaml: 0.1 s

MAX_PLOTS = 60  # keeps a report of a very wide table at a readable, mailable size
MAX_BARS = 15

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em;color:#222;
max-width:1200px}
h1{font-size:1.5em;overflow-wrap:anywhere}
h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0;max-width:100%}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top;
overflow-wrap:break-word}
th{background:#f4f4f4}td.num{white-space:nowrap}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}
.warning{color:#9a6700}.error{color:#cf222e}.note{color:#555;font-size:.92em}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;padding:6px;border-radius:4px;width:340px;max-width:100%;
box-sizing:border-box}
.card svg{display:block;max-width:100%;height:auto}.card svg text{font-family:inherit;fill:#333}
.card p{margin:.2em 0;font-size:.9em;color:#444;overflow-wrap:anywhere}
.card p.name{font-weight:600;color:#222}.card p.missing{color:#9a6700}
td p{margin:0}td p+p{margin-top:.3em;color:#444}
@media (max-width:760px){body{margin:.8em}table{font-size:.84em}td,th{padding:.2em .35em}}
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


# Plot size in SVG user units (CSS pixels at 100%): small cards in a wrapping grid, two
# side by side in a 700 px pane. Tick labels at MIN_FONT (11 px): 8 px was unreadable.
_W, _H, _FONT = 326, 220, MIN_FONT
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
                  height=_H, font=_FONT, legend=_LEGEND if ref else (), show_title=False)
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
    # Horizontal bars: category names sit on the y axis, where they wrap onto two lines
    # instead of being cut to fit a rotated x label.
    chart = Chart(col.name, x=Axis(0, top * 1.05, "share"), y=Axis.of(keys), width=_W,
                  height=max(_H, 28 * len(keys) + 70), font=_FONT,
                  legend=_LEGEND if ref_counts else (), show_title=False, label_room=0.4)
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


def missing_note(col: ColumnStatistics, reference: ColumnStatistics | None = None) -> str:
    """How many values of the column are missing (not drawn), beside the reference's."""
    total = col.count + col.missing
    line = (f"missing: {col.missing} of {total} ({col.missing_share:.1%}), not drawn"
            if col.missing else "missing: none")
    if reference is not None:
        line += (f"; reference {reference.missing} ({reference.missing_share:.1%})"
                 if reference.missing else "; reference none")
    return line


def _no_chart(col: ColumnStatistics) -> str:
    why = "no values present" if not col.count else f"{col.kind} columns are not drawn"
    return f"<p class='note'>No chart: {why}.</p>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "nan" if np.isnan(value) else f"{value:.4g}"
    return "" if value is None else escape(str(value))


def _range(c: ColumnStatistics) -> str:
    if c.min is None and c.max is None:
        return ""
    return f"{_fmt(c.min)} to {_fmt(c.max)}"


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
            f"<tr><td>{escape(c.name)}</td><td>{c.kind}</td><td class='num'>{c.count}</td>"
            f"<td>{f'{c.missing} ({c.missing_share:.1%})' if c.missing else 'none'}</td>"
            f"<td class='num'>{_fmt(c.mean)}</td><td class='num'>{_fmt(c.std)}</td>"
            f"<td>{extra}</td><td>{_range(c)}</td></tr>"
        )
    # min and max share a cell that may wrap: nine columns of numbers overflowed 700 px.
    head = ("<tr><th>column</th><th>kind</th><th>count</th><th>missing</th><th>mean</th>"
            "<th>std</th><th>median / distinct</th><th>min to max</th></tr>")
    dup = "" if stats.duplicate_rows is None else f", {stats.duplicate_rows} duplicate rows"
    return (f"<p>{stats.rows} rows, {len(stats.columns)} columns{dup}; count is the values "
            f"present.</p><table>{head}{''.join(rows)}</table>")


def _validation_section(result: ValidationResult) -> str:
    verdict = "pass" if result.passed else "fail"
    # What and how to fix share a cell: two sentences side by side made the table too
    # wide for a 700 px pane.
    rows = "".join(
        f"<tr><td class='{a.severity}'>{a.severity}</td><td>{_fmt(a.column)}</td>"
        f"<td>{a.kind}</td><td><p>{escape(a.message)}</p>"
        f"<p>Fix: {escape(a.fix)}</p></td></tr>"
        for a in result.anomalies
    )
    table = (
        "<table><tr><th>severity</th><th>column</th><th>anomaly</th>"
        f"<th>what, and how to accept or fix it</th></tr>{rows}</table>" if rows
        else "<p>No anomalies.</p>"
    )
    return (f"<h2>Validation</h2><p class='{verdict}'>{verdict.upper()}: "
            f"{escape(result.reason)}</p>{table}")


def _drift_section(drift: DriftResult, reference: str, current: str) -> str:
    verdict = "fail" if drift.dataset_drift else "pass"
    # Two tables, the decision and every metric: one 12-column table overflowed 700 px.
    rows, metrics = [], []
    for f in drift.columns:
        m = f.metrics
        role = f"{f.role} (not counted)" if f is drift.target_drift else f.role
        rows.append(
            f"<tr><td>{escape(f.column)}</td><td>{role}</td><td>{f.kind}</td>"
            f"<td>{f.test}</td><td class='num'>{_fmt(f.score)}</td>"
            f"<td class='num'>{_fmt(f.threshold)}</td>"
            f"<td class='{'error' if f.drifted else ''}'>{'yes' if f.drifted else 'no'}</td></tr>"
        )
        metrics.append(
            f"<tr><td>{escape(f.column)}</td><td class='num'>{_fmt(m.get('psi'))}</td>"
            f"<td class='num'>{_fmt(m.get('ks_pvalue'))}</td>"
            f"<td class='num'>{_fmt(m.get('wasserstein_normed'))}</td>"
            f"<td class='num'>{_fmt(m.get('chi2_pvalue'))}</td>"
            f"<td class='num'>{_fmt(m.get('jensenshannon'))}</td>"
            f"<td class='num'>{_fmt(m.get('adjusted_pvalue'))}</td></tr>"
        )
    head = ("<tr><th>column</th><th>role</th><th>kind</th><th>test that decides</th>"
            "<th>score</th><th>threshold</th><th>drifted</th></tr>")
    metrics_head = ("<tr><th>column</th><th>PSI</th><th>KS p</th><th>Wasserstein (normed)</th>"
                    "<th>chi2 p</th><th>JS distance</th><th>adjusted p (BH)</th></tr>")
    if drift.target is None:
        counts = ("Every compared column counts in the drift share (no target column was "
                  "named).")
    elif drift.target_counted:
        counts = (f"The drift share counts the input features and the target "
                  f"{drift.target!r}.")
    else:
        counts = (f"The drift share counts the input features only; the target "
                  f"{drift.target!r} is tested and shown, not counted.")
    return (f"<h2>Drift: {escape(current)} against {escape(reference)}</h2>"
            f"<p class='{verdict}'>{escape(drift.reason)}</p>"
            f"<p>Reference: {escape(reference)}, {drift.reference_rows} rows. Current: "
            f"{escape(current)}, {drift.current_rows} rows. Each row compares one column's "
            f"distribution in the two. {escape(counts)} A column drifts when its shift is "
            "significant after the Benjamini-Hochberg correction across the columns (the "
            "score of a KS or chi2 test is the adjusted p-value) and large enough (a "
            "distance past its threshold).</p>"
            f"<table>{head}{''.join(rows)}</table>"
            "<h3>Every drift metric</h3><p class='note'>Empty: not computed for the column's "
            f"kind.</p><table>{metrics_head}{''.join(metrics)}</table>")


def _card(col: ColumnStatistics, reference: DatasetStatistics | None) -> str:
    """One column's chart (over the reference's) with its caption and missing values."""
    ref_col = reference.columns.get(col.name) if reference is not None else None
    svg = column_plot(col, ref_col)
    note = missing_note(col, ref_col)
    cls = "missing" if col.missing or (ref_col is not None and ref_col.missing) else "note"
    return (f"<div class='card'><p class='name'>{escape(col.name)} ({col.kind})</p>"
            f"{svg or _no_chart(col)}<p class='{cls}'>{escape(note)}</p></div>")


def html_report(
    stats: DatasetStatistics,
    *,
    reference: DatasetStatistics | None = None,
    validation: ValidationResult | None = None,
    drift: DriftResult | None = None,
    title: str = "Data report",
    reference_name: str = "",
    current_name: str = "",
    lead_html: str = "",
    charts_first: list[str] | None = None,
) -> str:
    """One self-contained HTML page: verdicts first, then statistics and plots.

    ``reference`` (or, if not given, the drift result's reference statistics) adds
    reference-vs-current overlays to every plot and its own statistics table.
    ``reference_name`` and ``current_name`` (a dataset version, a file) label every
    section, so a reader knows which data each table describes. ``lead_html`` (the
    monitoring decision and model quality) opens the page, and the charts of
    ``charts_first`` (the drifted columns) follow it, before any table.
    """
    if reference is None and drift is not None:
        reference = drift.reference_stats
    current = f"the current data ({current_name})" if current_name else "the current data"
    ref_label = (f"the reference data ({reference_name})" if reference_name
                 else "the reference data")
    viewport = "<meta name='viewport' content='width=device-width, initial-scale=1'>"
    parts = [f"<h1>{escape(title)}</h1>", lead_html]
    first = [name for name in charts_first or [] if name in stats.columns]
    if first:
        cards = [_card(stats.columns[name], reference) for name in first[:MAX_PLOTS]]
        parts.append(f"<h2>Drifted columns</h2><p class='note'>{escape(current)} in blue over "
                     f"{escape(ref_label)} in orange; the drift table below has every "
                     "column's test.</p><div class='grid'>" + "".join(cards) + "</div>")
    elif charts_first is not None and drift is not None:
        parts.append("<h2>Drifted columns</h2><p>None: no column's shift is both significant "
                     "and large enough (see the drift table).</p>")
    if validation is not None:
        parts.append(_validation_section(validation))
    if drift is not None:
        parts.append(_drift_section(drift, ref_label, current))
    described = f"Statistics of {current}" if reference is not None else "Statistics"
    parts.append(f"<h2>{escape(described)}</h2>" + _stats_table(stats))
    if reference is not None:
        parts.append(f"<h2>{escape(f'Statistics of {ref_label}')}</h2>"
                     + _stats_table(reference))
    cards = [_card(col, reference) for col in list(stats.columns.values())[:MAX_PLOTS]]
    if len(stats.columns) > MAX_PLOTS:
        parts.append(f"<p>Plots for the first {MAX_PLOTS} of {len(stats.columns)} columns.</p>")
    which = (f"{current} in blue over {ref_label} in orange" if reference is not None
             else "the data")
    parts.append(f"<h2>Distributions</h2><p class='note'>{escape(which)}; shares and "
                 "densities are of the values present.</p><div class='grid'>"
                 + "".join(cards) + "</div>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{viewport}"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(parts)}</body></html>")


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
        if drift.columns:
            lines += ["", "| column | role | test | score | threshold | drifted |"]
            lines += ["|---|---|---|---|---|---|"]
            lines += [
                f"| {f.column} | {f.role + ' (not counted)' if f is drift.target_drift else f.role}"
                f" | {f.test} | {f.score:.4g} | {f.threshold:.4g} | "
                f"{'yes' if f.drifted else 'no'} |"
                for f in drift.columns
            ]
    return "\n".join(lines) + "\n"
