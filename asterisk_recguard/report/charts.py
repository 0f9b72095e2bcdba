"""Bar charts as inline SVG for the HTML report: stacked columns per day and
horizontal bars per category, each with a <title> for screen readers.

Drawn here rather than by a plotting library: the report must be one file
that opens offline and runs no script. pygal always embeds a <script> in its
SVG; matplotlib would bring numpy and some 40 MB into the install for three
bar charts; leather draws neither stacked columns nor accessible titles. A
bar chart is a few rectangles, and every text in it goes through
html.escape here, so nothing from the ledger or the policy becomes markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

FONT = "font-family:system-ui,sans-serif;font-size:12px"
AXIS = "#444444"
GRID = "#dddddd"


@dataclass(frozen=True)
class Series:
    name: str
    colour: str  # "#rrggbb"
    values: Sequence[int]


def _svg(chart_id: str, title: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{chart_id}-title" '
        f'shape-rendering="crispEdges" style="{FONT}">'
        f'<title id="{chart_id}-title">{html.escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = AXIS) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">'
            f"{html.escape(text)}</text>")


def _rect(x: float, y: float, w: float, h: float, colour: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colour}"/>'


def nice_top(value: int) -> int:
    """The top of the value axis: ``value`` rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor:
                return step * factor
        step *= 10


def stacked_columns(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series],
                    *, width: int = 900, height: int = 280) -> str:
    """One column per label, its series stacked from the bottom; a legend above.
    Every ``label_every``-th label is written under the axis so that they never overlap."""
    left, right, top, bottom = 44, 10, 34, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    peak = nice_top(max(totals, default=0))
    body = _grid(left, top, plot_w, plot_h, peak)
    slot = plot_w / max(len(labels), 1)
    bar = max(slot * 0.7, 1.0)
    label_every = max(1, int(40 // slot) + 1)
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        base = float(top + plot_h)
        for s in series:
            h = plot_h * s.values[i] / peak
            if h > 0:
                body.append(_rect(x, base - h, bar, h, s.colour))
                base -= h
        if i % label_every == 0:
            body.append(_text(x + bar / 2, top + plot_h + 16, label, "middle"))
    body.extend(_legend(left, 14, series))
    return _svg(chart_id, title, width, height, body)


def horizontal_bars(chart_id: str, title: str, items: Sequence[tuple[str, int]], colour: str,
                    *, width: int = 900, label_width: int = 240) -> str:
    """One bar per item, longest value first as given, with its count at its end."""
    row, top = 24, 8
    height = top + row * max(len(items), 1) + 8
    plot_w = width - label_width - 60
    peak = max((count for _, count in items), default=0) or 1
    body: list[str] = []
    if not items:
        body.append(_text(label_width, top + 16, "none in the period"))
    for i, (label, count) in enumerate(items):
        y = top + i * row
        w = plot_w * count / peak
        body.append(_text(label_width - 8, y + 16, label, "end"))
        body.append(_rect(label_width, y + 4, max(w, 1.0), row - 8, colour))
        body.append(_text(label_width + w + 6, y + 16, str(count)))
    return _svg(chart_id, title, width, height, body)


def _grid(left: int, top: int, plot_w: int, plot_h: int, peak: int) -> list[str]:
    body = []
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        value = peak * fraction
        shown = f"{value:g}"
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                    f'stroke="{AXIS if fraction == 0 else GRID}"/>')
        body.append(_text(left - 6, y + 4, shown, "end"))
    return body


def _legend(x: float, y: float, series: Sequence[Series]) -> list[str]:
    body = []
    for s in series:
        body.append(_rect(x, y - 9, 10, 10, s.colour))
        body.append(_text(x + 14, y, s.name))
        x += 24 + 7 * len(s.name)
    return body
