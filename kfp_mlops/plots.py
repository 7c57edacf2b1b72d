"""Small inline-SVG charts for the self-contained HTML pages (data report, model card).

Hand-written SVG instead of matplotlib PNGs: a chart takes milliseconds where a PNG
took half a second (plus a 0.5 s import), it stays sharp when zoomed, and the pages
keep no scripts and no external references (not even ``xmlns``: inline SVG in HTML5
needs none). Every piece of text is HTML-escaped: column names and class labels are
user data.

A :class:`Chart` maps data coordinates to pixels, sizes its margins to the labels and
draws the frame (title, legend row, grid, axes, tick labels); shapes are added in data
coordinates and :meth:`Chart.svg` returns the markup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np

Numbers = Sequence[float] | np.ndarray  # a series of data values
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#808080"
MAX_POINTS = 2000  # a scatter draws at most this many points (~40 bytes each)
_CHAR = 0.6  # average glyph width in font sizes: layout estimates, no font metrics
_SWATCH = 18  # legend sample width in pixels
_LEADING = 1.15  # line height of wrapped labels, in font sizes
MIN_FONT = 11  # smallest text a chart writes: readable in a KFP UI pane at 100% zoom


def num(value: float) -> str:
    """Compact number: integers as integers, anything else with 3 significant digits."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e7:
        return str(int(value))  # also prints -0.0 as 0
    return f"{value:.3g}"


