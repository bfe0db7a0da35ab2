"""Reads for the API, the admin and the export command: detections, their source box, selection logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from anomalies.models import AnomalyDetection, ModelSelectionLog
from documents.models import ChartOfAccount, PDFFieldCoordinate
from documents.selectors import documents_latest


def account_name_expression(*, line_item: str = "line_item", account_code: str = "account_code") -> Coalesce:
    """The account name shown beside a code: the line's own name as its statement printed it, or
    (a missing line has no line item) the chart of accounts' name for the code. ``line_item`` and
    ``account_code`` are the paths from the queried model to its LineItem and its account code."""
    chart = ChartOfAccount.objects.filter(account_code=OuterRef(account_code)).values("account_name")[:1]
    return Coalesce(f"{line_item}__account_name", Subquery(chart), Value(""))


def anomaly_list(*, user: Any, flagged_only: bool = True) -> QuerySet[AnomalyDetection]:
    qs = (
        AnomalyDetection.objects.visible_to(user)
        .select_related("property", "period")
        .annotate(account_name=account_name_expression())
    )
    if flagged_only:
        qs = qs.filter(is_anomaly=True)
    return qs


def anomaly_get(*, anomaly_id: int, user: Any) -> AnomalyDetection | None:
    return (
        AnomalyDetection.objects.visible_to(user)
        .select_related("property", "period", "line_item", "document")
        .annotate(account_name=account_name_expression())
        .prefetch_related("explanations")
        .filter(id=anomaly_id)
        .first()
    )


def line_coordinates(*, detection: AnomalyDetection) -> dict | None:
    """Where the line's amount was read from in its PDF, when it came from one."""
    line = detection.line_item
    if line is None:
        return None
    if line.page_number is not None and line.x0 is not None:
        return {
            "page_number": line.page_number,
            "x0": line.x0,
            "y0": line.y0,
            "x1": line.x1,
            "y1": line.y1,
            "extraction_confidence": line.extraction_confidence,
        }
    coordinates = list(
        PDFFieldCoordinate.objects.filter(document_id=detection.document_id, table_name="line_items", record_id=line.id)
    )
    if not coordinates:
        return None
    # The amount's own box when it was recorded, else the first field of the line.
    coordinate = min(coordinates, key=lambda c: (c.field_name != "amount", c.id))
    return {
        "page_number": coordinate.page_number,
        "x0": coordinate.x0,
        "y0": coordinate.y0,
        "x1": coordinate.x1,
        "y1": coordinate.y1,
        "extraction_confidence": coordinate.confidence,
    }


def selection_log_list(*, user: Any) -> QuerySet[ModelSelectionLog]:
    return ModelSelectionLog.objects.visible_to(user).select_related("property")


EXPORT_COLUMNS = (
    "property_code",
    "document_type",
    "period",
    "account_code",
    "amount",
    "expected_value",
    "anomaly_score",
    "severity",
    "is_anomaly",
    "detector",
)


def export_rows(*, all_lines: bool = False, chunk_size: int = 2000) -> Iterator[tuple]:
    """Rows of the export (DESIGN §5) streamed with a server-side cursor, latest versions only."""
    qs = AnomalyDetection.objects.filter(document_id__in=documents_latest().order_by().values("id"))
    if not all_lines:
        qs = qs.filter(is_anomaly=True)
    rows = qs.order_by("property__code", "document_type", "period__ordinal", "account_code").values_list(
        "property__code",
        "document_type",
        "period__year",
        "period__month",
        "account_code",
        "field_value",
        "expected_value",
        "anomaly_score",
        "severity",
        "is_anomaly",
        "detector",
    )
    for code, doc_type, year, month, account, amount, expected, score, severity, flagged, detector in rows.iterator(
        chunk_size=chunk_size
    ):
        yield (
            code,
            doc_type,
            f"{year:04d}-{month:02d}",
            account,
            amount,
            expected,
            score,
            severity,
            flagged,
            detector,
        )


def selection_source_counts(*, user: Any) -> dict[str, int]:
    """Selections of ``user``'s properties by where their candidates came from, and LLM answers
    discarded (one query).

    A discarded answer is counted once, where it was received; series that reused it from the
    cache (llm_error starting "cached:") are not counted again.
    """
    counts = ModelSelectionLog.objects.visible_to(user).aggregate(
        llm=Count("id", filter=Q(selection_source="llm")),
        cache=Count("id", filter=Q(selection_source="cache")),
        rules=Count("id", filter=Q(selection_source="rules")),
        llm_discarded=Count("id", filter=~Q(llm_error="") & ~Q(llm_error__startswith="cached:")),
    )
    return {k: int(v or 0) for k, v in counts.items()}
