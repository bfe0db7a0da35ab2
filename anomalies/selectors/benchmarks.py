"""Reads of the portfolio benchmarks (``cross_property_benchmarks``): the lines they are computed
from, and where one line stands among its peers (the review page).

One rule decides what is compared (``benchmark_value``): the lines of the financial statements
(balance sheet, income statement, cash flow) are amounts, compared per square foot of each
property's area (a property without an area is left out of them); rent-roll and mortgage metrics
(units, occupancy, rates, balances as reported) are compared as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anomalies.models import AnomalyDetection, CrossPropertyBenchmark
from documents.models import DocumentType
from documents.selectors import line_items_of_latest_documents

# Fewer properties than this in a group: its figures are shown but not used to place a property.
MIN_PEERS = 3
ALL_PROPERTIES = "all"
AMOUNT_DOCUMENT_TYPES = frozenset({DocumentType.BALANCE_SHEET, DocumentType.INCOME_STATEMENT, DocumentType.CASH_FLOW})


def is_amount(document_type: str) -> bool:
    return document_type in AMOUNT_DOCUMENT_TYPES


def benchmark_value(*, amount: float, document_type: str, area_sqft: int | None) -> float | None:
    """The compared value of a line: per square foot for amounts, as reported for metrics."""
    if not is_amount(document_type):
        return amount
    if not area_sqft:
        return None
    return amount / area_sqft


@dataclass(frozen=True)
class BenchmarkLine:
    property_id: int
    property_type: str
    period_id: int
    document_type: str
    account_code: str
    value: float


def benchmark_lines(*, period_ids: list[int] | None = None) -> list[BenchmarkLine]:
    """The detail lines of the latest statements as compared values (totals are not benchmarked)."""
    lines = line_items_of_latest_documents().filter(is_total=False)
    if period_ids is not None:
        lines = lines.filter(document__period_id__in=period_ids)
    found = []
    for property_id, property_type, area, period_id, document_type, code, amount in lines.values_list(
        "document__property_id",
        "document__property__property_type",
        "document__property__area_sqft",
        "document__period_id",
        "document__document_type",
        "account_code",
        "amount",
    ).order_by("document__document_type"):
        value = benchmark_value(amount=float(amount), document_type=document_type, area_sqft=area)
        if value is not None:
            found.append(BenchmarkLine(property_id, property_type or "", period_id, document_type, code, value))
    return found


@dataclass(frozen=True)
class BenchmarkPosition:
    """Where a line stands among its group's properties for its account and month."""

    group: str
    unit: str  # "per sq ft" or ""
    value: float | None
    benchmark: CrossPropertyBenchmark
    sentence: str


def _where(value: float, row: CrossPropertyBenchmark) -> str:
    if value > row.p95:
        return "above p95"
    if value > row.p90:
        return "between p90 and p95"
    if value > row.p75:
        return "between p75 and p90"
    if value >= row.p25:
        return "between p25 and p75"
    return "below p25"


def _figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def benchmark_position(*, detection: AnomalyDetection) -> BenchmarkPosition | None:
    """'office peers, per sq ft: p25 1.10, p75 1.60; this property 4.80, above p95', or why not."""
    prop = detection.property
    group = prop.property_type or ALL_PROPERTIES
    row = CrossPropertyBenchmark.objects.filter(
        account_code=detection.account_code, benchmark_period_id=detection.period_id, property_group=group
    ).first()
    if row is None:
        return None
    unit = "per sq ft" if is_amount(detection.document_type) else ""
    value = (
        None
        if detection.field_value is None
        else benchmark_value(
            amount=float(detection.field_value), document_type=detection.document_type, area_sqft=prop.area_sqft
        )
    )
    peers = f"{prop.get_property_type_display().lower() if prop.property_type else 'all'} peers"
    if row.property_count < MIN_PEERS:
        sentence = (
            f"Only {row.property_count} {peers.replace(' peers', '')} propert"
            f"{'y reports' if row.property_count == 1 else 'ies report'} this account this month: "
            f"too few to compare (at least {MIN_PEERS} needed)."
        )
        return BenchmarkPosition(group, unit, value, row, sentence)
    head = f"{peers}{', ' + unit if unit else ''}: p25 {_figure(row.p25)}, p75 {_figure(row.p75)}"
    if value is None:
        tail = "this property has no area to compare per sq ft" if unit and not prop.area_sqft else "no amount"
    else:
        tail = f"this property {_figure(value)}, {_where(value, row)}"
    sentence = f"{head[0].upper()}{head[1:]}; {tail} ({row.property_count} properties)."
    return BenchmarkPosition(group, unit, value, row, sentence)


def benchmark_summary() -> dict[str, Any]:
    """How many benchmark rows there are, and when they were last computed (dashboard, command)."""
    latest = CrossPropertyBenchmark.objects.order_by("-computed_at").values_list("computed_at", flat=True).first()
    return {"rows": CrossPropertyBenchmark.objects.count(), "computed_at": latest}
