"""Inline SVG charts: escaped text, data-to-pixel mapping, heatmap contrast, scatter cap."""

import re

import numpy as np
import pytest

from kfp_mlops.plots import (
    BLUE,
    GREY,
    MAX_POINTS,
    MIN_FONT,
    Axis,
    Chart,
    fit,
    num,
    tick_texts,
    ticks,
    wrap,
)

EVIL = "<b>&"


def test_user_text_is_escaped_everywhere():
    chart = Chart(EVIL, x=Axis.of([EVIL, "plain"], EVIL), y=Axis(0, 1, EVIL),
                  legend=[(EVIL, BLUE, "box")])
    chart.bars([0.5, 1.0], BLUE, tips=[EVIL, EVIL])
    svg = chart.svg()
    assert svg.startswith("<svg class='plot'") and "role='img'" in svg
    assert f"<title>{'&lt;b&gt;&amp;'}</title>" in svg
    assert "<b>" not in svg and "&amp;" in svg
    # title, visible title, category tick, x label, y label, legend and two bar tips
    assert svg.count("&lt;b&gt;&amp;") >= 8
    assert "http://" not in svg and "<script" not in svg and "xmlns" not in svg


def test_data_ranges_map_to_the_plot_edges():
    chart = Chart("t", x=Axis(10, 20), y=Axis(-1, 1))
    assert chart.x(10) == pytest.approx(chart.x0) and chart.x(20) == pytest.approx(chart.x1)
    assert chart.y(-1) == pytest.approx(chart.y1) and chart.y(1) == pytest.approx(chart.y0)
    assert chart.y0 < chart.y1  # SVG rows grow downwards: the maximum is at the top
    assert 0 < chart.x0 < chart.x1 < chart.width and 0 < chart.y0 < chart.y1 < chart.height
    chart.markers([20, 15], [1, 0], BLUE)
    (first, second) = re.findall(r"<circle cx='([\d.]+)' cy='([\d.]+)'", chart.svg())
    assert float(first[0]) == pytest.approx(chart.x1, abs=0.05)  # data max: the right edge
    assert float(first[1]) == pytest.approx(chart.y0, abs=0.05)  # and the top
    assert float(second[0]) == pytest.approx((chart.x0 + chart.x1) / 2, abs=0.05)
    assert float(second[1]) == pytest.approx((chart.y0 + chart.y1) / 2, abs=0.05)


def test_categorical_y_runs_top_down_and_bars_grow_from_zero():
    chart = Chart("t", x=Axis(0, 4), y=Axis.of(["first", "second"]))
    assert chart.y(0) == pytest.approx(chart.y0)  # the first category is the top band
    chart.bars([4, 2], BLUE, errors=[1, 1])
    rects = re.findall(r"<rect x='([\d.]+)' y='([\d.]+)' width='([\d.]+)'", chart.svg())
    (x_a, y_a, w_a), (x_b, y_b, w_b) = [tuple(map(float, r)) for r in rects]
    assert x_a == pytest.approx(chart.x0, abs=0.05) == x_b
    assert w_a == pytest.approx(chart.x1 - chart.x0, abs=0.1) and w_b == pytest.approx(w_a / 2, abs=0.1)
    assert y_a < y_b
    whiskers = re.findall(r"<path d='M([\d.]+) [\d.]+H([\d.]+)[^']*' stroke='#333'", chart.svg())
    assert len(whiskers) == 2
    left, right = map(float, whiskers[0])  # 4 plus or minus 1
    assert left == pytest.approx(chart.x(3), abs=0.05) and right == pytest.approx(chart.x(5), abs=0.05)


def test_vertical_bars_share_each_band_and_carry_whiskers():
    chart = Chart("t", x=Axis.of(["a", "b"]), y=Axis(0, 1), width=320, height=190, font=11)
    chart.bars([0.5, 1.0], BLUE, group=(0, 2), errors=[0.1, 0.1])
    chart.bars([0.5, 1.0], GREY, group=(1, 2))
    rects = [tuple(map(float, r)) for r in re.findall(
        r"<rect x='([\d.]+)' y='[\d.]+' width='([\d.]+)'", chart.svg())]
    assert len(rects) == 4 and rects[0][0] + rects[0][1] == pytest.approx(rects[2][0], abs=0.1)
    assert chart.svg().count("stroke='#333'") == 2