def ticks(low: float, high: float, count: int) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 times a power of ten) in [low, high]."""
    if not high > low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    # the first round step at least 80% of the even split: no fewer ticks than asked
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.8)
    first = math.ceil(low / step - 1e-9) * step
    # %.12g drops float noise such as 0.30000000000000004; + 0.0 turns -0.0 into 0.0
    return [float(f"{first + i * step:.12g}") + 0.0
            for i in range(int((high - first) / step + 1e-9) + 1)]


def tick_texts(values: Numbers) -> list[str]:
    """Labels with the decimals the step needs, the same for all (0.0, 0.5, 1.0)."""
    digits = [f"{v:.12g}" for v in values]
    if any("e" in d for d in digits):
        return [num(v) for v in values]
    decimals = max((len(d.partition(".")[2]) for d in digits), default=0)
    return [f"{v:.{decimals}f}" for v in values]


def padded(low: float, high: float, share: float = 0.04) -> tuple[float, float]:
    """``(low, high)`` widened by ``share`` of the span each side: points stay off the axes."""
    span = (high - low) or abs(high) or 1.0
    return low - share * span, high + share * span


def text_width(content: str, size: float) -> float:
    """Estimated width in pixels of ``content`` at font ``size``."""
    return len(content) * _CHAR * size


def fit(content: str, width: float, size: float) -> str:
    """``content`` cut to about ``width`` pixels at font ``size``, ellipsis in the middle.

    The middle, because names often share a prefix and differ at the end (x_1, x_2).
    """
    most = max(int(width / (_CHAR * size)), 3)
    if len(content) <= most:
        return content
    head = (most - 1) // 2
    return content[:head] + "…" + content[len(content) - (most - 1 - head):]


def wrap(content: str, width: float, size: float, lines: int = 2) -> list[str]:
    """``content`` broken into at most ``lines`` lines of about ``width`` pixels.

    Breaks after spaces, ``_``, ``-``, ``.`` and ``/`` (column names are often
    snake_case), inside a word only when it alone is too long. Only what does not fit in
    ``lines`` lines is cut, with :func:`fit`'s middle ellipsis on the last line.
    """
    most = max(int(width / (_CHAR * size)), 3)
    if len(content) <= most:
        return [content]
    words: list[str] = []
    for word in re.findall(r"[^ _\-./]*[ _\-./]?", content):
        words += [word[i:i + most] for i in range(0, len(word), most)] if word else []
    rows = [""]
    for word in words:
        if rows[-1] and len(rows[-1] + word.rstrip()) > most:
            rows.append("")
        rows[-1] += word
    if len(rows) > lines:
        rows[lines - 1:] = [fit("".join(rows[lines - 1:]), width, size)]
    return [row.rstrip() for row in rows]


def text(x: float, y: float, content: str, size: float, *, anchor: str = "middle",
         rotate: float = 0, fill: str = "", tip: str = "") -> str:
    """One escaped ``<text>``; ``rotate`` turns it about its anchor point (degrees)."""
    where = (f"transform='translate({x:.1f} {y:.1f}) rotate({-rotate:g})'" if rotate
             else f"x='{x:.1f}' y='{y:.1f}'")
    colour = f" fill='{fill}'" if fill else ""
    hover = f"<title>{escape(tip)}</title>" if tip else ""
    return (f"<text {where} text-anchor='{anchor}' font-size='{size:g}'{colour}>"
            f"{hover}{escape(content)}</text>")


def text_lines(x: float, y: float, rows: Sequence[str], size: float, *,
               anchor: str = "middle", tip: str = "") -> str:
    """Lines of text centred vertically on row ``y`` (one ``<tspan>`` per line)."""
    if len(rows) == 1:
        return text(x, y + size * 0.35, rows[0], size, anchor=anchor, tip=tip)
    first = y + size * 0.35 - (len(rows) - 1) * size * _LEADING / 2
    hover = f"<title>{escape(tip)}</title>" if tip else ""
    spans = "".join(f"<tspan x='{x:.1f}' dy='{0 if i == 0 else size * _LEADING:.1f}'>"
                    f"{escape(row)}</tspan>" for i, row in enumerate(rows))
    return (f"<text x='{x:.1f}' y='{first:.1f}' text-anchor='{anchor}' font-size='{size:g}'>"
            f"{hover}{spans}</text>")


@dataclass
class Axis:
    """A data range and its label; ``categories`` give name ``i`` the band [i, i+1]."""

    low: float = 0.0
    high: float = 1.0
    label: str = ""
    categories: Sequence[str] = field(default_factory=list)
    rotate: float = 0  # degrees the tick labels turn, for long category names

    @classmethod
    def of(cls, names: Sequence[str], label: str = "", rotate: float = 0) -> Axis:
        """A categorical axis: one band per name, in order (top to bottom on y)."""
        return cls(0.0, float(len(names)), label, [str(n) for n in names], rotate)

    def tick_labels(self, count: int) -> list[tuple[float, str]]:
        """``(value, label)`` pairs: band centres, or about ``count`` round numbers."""
        if self.categories:
            return [(i + 0.5, name) for i, name in enumerate(self.categories)]
        values = ticks(self.low, self.high, count)
        return list(zip(values, tick_texts(values), strict=True))


class Chart:
    """One plot of ``width`` x ``height`` pixels with margins sized to its labels.

    ``legend`` entries are ``(label, colour, style)``, style one of ``box``, ``line``,
    ``dash`` or ``marker``; they sit in a row above the plot area, never on the data.
    A categorical y axis runs top to bottom, like a table.
    """

    def __init__(self, title: str, *, x: Axis, y: Axis, width: int = 520, height: int = 390,
                 font: float = 12, legend: Sequence[tuple[str, str, str]] = (),
                 show_title: bool = True, label_room: float = 0.3):
        if font < MIN_FONT:
            raise ValueError(f"font {font} is below {MIN_FONT} px, unreadable in a KFP UI "
                             "pane; use a larger font and a larger chart")
        self.title, self.x_axis, self.y_axis = title, x, y
        self.width, self.height, self.font = width, height, font
        self.legend, self.show_title = list(legend), show_title
        self.label_room = label_room  # share of the width y category names may take
        self.body: list[str] = []
        self.y0 = (font + 12 if show_title else 10) + (font + 8 if legend else 0)
        self.y1 = height - self._bottom_margin()
        self.y_ticks = y.tick_labels(max(int((self.y1 - self.y0) / 45), 2))
        self.x0 = self._left_margin()
        self.x1 = width - font * 1.5 - 4  # room for half of the last tick label
        self.x_ticks = self._x_tick_labels()

    def _x_tick_labels(self) -> list[tuple[float, str]]:
        """A tick every six characters or so, fewer if the labels would crowd."""
        room = self.x1 - self.x0
        count = max(int(room / (6 * self.font)), 2)
        while True:
            labels = self.x_axis.tick_labels(count)
            widest = max(text_width(name, self.font) for _, name in labels)
            if self.x_axis.categories or count <= 2 or 1.5 * widest <= room / len(labels):
                return labels
            count -= 1

    def _bottom_margin(self) -> float:
        axis, size = self.x_axis, self.font
        label_row = size + 8 if axis.label else 0
        if axis.rotate and axis.categories:
            longest = max(text_width(self._category(n), size) for n in axis.categories)
            return longest * math.sin(math.radians(axis.rotate)) + size + 6 + label_row
        return size + 8 + label_row

    def _left_margin(self) -> float:
        label_row = self.font + 8 if self.y_axis.label else 4
        longest = max(text_width(row, self.font) for _, name in self.y_ticks
                      for row in (self._y_rows(name) if self.y_axis.categories else [name]))
        return label_row + longest + 6

    def _y_rows(self, name: str) -> list[str]:
        """A y category name wrapped into the room it gets: ``label_room``, its band."""
        band = (self.y1 - self.y0) / max(len(self.y_axis.categories), 1)
        lines = max(int(band / (self.font * _LEADING)), 1)
        return wrap(name, self.label_room * self.width, self.font, min(lines, 3))

    def _category(self, name: str) -> str:
        """An x category name cut to the room it gets (a share of the chart's size)."""
        if self.x_axis.rotate:
            return fit(name, 0.3 * self.height, self.font)
        band = (self.x1 - self.x0) / max(len(self.x_axis.categories), 1)
        return fit(name, band, self.font)

    def x(self, value: Any) -> Any:
        """Pixel column of data ``value`` (a number or an array)."""
        axis = self.x_axis
        return self.x0 + (value - axis.low) / ((axis.high - axis.low) or 1) * (self.x1 - self.x0)

    def y(self, value: Any) -> Any:
        """Pixel row of data ``value``: up from the bottom, or down for categories."""
        axis = self.y_axis
        share = (value - axis.low) / ((axis.high - axis.low) or 1) * (self.y1 - self.y0)
        return self.y0 + share if axis.categories else self.y1 - share

    def rect(self, x0: float, x1: float, y0: float, y1: float, fill: str,
             opacity: float = 1.0, tip: str = "") -> None:
        """A filled box between two data corners; at least half a pixel each way."""
        left, right = sorted((self.x(x0), self.x(x1)))
        top, bottom = sorted((self.y(y0), self.y(y1)))
        shade = f" fill-opacity='{opacity:g}'" if opacity < 1 else ""
        hover = f"<title>{escape(tip)}</title>" if tip else ""
        self.body.append(
            f"<rect x='{left:.1f}' y='{top:.1f}' width='{max(right - left, 0.5):.1f}' "
            f"height='{max(bottom - top, 0.5):.1f}' fill='{fill}'{shade}>{hover}</rect>")

    def line(self, xs: Numbers, ys: Numbers, colour: str, *,
             dash: bool = False, width: float = 1.5) -> None:
        """A polyline through the points (repeats at 0.1 px dropped: curves stay small)."""
        px = np.round(self.x(np.asarray(xs, dtype=float)), 1)
        py = np.round(self.y(np.asarray(ys, dtype=float)), 1)
        keep = np.ones(len(px), dtype=bool)
        keep[1:] = (np.diff(px) != 0) | (np.diff(py) != 0)
        points = " ".join(f"{a:g},{b:g}" for a, b in zip(px[keep], py[keep], strict=True))
        style = " stroke-dasharray='5 4'" if dash else ""
        self.body.append(f"<polyline points='{points}' fill='none' stroke='{colour}' "
                         f"stroke-width='{width:g}'{style}/>")

    def markers(self, xs: Numbers, ys: Numbers, colour: str,
                radius: float = 3.5, opacity: float = 1.0) -> None:
        """A dot at each point."""
        px, py = self.x(np.asarray(xs, dtype=float)), self.y(np.asarray(ys, dtype=float))
        dots = "".join(f"<circle cx='{a:.1f}' cy='{b:.1f}' r='{radius:g}'/>"
                       for a, b in zip(px, py, strict=True))
        self.body.append(f"<g fill='{colour}' fill-opacity='{opacity:g}'>{dots}</g>")

    def scatter(self, xs: Numbers, ys: Numbers, colour: str, *,
                cap: int = MAX_POINTS, seed: int = 0) -> int:
        """Translucent dots at a seeded sample of at most ``cap`` points; returns how many."""
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if len(xs) > cap:
            chosen = np.sort(np.random.default_rng(seed).choice(len(xs), cap, replace=False))
            xs, ys = xs[chosen], ys[chosen]
        self.markers(xs, ys, colour, radius=2.5, opacity=0.5)
        return len(xs)

    def bars(self, values: Numbers, colour: str, *, group: tuple[int, int] = (0, 1),
             errors: Numbers | None = None, tips: Sequence[str] = (),
             opacity: float = 0.8) -> None:
        """One bar per category from 0 to its value, along the categorical axis.

        ``group=(j, k)``: the ``j``-th of ``k`` side-by-side series sharing each band.
        ``errors`` draw a whisker of plus or minus that much around each value.
        """
        j, k = group
        vertical = bool(self.x_axis.categories)
        for i, value in enumerate(values):
            start = i + 0.1 + 0.8 * j / k
            end = start + 0.8 / k
            tip = tips[i] if tips else ""
            if vertical:
                self.rect(start, end, 0, value, colour, opacity, tip)
            else:
                self.rect(0, value, start, end, colour, opacity, tip)
            if errors is not None:
                self._whisker(value, errors[i], (start + end) / 2, vertical)

    def _whisker(self, value: float, error: float, centre: float, vertical: bool) -> None:
        if vertical:
            a, b, c = self.y(value - error), self.y(value + error), self.x(centre)
            d = f"M{c:.1f} {a:.1f}V{b:.1f}M{c - 4:.1f} {a:.1f}h8M{c - 4:.1f} {b:.1f}h8"
        else:
            a, b, c = self.x(value - error), self.x(value + error), self.y(centre)
            d = f"M{a:.1f} {c:.1f}H{b:.1f}M{a:.1f} {c - 4:.1f}v8M{b:.1f} {c - 4:.1f}v8"
        self.body.append(f"<path d='{d}' stroke='#333' fill='none'/>")

    def label(self, x: float, y: float, content: str, *, dy: float = 0) -> None:
        """Small text at a data point, ``dy`` pixels below it (negative: above)."""
        self.body.append(text(self.x(x), self.y(y) + dy, content, self.font, fill="#333"))

    def heatmap(self, matrix: np.ndarray) -> None:
        """Cells shaded white to dark blue by value, each with its number.

        The number turns white on cells darker than the middle of the scale.
        """
        matrix = np.asarray(matrix, dtype=float)
        top = float(matrix.max()) if matrix.size else 0.0
        cell = min((self.x1 - self.x0) / matrix.shape[1], (self.y1 - self.y0) / matrix.shape[0])
        # Five digits fit in a cell, but never below MIN_FONT (big matrices crowd instead).
        size = max(min(self.font + 1, cell / (5 * _CHAR)), MIN_FONT)
        for (row, col), value in np.ndenumerate(matrix):
            share = value / top if top > 0 else 0.0
            self.rect(col, col + 1, row, row + 1, blues(share))
            self.body.append(text(self.x(col + 0.5), self.y(row + 0.5) + size * 0.35, num(value),
                                  size, fill="#fff" if share > 0.5 else "#000"))

    def svg(self) -> str:
        """The chart's markup: ``<svg class='plot' ... role='img'>`` with a ``<title>``."""
        w, h = self.width, self.height
        parts = [f"<svg class='plot' viewBox='0 0 {w} {h}' width='{w}' height='{h}' role='img'>",
                 f"<title>{escape(self.title)}</title>", *self._grid(), *self.body,
                 f"<path d='M{self.x0:.1f} {self.y0:.1f}V{self.y1:.1f}H{self.x1:.1f}' "
                 "stroke='#555' fill='none'/>", *self._tick_labels(), *self._axis_labels(),
                 *self._legend()]
        if self.show_title:
            parts.insert(2, text(w / 2, self.font + 5, fit(self.title, w, self.font + 3),
                                 self.font + 3))
        return "".join(parts) + "</svg>"

    def _grid(self) -> list[str]:
        lines = [] if self.x_axis.categories else [
            f"M{self.x(v):.1f} {self.y0:.1f}V{self.y1:.1f}" for v, _ in self.x_ticks]
        if not self.y_axis.categories:
            lines += [f"M{self.x0:.1f} {self.y(v):.1f}H{self.x1:.1f}" for v, _ in self.y_ticks]
        return [f"<path d='{''.join(lines)}' stroke='#e3e3e3' fill='none'/>"] if lines else []

    def _tick_labels(self) -> list[str]:
        size, axis = self.font, self.x_axis
        parts = []
        for value, name in self.x_ticks:
            label = self._category(name) if axis.categories else name
            tip, at = name if label != name else "", self.x(value)
            if axis.rotate and axis.categories:
                parts.append(text(at + size * 0.3, self.y1 + size * 0.8, label, size,
                                  anchor="end", rotate=axis.rotate, tip=tip))
                continue
            half = text_width(label, size) / 2
            at = min(max(at, half + 2), self.width - half - 2)  # keep edge labels whole
            parts.append(text(at, self.y1 + size + 4, label, size, tip=tip))
        for value, name in self.y_ticks:
            rows = self._y_rows(name) if self.y_axis.categories else [name]
            cut = "".join(rows).replace(" ", "") != name.replace(" ", "")
            parts.append(text_lines(self.x0 - 4, self.y(value), rows, size, anchor="end",
                                    tip=name if cut else ""))
        return parts

    def _axis_labels(self) -> list[str]:
        size = self.font + 1
        parts = []
        if self.x_axis.label:  # centred under the plot, but may use the whole width
            label = fit(self.x_axis.label, self.width - 4, size)
            half = text_width(label, size) / 2
            at = min(max((self.x0 + self.x1) / 2, half + 2), self.width - half - 2)
            parts.append(text(at, self.height - 5, label, size))
        if self.y_axis.label:
            parts.append(text(size, (self.y0 + self.y1) / 2,
                              fit(self.y_axis.label, self.y1 - self.y0, size), size, rotate=90))
        return parts

    def _legend(self) -> list[str]:
        size = self.font + 1
        widths = [_SWATCH + 4 + text_width(label, size) + 12 for label, _, _ in self.legend]
        x = max(self.x1 - sum(widths) + 12, self.x0)  # right-aligned over the plot
        row = self.y0 - 8 - size / 2  # the middle of the legend row
        parts = []
        for (label, colour, style), width in zip(self.legend, widths, strict=True):
            parts.append(_swatch(x, row, colour, style))
            parts.append(text(x + _SWATCH + 4, row + size * 0.35, label, size, anchor="start"))
            x += width
        return parts


def _swatch(x: float, y: float, colour: str, style: str) -> str:
    """The legend sample of one series, ``_SWATCH`` pixels wide and centred on ``y``."""
    if style == "box":
        return (f"<rect x='{x + 4:.1f}' y='{y - 5:.1f}' width='10' height='10' "
                f"fill='{colour}' fill-opacity='0.6'/>")
    dash = " stroke-dasharray='5 4'" if style == "dash" else ""
    dot = f"<circle cx='{x + _SWATCH / 2:.1f}' cy='{y:.1f}' r='3.5' fill='{colour}'/>" if (
        style == "marker") else ""
    return (f"<path d='M{x:.1f} {y:.1f}h{_SWATCH}' stroke='{colour}' stroke-width='1.5'"
            f"{dash}/>{dot}")


_BLUES = np.array([[247, 251, 255], [107, 174, 214], [8, 48, 107]], dtype=float)


def blues(share: float) -> str:
    """Colour for ``share`` in [0, 1] on a white - mid blue - navy scale."""
    share = min(max(float(share), 0.0), 1.0) * 2
    low = min(int(share), 1)
    rgb = _BLUES[low] + (share - low) * (_BLUES[low + 1] - _BLUES[low])
    return "#" + "".join(f"{round(c):02x}" for c in rgb)
