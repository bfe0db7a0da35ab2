"""Financial periods as text and as ordinals: the one place that parses and formats them.

A period is a calendar month, written ``YYYY-MM``; its ordinal is ``year * 12 + month - 1``
(``FinancialPeriod.ordinal``, the detection engine's period index), so ranges and gaps are
integer arithmetic. No Django import: the parsers and the numeric code use it too.
"""

from __future__ import annotations

import re

# ASCII digits only: str.isdigit() and \d accept other scripts' digits ('２０２４').
PERIOD_RE = re.compile(r"\A([0-9]{4})-([0-9]{2})\Z")
EARLIEST_YEAR = 1900


def parse_period(text: str) -> tuple[int, int]:
    """'2024-03' -> (2024, 3); ValueError with a readable reason otherwise."""
    match = PERIOD_RE.match(str(text).strip())
    if not match:
        raise ValueError(f"bad period {text!r} (expected YYYY-MM)")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise ValueError(f"bad period {text!r} (month must be 01-12)")
    if year < EARLIEST_YEAR:
        raise ValueError(f"bad period {text!r} (year before {EARLIEST_YEAR})")
    return year, month


def period_ordinal(year: int, month: int) -> int:
    return year * 12 + month - 1


def ordinal_from_label(text: str) -> int:
    """'2024-03' -> its ordinal; ValueError like parse_period."""
    return period_ordinal(*parse_period(text))


def label_from_ordinal(ordinal: int) -> str:
    ordinal = int(ordinal)
    return f"{ordinal // 12:04d}-{ordinal % 12 + 1:02d}"