def test_heatmap_writes_white_numbers_on_dark_cells():
    chart = Chart("t", x=Axis.of(["a", "b"]), y=Axis.of(["a", "b"]))
    chart.heatmap(np.array([[90, 10], [0, 46]]))
    colour = {number: fill for fill, number in re.findall(
        r"fill='(#[0-9a-f]{3})'>(\d+)</text>", chart.svg())}
    assert colour == {"90": "#fff", "10": "#000", "0": "#000", "46": "#fff"}
    cells = re.findall(r"<rect [^>]*fill='(#[0-9a-f]{6})'", chart.svg())
    assert cells[0] == "#08306b" and cells[2] == "#f7fbff"  # darkest at the max, white at 0


def test_scatter_draws_a_capped_seeded_sample():
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=5000), rng.normal(size=5000)
    drawn = []
    for _ in range(2):
        chart = Chart("t", x=Axis(-5, 5), y=Axis(-5, 5))
        assert chart.scatter(xs, ys, BLUE) == MAX_POINTS
        drawn.append(chart.svg())
    assert drawn[0].count("<circle") == MAX_POINTS and drawn[0] == drawn[1]
    small = Chart("t", x=Axis(-5, 5), y=Axis(-5, 5))
    assert small.scatter(xs[:100], ys[:100], BLUE) == 100
    assert small.scatter(xs, ys, BLUE, cap=10) == 10


def test_lines_drop_points_that_round_to_the_same_pixel():
    chart = Chart("t", x=Axis(0, 1), y=Axis(0, 1))
    chart.line(np.linspace(0, 1e-6, 1000), np.zeros(1000), GREY, dash=True)
    (points,) = re.findall(r"points='([^']*)'", chart.svg())
    assert len(points.split()) == 1 and "stroke-dasharray" in chart.svg()


def test_numbers_ticks_and_fitted_labels():
    assert [num(v) for v in (3.0, -0.0, 0.123456, 12345.6, 2e-5)] == [
        "3", "0", "0.123", "1.23e+04", "2e-05"]
    assert ticks(0, 1, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert ticks(-0.04, 1.04, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert ticks(2006.5, 2009.5, 3) == [2007.0, 2008.0, 2009.0]
    assert tick_texts([0.0, 0.5, 1.0]) == ["0.0", "0.5", "1.0"]
    assert tick_texts([2007.0, 2008.0]) == ["2007", "2008"]
    assert fit("short", 100, 10) == "short"
    cut = fit("a very long column name number 17", 60, 10)  # room for 10 characters
    assert len(cut) == 10 and cut.startswith("a ve") and cut.endswith("17") and "…" in cut


def test_long_names_wrap_at_word_breaks_and_are_cut_only_past_the_lines():
    assert wrap("mean fractal dimension", 156, 12) == ["mean fractal", "dimension"]
    assert wrap("worst_concave_points_se", 120, 12) == ["worst_concave_", "points_se"]
    assert wrap("short", 100, 12) == ["short"]
    # One word longer than a line is broken inside it; past the last line, cut.
    assert wrap("x" * 20, 60, 10) == ["x" * 10, "x" * 10]
    assert wrap("x" * 40, 60, 10)[0] == "x" * 10 and "…" in wrap("x" * 40, 60, 10)[1]
    many = wrap("a b c d e f g h i j k l m n o p q r s t", 60, 10, lines=2)
    assert len(many) == 2 and "…" in many[1] and many[0] == "a b c d e"


def test_category_labels_wrap_into_lines_inside_their_band():
    name = "mean fractal dimension of the cell nuclei"
    chart = Chart("t", x=Axis(0, 1), y=Axis.of([name, "b"]), width=520, height=250)
    chart.bars([0.5, 1.0], BLUE)
    svg = chart.svg()
    label = re.search(r"<text x='[\d.]+' y='[\d.]+' text-anchor='end'[^>]*>(.*?)</text>", svg)
    spans = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", label.group(1))
    assert " ".join(spans) == name and len(spans) >= 2  # every word shown, none cut
    assert "…" not in svg
    widest = max(len(s) for s in spans) * 0.6 * chart.font
    assert widest <= chart.x0  # the left margin holds the longest line


def test_no_text_below_the_minimum_font():
    with pytest.raises(ValueError, match="below 11 px"):
        Chart("t", x=Axis(0, 1), y=Axis(0, 1), font=8)
    chart = Chart("t", x=Axis.of([str(i) for i in range(12)]), y=Axis.of([str(i) for i in range(12)]),
                  width=300, height=300, font=MIN_FONT, legend=[("a", BLUE, "box")])
    chart.heatmap(np.arange(144).reshape(12, 12) * 1000)  # crowded cells, 5-digit numbers
    sizes = [float(v) for v in re.findall(r"font-size='([\d.]+)'", chart.svg())]
    assert sizes and min(sizes) >= MIN_FONT
