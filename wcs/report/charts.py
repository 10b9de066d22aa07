"""Line and bar charts as self-contained SVG, drawn here (no plotting library).

Both charts take one label per x position and named series of values (``None`` is a
gap: "nothing measured that day" is not zero). Every series is a ``<g>`` with
``data-series`` and every point or bar carries its value in ``data-value``, so tests
and readers of the HTML can check what was drawn. Text uses the document's font.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

WIDTH = 640.0
HEIGHT = 240.0
LEFT, RIGHT, TOP, BOTTOM = 56.0, 16.0, 30.0, 54.0
PALETTE = ("#1f6feb", "#d9480f", "#2f9e44", "#862e9c", "#e67700", "#0c8599")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10.0 * power


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _frame(
    title: str, labels: Sequence[str], top: float, y_format: Callable[[float], str]
) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<text x="{_fmt(LEFT)}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>'
    ]
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{_fmt(LEFT)}" y1="{_fmt(y)}" x2="{_fmt(LEFT + plot_w)}" y2="{_fmt(y)}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{_fmt(LEFT - 6)}" y="{_fmt(y + 4)}" font-size="10" '
            f'text-anchor="end">{escape(y_format(value))}</text>'
        )
    step = max(1, math.ceil(len(labels) / 12))  # at most a dozen x labels
    for i, label in enumerate(labels):
        if i % step:
            continue
        x = _x(i, len(labels))
        parts.append(
            f'<text x="{_fmt(x)}" y="{_fmt(TOP + plot_h + 14)}" font-size="9" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return parts


def _x(i: int, n: int) -> float:
    plot_w = WIDTH - LEFT - RIGHT
    return LEFT + plot_w * (i + 0.5) / max(n, 1)


def _y(value: float, top: float) -> float:
    plot_h = HEIGHT - TOP - BOTTOM
    return TOP + plot_h - plot_h * min(value, top) / top


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    x = LEFT
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        y = HEIGHT - 14
        parts.append(
            f'<rect x="{_fmt(x)}" y="{_fmt(y - 8)}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{_fmt(x + 14)}" y="{_fmt(y + 1)}" font-size="10">{escape(s.name)}</text>'
        )
        x += 24 + 6.2 * len(s.name)
    return parts


def _svg(kind: str, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" '
        f'width="{_fmt(WIDTH)}" height="{_fmt(HEIGHT)}" viewBox="0 0 {_fmt(WIDTH)} {_fmt(HEIGHT)}" '
        f'role="img" aria-label={quoteattr(title)}>' + "".join(body) + "</svg>"
    )


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_max: float | None = None,
    y_format: Callable[[float], str] = _fmt,
) -> str:
    """One polyline per series; a gap (None) breaks the line, single points get a dot."""
    values = [v for s in series for v in s.values if v is not None]
    top = y_max if y_max is not None else nice_max(max(values, default=0.0))
    body = _frame(title, labels, top, y_format)
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        body.append(f"<g data-series={quoteattr(s.name)}>")
        run: list[str] = []
        runs: list[list[str]] = []
        for i, v in enumerate(s.values):
            if v is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{_fmt(_x(i, len(labels)))},{_fmt(_y(v, top))}")
        if run:
            runs.append(run)
        for points in runs:
            body.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
        for i, v in enumerate(s.values):
            if v is not None:
                body.append(
                    f'<circle cx="{_fmt(_x(i, len(labels)))}" cy="{_fmt(_y(v, top))}" r="2.5" '
                    f'fill="{colour}" data-value="{v:g}"><title>{escape(labels[i])}: '
                    f"{escape(y_format(v))}</title></circle>"
                )
        body.append("</g>")
    body.extend(_legend(series))
    return _svg("line", title, body)


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_format: Callable[[float], str] = _fmt,
) -> str:
    """Grouped bars, one group per label."""
    values = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(values, default=0.0))
    body = _frame(title, labels, top, y_format)
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    bar_w = max(1.0, slot * 0.8 / max(len(series), 1))
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        body.append(f"<g data-series={quoteattr(s.name)}>")
        for i, v in enumerate(s.values):
            if v is None:
                continue
            x = LEFT + slot * i + slot * 0.1 + bar_w * k
            y = _y(v, top)
            body.append(
                f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(bar_w)}" '
                f'height="{_fmt(_y(0, top) - y)}" fill="{colour}" data-value="{v:g}">'
                f"<title>{escape(labels[i])}: {escape(y_format(v))}</title></rect>"
            )
        body.append("</g>")
    body.extend(_legend(series))
    return _svg("bar", title, body)
