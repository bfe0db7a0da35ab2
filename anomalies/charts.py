"""Server-rendered SVG charts for the console (no JavaScript library, no network at run time).

Plain functions over sequences; no Django import, so they can be tested alone. Every label that
comes from data is escaped, quotes included (an attribute cannot be closed from data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape  # quote=True: attributes are escaped as well as text

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


def _value_range(values: Sequence[float | None], others: Sequence[float], marked: Sequence[int]) -> tuple[float, float]:
    """The y range: the ordinary (unmarked) amounts, widened to take in any other point near them.

    A decimal shift (x100) would squash the rest of the series into a flat line; points far outside
    (beyond 1.5 spans or twice the level: marked amounts, or expected values and bands pulled by
    them) are drawn at the edge instead.
    """
    marked_set = set(marked)
    ordinary = [float(v) for i, v in enumerate(values) if i not in marked_set and v is not None and math.isfinite(float(v))]
    candidates = _finite(values) + list(others)
    if len(ordinary) < 2:
        ordinary = candidates
    if not ordinary:
        return 0.0, 1.0
    low, high = min(ordinary), max(ordinary)
    span = (high - low) or max(abs(high) * 0.1, 1.0)
    # Room for 1.5 spans or twice the level, whichever is more: a doubled posting or a sign flip
    # stays on the chart, a x10 or x100 does not.
    room = max(1.5 * span, 2.0 * max(abs(low), abs(high)))
    allowed_low, allowed_high = low - room, high + room
    inside = [v for v in candidates if allowed_low <= v <= allowed_high]
    low, high = min([*inside, low]), max([*inside, high])
    if high == low:
        low, high = low - 1.0, high + 1.0
    pad = 0.06 * (high - low)
    return low - pad, high + pad


def series_chart_svg(
    *,
    labels: Sequence[str],
    values: Sequence[float | None],
    expected: Sequence[float | None] | None = None,
    band_low: Sequence[float | None] | None = None,
    band_high: Sequence[float | None] | None = None,
    marked: Sequence[int] = (),
    marked_colours: Sequence[str] | None = None,
    current: int | None = None,
    width: int = 720,
    height: int = 260,
    title: str = "",
    legend: bool = True,
) -> str:
    """A line chart of a series with its expected value, the expected band and marked points.

    ``marked`` are indexes into ``values`` (the anomalous points), drawn as rings in their
    ``marked_colours`` (red by default); a marked index without a value (an absent posting) is a
    dashed vertical line. ``current`` (an index) gets a guide line: the point the page is about.
    Points far outside the ordinary range are drawn at the edge with their value written beside
    them ("off-scale"), so one x100 posting does not flatten the rest of the series.
    """
    n = len(labels)
    if n == 0 or len(values) != n:
        return '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="no data" width="0" height="0"></svg>'
    pad_left, pad_right = 64, 16
    pad_top = 30 if title else 14
    pad_bottom = 56 if legend else 36
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    others = _finite(expected or []) + _finite(band_low or []) + _finite(band_high or [])
    low, high = _value_range(values, others, marked)

    def x(i: int) -> float:
        return pad_left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_top + plot_h * (1 - (min(max(v, low), high) - low) / (high - low))

    def off_scale(v: float) -> bool:
        return v < low or v > high

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
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title or "series chart")}" '
        'font-family="system-ui, sans-serif">',
        f'<rect x="{pad_left}" y="{pad_top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>',
    ]
    if title:
        out.append(f'<text x="{pad_left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>')
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
            f'<text x="{_fmt(x(i))}" y="{pad_top + plot_h + 16}" font-size="10" text-anchor="middle">'
            f"{escape(str(labels[i]))}</text>"
        )
    if current is not None and 0 <= current < n:
        out.append(
            f'<line class="current" x1="{_fmt(x(current))}" x2="{_fmt(x(current))}" y1="{pad_top}" '
            f'y2="{pad_top + plot_h}" stroke="#9ca3af" stroke-dasharray="2 3"/>'
        )
    if band_low is not None and band_high is not None:
        # One polygon per run of consecutive months with a band (a gap ends the run).
        run: list[int] = []
        runs: list[list[int]] = []
        for i in range(n):
            lo = band_low[i] if i < len(band_low) else None
            hi = band_high[i] if i < len(band_high) else None
            if lo is not None and hi is not None and math.isfinite(float(lo)) and math.isfinite(float(hi)):
                run.append(i)
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
        for run in runs:
            points = [f"{_fmt(x(i))},{_fmt(y(float(band_high[i])))}" for i in run]
            points += [f"{_fmt(x(i))},{_fmt(y(float(band_low[i])))}" for i in reversed(run)]
            if len(run) == 1:  # a lone month: a short bar instead of a zero-width polygon
                i = run[0]
                points = [
                    f"{_fmt(x(i) - 3)},{_fmt(y(float(band_high[i])))}",
                    f"{_fmt(x(i) + 3)},{_fmt(y(float(band_high[i])))}",
                    f"{_fmt(x(i) + 3)},{_fmt(y(float(band_low[i])))}",
                    f"{_fmt(x(i) - 3)},{_fmt(y(float(band_low[i])))}",
                ]
            out.append(f'<polygon class="expected-band" points="{" ".join(points)}" fill="#bfdbfe" opacity="0.55"/>')
    if expected is not None:
        out.append(
            f'<path class="expected" d="{path(expected)}" fill="none" stroke="#2563eb" '
            'stroke-dasharray="5 3" stroke-width="1.5"/>'
        )
        # A month with an expected value but no neighbour with one (e.g. a total checked only
        # where it failed to foot) has no line to sit on: a short dash marks it.
        for i, v in enumerate(expected):
            if v is None or not math.isfinite(float(v)):
                continue
            before = expected[i - 1] if i > 0 else None
            after = expected[i + 1] if i + 1 < len(expected) else None
            if before is None and after is None:
                out.append(
                    f'<line class="expected-point" x1="{_fmt(x(i) - 8)}" x2="{_fmt(x(i) + 8)}" '
                    f'y1="{_fmt(y(float(v)))}" y2="{_fmt(y(float(v)))}" stroke="#2563eb" stroke-width="2.5">'
                    f"<title>expected {escape(_compact_amount(float(v)))}</title></line>"
                )
    out.append(f'<path class="actual" d="{path(values)}" fill="none" stroke="#111827" stroke-width="1.8"/>')
    for i, v in enumerate(values):
        if v is not None and math.isfinite(float(v)):
            out.append(
                f'<circle class="point" cx="{_fmt(x(i))}" cy="{_fmt(y(float(v)))}" r="2.5" fill="#111827">'
                f"<title>{escape(str(labels[i]))}: {escape(_compact_amount(float(v)))}</title></circle>"
            )
    colours = list(marked_colours or [])
    for j, i in enumerate(marked):
        if not 0 <= i < n:
            continue
        v = values[i]
        colour = colours[j] if j < len(colours) else "#dc2626"
        if v is None or not math.isfinite(float(v)):
            out.append(
                f'<line class="anomaly-absent" x1="{_fmt(x(i))}" x2="{_fmt(x(i))}" y1="{pad_top}" '
                f'y2="{pad_top + plot_h}" stroke="{colour}" stroke-width="2" stroke-dasharray="4 3">'
                f"<title>{escape(str(labels[i]))}: no line</title></line>"
            )
            continue
        value = float(v)
        out.append(
            f'<circle class="anomaly-point" cx="{_fmt(x(i))}" cy="{_fmt(y(value))}" r="{7 if i == current else 6}" '
            f'fill="none" stroke="{colour}" stroke-width="{3 if i == current else 2.5}"><title>{escape(str(labels[i]))}: '
            f"{escape(_compact_amount(value))}</title></circle>"
        )
        if off_scale(value):
            above = value > high
            ty = y(value) + (14 if above else -8)
            anchor = "end" if x(i) > pad_left + plot_w * 0.8 else "start"
            tx = x(i) + (-10 if anchor == "end" else 10)
            out.append(
                f'<text class="off-scale" x="{_fmt(tx)}" y="{_fmt(ty)}" font-size="11" font-weight="bold" '
                f'fill="{colour}" text-anchor="{anchor}">{"▲" if above else "▼"} {escape(_compact_amount(value))} '
                "(off scale)</text>"
            )
    if legend:
        ly = height - 14
        out.append(
            f'<g class="legend" font-size="11" transform="translate({pad_left},{ly})">'
            '<line x1="0" x2="22" y1="-4" y2="-4" stroke="#111827" stroke-width="1.8"/>'
            '<text x="28" y="0">amount</text>'
            '<line x1="92" x2="114" y1="-4" y2="-4" stroke="#2563eb" stroke-width="1.5" stroke-dasharray="5 3"/>'
            '<text x="120" y="0">expected</text>'
            '<rect x="190" y="-10" width="22" height="12" fill="#bfdbfe" opacity="0.8"/>'
            '<text x="218" y="0">expected band</text>'
            '<circle cx="330" cy="-4" r="6" fill="none" stroke="#dc2626" stroke-width="2.5"/>'
            '<text x="342" y="0">flagged month</text>'
            "</g>"
        )
    out.append("</svg>")
    return "".join(out)


def heatmap_svg(
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: dict[tuple[int, int], float],
    links: dict[tuple[int, int], str] | None = None,
    details: dict[tuple[int, int], str] | None = None,
    cell: int = 14,
    row_label_width: int = 150,
) -> str:
    """A heatmap of scores 0-100: ``cells[(row, column)]`` is the score; empty cells stay light.

    ``links`` maps a cell to a URL, so that a click opens the anomaly behind it; ``details`` adds
    text to a cell's tooltip (e.g. severity and status).
    """
    header = 52
    width = row_label_width + cell * len(columns) + 8
    height = header + cell * len(rows) + 8
    label_every = 1 if cell >= 16 else 3
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="anomaly heatmap" font-family="system-ui, sans-serif">'
    ]
    for j, column in enumerate(columns):
        if j % label_every == 0:
            cx = row_label_width + j * cell + cell / 2
            out.append(
                f'<text x="{_fmt(cx)}" y="{header - 6}" font-size="9" transform="rotate(-60 {_fmt(cx)} {header - 6})">'
                f"{escape(str(column))}</text>"
            )
    for i, row in enumerate(rows):
        y = header + i * cell
        out.append(
            f'<text x="{row_label_width - 4}" y="{y + cell - 4}" font-size="10" text-anchor="end">{escape(str(row))}</text>'
        )
        for j in range(len(columns)):
            score = cells.get((i, j))
            fill = "#f3f4f6" if score is None else _heat_colour(score)
            detail = (details or {}).get((i, j))
            tooltip = f"{row} {columns[j]}" + ("" if score is None else f": score {score:.0f}")
            if detail:
                tooltip += f" ({detail})"
            scored = "" if score is None else ' class="scored" stroke="#ffffff" stroke-width="0.5"'
            rect = (
                f'<rect x="{row_label_width + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{fill}"{scored}><title>{escape(tooltip)}</title></rect>'
            )
            url = (links or {}).get((i, j))
            out.append(f'<a href="{escape(url)}">{rect}</a>' if url else rect)
    out.append("</svg>")
    return "".join(out)


def heat_legend_svg(*, width: int = 200, height: int = 28) -> str:
    """The colour ramp of ``heatmap_svg`` from score 50 (the flag threshold) to 100."""
    steps = 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heat-legend" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" role="img" aria-label="score scale">'
    ]
    box = (width - 60) / steps
    for k in range(steps):
        score = 50 + 50 * (k + 0.5) / steps
        out.append(f'<rect x="{_fmt(30 + k * box)}" y="2" width="{_fmt(box)}" height="12" fill="{_heat_colour(score)}"/>')
    out.append('<text x="26" y="12" font-size="10" text-anchor="end">50</text>')
    out.append(f'<text x="{width - 26}" y="12" font-size="10">100</text>')
    out.append(f'<text x="{width / 2}" y="26" font-size="9" text-anchor="middle">anomaly score</text>')
    out.append("</svg>")
    return "".join(out)


_RAMP = ((0.0, (253, 230, 138)), (0.5, (249, 115, 22)), (1.0, (127, 29, 29)))


def _heat_colour(score: float) -> str:
    """Yellow-orange-dark red over scores 50 (the flag threshold) to 100; lower scores are yellow."""
    t = max(0.0, min(1.0, (score - 50.0) / 50.0))
    for (t0, c0), (t1, c1) in zip(_RAMP, _RAMP[1:], strict=False):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            red, green, blue = (int(round(a + (b - a) * f)) for a, b in zip(c0, c1, strict=True))
            return f"#{red:02x}{green:02x}{blue:02x}"
    return "#7f1d1d"


def shap_bars_svg(*, attributions: Sequence[tuple[str, float]], base_value: float, width: int = 420) -> str:
    """Horizontal bars: each named evidence's SHAP value on the score (right raises it, left lowers it)."""
    row, label_width, pad = 22, 170, 8
    height = row * len(attributions) + 30
    span = max((abs(v) for _, v in attributions), default=1.0) or 1.0
    zero = label_width + (width - label_width - pad) / 2.0
    half = (width - label_width - pad) / 2.0 - 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape("SHAP values of the score by evidence")}">',
        f'<line x1="{_fmt(zero)}" y1="4" x2="{_fmt(zero)}" y2="{height - 22}" stroke="#64748b" stroke-width="1"/>',
    ]
    for i, (name, value) in enumerate(attributions):
        y = 6 + i * row
        length = abs(value) / span * half
        x = zero if value >= 0 else zero - length
        colour = "#dc2626" if value >= 0 else "#2563eb"
        out.append(f'<text x="{label_width - 6}" y="{y + 13}" font-size="11" text-anchor="end">{escape(name)}</text>')
        out.append(
            f'<rect x="{_fmt(x)}" y="{y + 2}" width="{_fmt(max(length, 0.5))}" height="{row - 8}" fill="{colour}">'
            f"<title>{escape(name)}: {escape(f'{value:+.1f}')} points</title></rect>"
        )
        anchor_x = zero + length + 4 if value >= 0 else zero - length - 4
        anchor = "start" if value >= 0 else "end"
        out.append(
            f'<text x="{_fmt(anchor_x)}" y="{y + 13}" font-size="10" text-anchor="{anchor}">{escape(f"{value:+.1f}")}</text>'
        )
    out.append(
        f'<text x="{label_width}" y="{height - 6}" font-size="10" fill="#64748b">'
        f"{escape(f'points of score from a typical month ({base_value:.0f})')}</text>"
    )
    out.append("</svg>")
    return "".join(out)
