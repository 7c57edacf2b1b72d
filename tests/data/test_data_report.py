import re

import numpy as np

from kfp_mlops.data.drift import detect_drift
from kfp_mlops.data.report import html_report, markdown_summary
from kfp_mlops.data.schema import infer_schema
from kfp_mlops.data.stats import compute_statistics_from_frame
from kfp_mlops.data.validation import validate


def test_html_report_is_self_contained(frame_factory):
    ref, cur = frame_factory(3000, 0), frame_factory(3000, 1, 1.0)
    cur.loc[:50, "city"] = "marseille"
    schema = infer_schema(compute_statistics_from_frame(ref))
    stats = compute_statistics_from_frame(cur)
    validation = validate(stats, schema)
    drift = detect_drift(ref, cur)
    page = html_report(stats, validation=validation, drift=drift, title="Batch <7>")
    assert page.startswith("<!DOCTYPE html>") and "Batch &lt;7&gt;" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    plots = re.findall(r"<svg class='plot'.*?</svg>", page)
    assert len(plots) == 5  # one plot per column (datetimes excepted)
    assert all("<rect" in plot for plot in plots)  # bars or histogram bins were drawn
    assert sum("reference" in plot for plot in plots) == 5  # overlays name the reference
    assert "marseille" in page and "unseen_categories" in page
    assert "wasserstein_normed" in page and "reference" in page


def test_markdown_summary(frame_factory):
    ref, cur = frame_factory(500, 0), frame_factory(500, 1)
    cur["age"] = np.nan
    stats = compute_statistics_from_frame(cur)
    validation = validate(stats, infer_schema(compute_statistics_from_frame(ref)))
    text = markdown_summary(stats, validation, detect_drift(ref, cur))
    assert "Validation **FAIL**" in text and "'age' has no values" in text
    assert "| column | role | test |" in text and "no drift" in text


def test_report_says_which_data_each_table_describes_and_counts_missing_values(frame_factory):
    ref, cur = frame_factory(3000, 0), frame_factory(3000, 1, 1.0)
    cur["target"] = np.where(cur["age"] > 45, "yes", "no")
    ref["target"] = np.where(ref["age"] > 45, "yes", "no")
    cur.loc[cur.index[::10], "age"] = np.nan  # 300 missing current values
    drift = detect_drift(ref, cur, target="target")
    page = html_report(drift.current_stats, drift=drift, reference_name="loans v1",
                       current_name="batch-7.csv")
    assert "Statistics of the current data (batch-7.csv)</h2>" in page
    assert "Statistics of the reference data (loans v1)</h2>" in page
    assert "Reference: the reference data (loans v1), 3000 rows." in page
    assert "the target &#x27;target&#x27; is tested and shown, not counted" in page
    assert "<td>target</td><td>target (not counted)</td>" in page
    # Every chart's card says what it leaves out: the missing values.
    assert "missing: 300 of 3000 (10.0%), not drawn; reference none" in page
    assert page.count("<p class='missing'>missing: ") + page.count(
        "<p class='note'>missing: none; reference none") == len(drift.columns)
    markdown = markdown_summary(drift.current_stats, drift=drift)
    assert "| target | target (not counted) |" in markdown


def test_report_fits_a_700_px_pane(frame_factory):
    cur = frame_factory(500, 0)
    long = "a category name long enough to wrap"
    cur["city"] = cur["city"].where(cur.index % 2 == 0, long)
    page = html_report(compute_statistics_from_frame(cur))
    sizes = [float(v) for v in re.findall(r"font-size='([\d.]+)'", page)]
    assert sizes and min(sizes) >= 11  # tick labels included (they were 8 px)
    widths = [int(v) for v in re.findall(r"<svg class='plot' viewBox='0 0 (\d+)", page)]
    assert widths and max(widths) <= 700 - 2 * 16  # a chart never forces a wider page
    assert "max-width:100%" in page and "overflow-wrap:break-word" in page
    # Category names are on the y axis and wrap onto lines instead of being cut.
    assert "…" not in page
    lines = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", page)
    assert " ".join(lines) == long and len(lines) == 2
