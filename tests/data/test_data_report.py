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
    assert "| feature | test |" in text and "no drift" in text
