"""Server-rendered SVG charts for the console (no JavaScript library, no network at run time).

Plain functions over sequences; no Django import, so they can be tested alone. Every label that
comes from data is escaped, quotes included (an attribute cannot be closed from data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SeriesChartOptions:
    """What a series chart draws besides the amounts, and its size.

    ``marked`` are indexes into the values (the anomalous points), drawn as rings in their
    ``marked_colours`` (red by default); ``current`` (an index) gets a guide line: the point the
    page is about. ``expected`` and the band (``band_low`` .. ``band_high``) run month by month.
    """

    expected: Sequence[float | None] | None = None
    band_low: Sequence[float | None] | None = None
    band_high: Sequence[float | None] | None = None
    marked: Sequence[int] = ()
    marked_colours: Sequence[str] | None = None
    current: int | None = None
    width: int = 720
    height: int = 260
    title: str = ""
    legend: bool = True


_ANOMALY_RED = "#dc2626"
_NO_DATA_SVG = '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="no data" width="0" height="0"></svg>'


def _is_amount(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))


@dataclass(frozen=True)
class _Frame:
    """The plot area and its value range: maps a month index and an amount to SVG coordinates."""

    months: int
    width: int
    height: int
    pad_left: int
    pad_right: int
    pad_top: int
    plot_w: int
    plot_h: int
    low: float
    high: float

    @classmethod
    def for_series(cls, *, months: int, values: Sequence[float | None], options: SeriesChartOptions) -> _Frame:
        pad_left, pad_right = 64, 16
        pad_top = 30 if options.title else 14
        pad_bottom = 56 if options.legend else 36
        others = _finite(options.expected or []) + _finite(options.band_low or []) + _finite(options.band_high or [])
        low, high = _value_range(values, others, options.marked)
        return cls(
            months=months,
            width=options.width,
            height=options.height,
            pad_left=pad_left,
            pad_right=pad_right,
            pad_top=pad_top,
            plot_w=options.width - pad_left - pad_right,
            plot_h=options.height - pad_top - pad_bottom,
            low=low,
            high=high,
        )

    @property
    def bottom(self) -> int:
        return self.pad_top + self.plot_h

    def x(self, i: int) -> float:
        return self.pad_left + (self.plot_w * i / (self.months - 1) if self.months > 1 else self.plot_w / 2)

    def y(self, v: float) -> float:
        return self.pad_top + self.plot_h * (1 - (min(max(v, self.low), self.high) - self.low) / (self.high - self.low))

    def off_scale(self, v: float) -> bool:
        return v < self.low or v > self.high

    def path(self, series: Sequence[float | None]) -> str:
        """An SVG path through the series; a month without an amount lifts the pen."""
        parts, pen_down = [], False
        for i, v in enumerate(series):
            if v is None or not _is_amount(v):
                pen_down = False
                continue
            parts.append(f"{'L' if pen_down else 'M'}{_fmt(self.x(i))},{_fmt(self.y(float(v)))}")
            pen_down = True
        return " ".join(parts)


def _chart_frame(frame: _Frame, title: str) -> list[str]:
    """The svg element, the plot background and the title."""
    width, height = frame.width, frame.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="series-chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title or "series chart")}" '
        'font-family="system-ui, sans-serif">',
        f'<rect x="{frame.pad_left}" y="{frame.pad_top}" width="{frame.plot_w}" height="{frame.plot_h}" '
        'fill="#fafafa" stroke="#ddd"/>',
    ]
    if title:
        out.append(f'<text x="{frame.pad_left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>')
    return out


def _axes(frame: _Frame, labels: Sequence[str]) -> list[str]:
    """Five horizontal grid lines with their amounts, and at most about twelve month labels."""
    out = []
    for k in range(5):
        v = frame.low + (frame.high - frame.low) * k / 4
        out.append(
            f'<line x1="{frame.pad_left}" x2="{frame.width - frame.pad_right}" y1="{_fmt(frame.y(v))}" '
            f'y2="{_fmt(frame.y(v))}" stroke="#eee"/>'
            f'<text x="{frame.pad_left - 6}" y="{_fmt(frame.y(v) + 4)}" font-size="10" text-anchor="end">'
            f"{escape(_compact_amount(v))}</text>"
        )
    step = max(1, math.ceil(frame.months / 12))
    for i in range(0, frame.months, step):
        out.append(
            f'<text x="{_fmt(frame.x(i))}" y="{frame.bottom + 16}" font-size="10" text-anchor="middle">'
            f"{escape(str(labels[i]))}</text>"
        )
    return out


def _current_guide(frame: _Frame, current: int | None) -> list[str]:
    if current is None or not 0 <= current < frame.months:
        return []
    return [
        f'<line class="current" x1="{_fmt(frame.x(current))}" x2="{_fmt(frame.x(current))}" y1="{frame.pad_top}" '
        f'y2="{frame.bottom}" stroke="#9ca3af" stroke-dasharray="2 3"/>'
    ]


def _band_runs(
    months: int, band_low: Sequence[float | None], band_high: Sequence[float | None]
) -> list[list[tuple[int, float, float]]]:
    """Runs of consecutive months with a band, as (month, low, high); a gap ends the run."""
    run: list[tuple[int, float, float]] = []
    runs: list[list[tuple[int, float, float]]] = []
    for i in range(months):
        lo = band_low[i] if i < len(band_low) else None
        hi = band_high[i] if i < len(band_high) else None
        if lo is not None and hi is not None and _is_amount(lo) and _is_amount(hi):
            run.append((i, float(lo), float(hi)))
        elif run:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    return runs


def _band(frame: _Frame, band_low: Sequence[float | None] | None, band_high: Sequence[float | None] | None) -> list[str]:
    """One polygon per run of months with an expected band."""
    if band_low is None or band_high is None:
        return []
    out = []
    for run in _band_runs(frame.months, band_low, band_high):
        points = [f"{_fmt(frame.x(i))},{_fmt(frame.y(hi))}" for i, _, hi in run]
        points += [f"{_fmt(frame.x(i))},{_fmt(frame.y(lo))}" for i, lo, _ in reversed(run)]
        if len(run) == 1:  # a lone month: a short bar instead of a zero-width polygon
            i, lo, hi = run[0]
            points = [
                f"{_fmt(frame.x(i) - 3)},{_fmt(frame.y(hi))}",
                f"{_fmt(frame.x(i) + 3)},{_fmt(frame.y(hi))}",
                f"{_fmt(frame.x(i) + 3)},{_fmt(frame.y(lo))}",
                f"{_fmt(frame.x(i) - 3)},{_fmt(frame.y(lo))}",
            ]
        out.append(f'<polygon class="expected-band" points="{escape(" ".join(points))}" fill="#bfdbfe" opacity="0.55"/>')
    return out


def _expected_line(frame: _Frame, expected: Sequence[float | None] | None) -> list[str]:
    """The expected values as a dashed line; a month with no neighbour to join gets a short dash."""
    if expected is None:
        return []
    out = [
        f'<path class="expected" d="{escape(frame.path(expected))}" fill="none" stroke="#2563eb" '
        'stroke-dasharray="5 3" stroke-width="1.5"/>'
    ]
    # A month with an expected value but no neighbour with one (e.g. a total checked only
    # where it failed to foot) has no line to sit on: a short dash marks it.
    for i, v in enumerate(expected):
        if v is None or not _is_amount(v):
            continue
        before = expected[i - 1] if i > 0 else None
        after = expected[i + 1] if i + 1 < len(expected) else None
        if before is None and after is None:
            out.append(
                f'<line class="expected-point" x1="{_fmt(frame.x(i) - 8)}" x2="{_fmt(frame.x(i) + 8)}" '
                f'y1="{_fmt(frame.y(float(v)))}" y2="{_fmt(frame.y(float(v)))}" stroke="#2563eb" stroke-width="2.5">'
                f"<title>expected {escape(_compact_amount(float(v)))}</title></line>"
            )
    return out


def _actual(frame: _Frame, labels: Sequence[str], values: Sequence[float | None]) -> list[str]:
    """The amounts: a solid line and a dot per month with its tooltip."""
    out = [f'<path class="actual" d="{escape(frame.path(values))}" fill="none" stroke="#111827" stroke-width="1.8"/>']
    for i, v in enumerate(values):
        if v is not None and _is_amount(v):
            out.append(
                f'<circle class="point" cx="{_fmt(frame.x(i))}" cy="{_fmt(frame.y(float(v)))}" r="2.5" fill="#111827">'
                f"<title>{escape(str(labels[i]))}: {escape(_compact_amount(float(v)))}</title></circle>"
            )
    return out


def _marked_point(frame: _Frame, *, i: int, label: str, value: float | None, colour: str, is_current: bool) -> list[str]:
    """A flagged month: a ring (a dashed vertical line when it has no amount), with its value
    written at the edge when it lies off the scale."""
    colour = escape(colour)
    if value is None or not _is_amount(value):
        return [
            f'<line class="anomaly-absent" x1="{_fmt(frame.x(i))}" x2="{_fmt(frame.x(i))}" y1="{frame.pad_top}" '
            f'y2="{frame.bottom}" stroke="{colour}" stroke-width="2" stroke-dasharray="4 3">'
            f"<title>{escape(label)}: no line</title></line>"
        ]
    amount = float(value)
    out = [
        f'<circle class="anomaly-point" cx="{_fmt(frame.x(i))}" cy="{_fmt(frame.y(amount))}" r="{7 if is_current else 6}" '
        f'fill="none" stroke="{colour}" stroke-width="{3 if is_current else 2.5}"><title>{escape(label)}: '
        f"{escape(_compact_amount(amount))}</title></circle>"
    ]
    if frame.off_scale(amount):
        above = amount > frame.high
        ty = frame.y(amount) + (14 if above else -8)
        anchor = "end" if frame.x(i) > frame.pad_left + frame.plot_w * 0.8 else "start"
        tx = frame.x(i) + (-10 if anchor == "end" else 10)
        out.append(
            f'<text class="off-scale" x="{_fmt(tx)}" y="{_fmt(ty)}" font-size="11" font-weight="bold" '
            f'fill="{colour}" text-anchor="{anchor}">{"▲" if above else "▼"} {escape(_compact_amount(amount))} '
            "(off scale)</text>"
        )
    return out


def _marked(frame: _Frame, labels: Sequence[str], values: Sequence[float | None], options: SeriesChartOptions) -> list[str]:
    colours = list(options.marked_colours or [])
    out: list[str] = []
    for j, i in enumerate(options.marked):
        if not 0 <= i < frame.months:
            continue
        colour = colours[j] if j < len(colours) else _ANOMALY_RED
        out += _marked_point(
            frame, i=i, label=str(labels[i]), value=values[i], colour=colour, is_current=i == options.current
        )
    return out


def _legend(frame: _Frame) -> str:
    return (
        f'<g class="legend" font-size="11" transform="translate({frame.pad_left},{frame.height - 14})">'
        '<line x1="0" x2="22" y1="-4" y2="-4" stroke="#111827" stroke-width="1.8"/>'
        '<text x="28" y="0">amount</text>'
        '<line x1="92" x2="114" y1="-4" y2="-4" stroke="#2563eb" stroke-width="1.5" stroke-dasharray="5 3"/>'
        '<text x="120" y="0">expected</text>'
        '<rect x="190" y="-10" width="22" height="12" fill="#bfdbfe" opacity="0.8"/>'
        '<text x="218" y="0">expected band</text>'
        f'<circle cx="330" cy="-4" r="6" fill="none" stroke="{_ANOMALY_RED}" stroke-width="2.5"/>'
        '<text x="342" y="0">flagged month</text>'
        "</g>"
    )


def series_chart_svg(
    *, labels: Sequence[str], values: Sequence[float | None], options: SeriesChartOptions | None = None
) -> str:
    """A line chart of a series with its expected value, the expected band and marked points.

    A marked index without a value (an absent posting) is a dashed vertical line. Points far
    outside the ordinary range are drawn at the edge with their value written beside them
    ("off-scale"), so one x100 posting does not flatten the rest of the series.
    """
    options = options or SeriesChartOptions()
    months = len(labels)
    if months == 0 or len(values) != months:
        return _NO_DATA_SVG
    frame = _Frame.for_series(months=months, values=values, options=options)
    out = _chart_frame(frame, options.title)
    out += _axes(frame, labels)
    out += _current_guide(frame, options.current)
    out += _band(frame, options.band_low, options.band_high)
    out += _expected_line(frame, options.expected)
    out += _actual(frame, labels, values)
    out += _marked(frame, labels, values, options)
    if options.legend:
        out.append(_legend(frame))
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
