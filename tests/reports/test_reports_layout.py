"""Every HTML report reads in a KFP UI pane (700 px) and on a laptop (1280 px).

The structural checks run everywhere: text sizes in the inline SVG, chart widths against
a 700 px pane, CSS that wraps table cells, missing values and dataset names stated. The
last test renders the pages in headless Chromium and measures the laid-out page; it is
skipped where no Chromium is installed (``apt-get install chromium-headless-shell``).
``tests/reports/screenshot.py`` takes the PNG screenshots of the same pages.
"""

import re

import pytest

from tests.reports.screenshot import WIDTHS, chromium, measure

PANE = 700  # a KFP UI artifact pane


def test_no_chart_text_below_11_px_and_no_chart_wider_than_a_pane(reports):
    for name, path in reports.items():
        page = path.read_text()
        sizes = [float(v) for v in re.findall(r"font-size='([\d.]+)'", page)]
        assert sizes and min(sizes) >= 11, name
        widths = [int(v) for v in re.findall(r"<svg class='plot' viewBox='0 0 (\d+)", page)]
        # Chart width plus the page's margins and paddings (under 140 px) fit the pane.
        assert widths and max(widths) + 140 <= PANE, name
        fixed = [int(v) for v in re.findall(r"(?<![-\w])width:(\d+)px", page)]
        assert all(v <= PANE - 140 for v in fixed), (name, fixed)
        assert "max-width:100%" in page and "overflow-wrap:break-word" in page, name
        assert "…" not in page, name  # no label cut to fit (they wrap)


def test_every_report_says_what_it_describes(reports):
    card = reports["card_breast_cancer"].read_text()
    assert "<small>v3</small>" in card and "training-pipeline-x7k2p" in card
    small = reports["card_small"].read_text()
    assert "too few points for a calibration curve" in small
    data = reports["data_report"].read_text()
    assert "missing: 2 of 344 (0.6%), not drawn" in data  # penguins' own gaps
    drift = reports["drift_report"].read_text()
    assert "Statistics of the current data (batch3.csv)" in drift
    assert "Statistics of the reference data (batch1.csv)" in drift
    assert "the target &#x27;default&#x27; is tested and shown, not counted" in drift


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="no headless Chromium on PATH "
                    "(apt-get install chromium-headless-shell); the structural tests still ran")
@pytest.mark.parametrize("width", WIDTHS)
def test_pages_laid_out_by_chromium_fit_and_stay_readable(reports, width):
    for name, path in reports.items():
        figures = measure(path, width)
        assert figures["window"] == width, name
        assert figures["page_width"] <= width, (name, figures)  # no sideways scrolling
        assert figures["spills"] == [], (name, figures["spills"])  # nothing cut at a box edge
        # On screen, after any scaling of the SVG to its box.
        assert figures["min_chart_font"] >= 11, (name, figures)
        assert figures["cut_labels"] == [], name
