"""Server-rendered SVG charts for the console (no JavaScript library, no network at run time).

Plain functions over sequences; no Django import, so they can be tested alone. Every label that
comes from data is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

SEVERITY_COLOURS = {"critical": "#b91c1c", "high": "#ea580c", "medium": "#ca8a04", "low": "#2563eb"}


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _compact_amount(value: float) -> str:
    magnitude = abs(value)
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= divisor:
            return f"{value / divisor:.1f}{suffix}"
    return f"{value:.0f}"


def series_chart_svg(
    *,
    labels: Sequence[str],
    values: Sequence[float | None],
    expected: Sequence[float | None] | None = None,
    band_low: Sequence[float | None] | None = None,
    band_high: Sequence[float | None] | None = None,
    marked: Sequence[int] = (),
    marked_colours: Sequence[str] | None = None,
    width: int = 720,
    height: int = 260,
    title: str = "",
) -> str:
    """A line chart of a series with its expected value, the expected band and marked points.

    ``marked`` are indexes into ``values`` (the anomalous points), drawn as larger red dots.
    """
    n = len(labels)
    if n == 0 or len(values) != n:
        return '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="no data" width="0" height="0"></svg>'
    pad_left, pad_right, pad_top, pad_bottom = 64, 16, 24 if title else 12, 36
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    everything = _finite(values) + _finite(expected or []) + _finite(band_low or []) + _finite(band_high or [])
    low, high = (min(everything), max(everything)) if everything else (0.0, 1.0)
    if high == low:
        low, high = low - 1.0, high + 1.0
    span = high - low
    low, high = low - 0.05 * span, high + 0.05 * span

    def x(i: int) -> float:
        return pad_left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_top + plot_h * (1 - (v - low) / (high - low))

    def path(series: Sequence[float | None]) -> str:
        parts, pen_down = [], False
        for i, v in enumerate(series):
            if v is None or not math.isfinite(float(v)):
                pen_down = False
                continue
            parts.append(f"{'L' if pen_down else 'M'}{_fmt(x(i))},{_fmt(y(float(v)))}")
            pen_down = True
        return " ".join(parts)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="series-chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title or "series chart")}">',
        f'<rect x="{pad_left}" y="{pad_top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>',
    ]
    if title:
        out.append(f'<text x="{pad_left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>')
    for k in range(5):
        v = low + (high - low) * k / 4
        out.append(
            f'<line x1="{pad_left}" x2="{width - pad_right}" y1="{_fmt(y(v))}" y2="{_fmt(y(v))}" stroke="#eee"/>'
            f'<text x="{pad_left - 6}" y="{_fmt(y(v) + 4)}" font-size="10" text-anchor="end">'
            f"{escape(_compact_amount(v))}</text>"
        )
    step = max(1, math.ceil(n / 12))
    for i in range(0, n, step):
        out.append(
            f'<text x="{_fmt(x(i))}" y="{height - pad_bottom + 16}" font-size="10" text-anchor="middle">'
            f"{escape(str(labels[i]))}</text>"
        )
    if band_low is not None and band_high is not None:
        upper = [(i, v) for i, v in enumerate(band_high) if v is not None and math.isfinite(float(v))]
        lower = [(i, v) for i, v in enumerate(band_low) if v is not None and math.isfinite(float(v))]
        if upper and lower:
            points = [f"{_fmt(x(i))},{_fmt(y(float(v)))}" for i, v in upper]
            points += [f"{_fmt(x(i))},{_fmt(y(float(v)))}" for i, v in reversed(lower)]
            out.append(f'<polygon class="expected-band" points="{" ".join(points)}" fill="#bfdbfe" opacity="0.5"/>')
    if expected is not None:
        out.append(
            f'<path class="expected" d="{path(expected)}" fill="none" stroke="#2563eb" '
            'stroke-dasharray="4 3" stroke-width="1.5"/>'
        )
    out.append(f'<path class="actual" d="{path(values)}" fill="none" stroke="#111827" stroke-width="1.8"/>')
    for i, v in enumerate(values):
        if v is not None and math.isfinite(float(v)):
            out.append(f'<circle cx="{_fmt(x(i))}" cy="{_fmt(y(float(v)))}" r="2" fill="#111827"/>')
    colours = list(marked_colours or [])
    for j, i in enumerate(marked):
        v = values[i] if 0 <= i < n else None
        if v is None or not math.isfinite(float(v)):
            continue
        colour = colours[j] if j < len(colours) else "#dc2626"
        out.append(
            f'<circle class="anomaly-point" cx="{_fmt(x(i))}" cy="{_fmt(y(float(v)))}" r="6" fill="none" '
            f'stroke="{colour}" stroke-width="2.5"><title>{escape(str(labels[i]))}: '
            f"{escape(_compact_amount(float(v)))}</title></circle>"
        )
    out.append("</svg>")
    return "".join(out)


def heatmap_svg(
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: dict[tuple[int, int], float],
    links: dict[tuple[int, int], str] | None = None,
    cell: int = 14,
    row_label_width: int = 150,
) -> str:
    """A heatmap of scores 0-100: ``cells[(row, column)]`` is the score; empty cells stay light.

    ``links`` maps a cell to a URL, so that a click opens the anomaly behind it.
    """
    header = 48
    width = row_label_width + cell * len(columns) + 8
    height = header + cell * len(rows) + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="anomaly heatmap">'
    ]
    for j, column in enumerate(columns):
        if j % 3 == 0:
            cx = row_label_width + j * cell + cell / 2
            out.append(
                f'<text x="{_fmt(cx)}" y="{header - 6}" font-size="9" transform="rotate(-60 {_fmt(cx)} {header - 6})">'
                f"{escape(str(column))}</text>"
            )
    for i, row in enumerate(rows):
        y = header + i * cell
        out.append(
            f'<text x="{row_label_width - 4}" y="{y + cell - 3}" font-size="10" text-anchor="end">{escape(str(row))}</text>'
        )
        for j in range(len(columns)):
            score = cells.get((i, j))
            fill = "#f3f4f6" if score is None else _heat_colour(score)
            rect = (
                f'<rect x="{row_label_width + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                f"<title>{escape(str(row))} {escape(str(columns[j]))}"
                f"{'' if score is None else f': score {score:.0f}'}</title></rect>"
            )
            url = (links or {}).get((i, j))
            out.append(f'<a href="{escape(url)}">{rect}</a>' if url else rect)
    out.append("</svg>")
    return "".join(out)


def _heat_colour(score: float) -> str:
    """White-yellow-red ramp over 0-100."""
    t = max(0.0, min(1.0, score / 100.0))
    red = 255
    green = int(round(245 - 200 * t))
    blue = int(round(220 - 200 * t))
    return f"#{red:02x}{green:02x}{blue:02x}"
