"""Reads of the analyst console: an anomaly's series, its source in the PDF, a property's heatmap."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Max, Min

from anomalies.models import AnomalyDetection
from anomalies.selectors.listing import account_name_expression
from documents.models import PDFFieldCoordinate
from documents.selectors import documents_latest, line_items_of_latest_documents
from kernel.periods import label_from_ordinal


@dataclass(frozen=True)
class SeriesPoint:
    """One period of a (property, document type, account) series, latest document versions.

    ``amount`` is the line's amount (None: no line that month); the other fields come from the
    period's stored detection, when the line was scored.
    """

    ordinal: int
    label: str
    amount: float | None
    expected: float | None = None
    z_score: float | None = None
    anomaly_score: float | None = None
    threshold: float | None = None
    is_anomaly: bool = False
    severity: str = ""
    status: str = ""
    detection_id: int | None = None


def anomaly_series(*, detection: AnomalyDetection) -> list[SeriesPoint]:
    """Every period of the detection's series from its first to its last, gaps included (two queries).

    Amounts come from the line items of the latest versions; expected values, scores and flags from
    the detections stored for those versions. A month without a document is a point without values,
    so that the x axis stays one month per step.
    """
    amounts = dict(
        line_items_of_latest_documents()
        .filter(
            document__property_id=detection.property_id,
            document__document_type=detection.document_type,
            account_code=detection.account_code,
        )
        .values_list("document__period__ordinal", "amount")
    )
    scored = {
        row[0]: row[1:]
        for row in AnomalyDetection.objects.filter(
            property_id=detection.property_id,
            document_type=detection.document_type,
            account_code=detection.account_code,
            document_id__in=documents_latest(property_ids=[detection.property_id]).order_by().values("id"),
        ).values_list(
            "period__ordinal",
            "expected_value",
            "z_score",
            "anomaly_score",
            "threshold",
            "is_anomaly",
            "severity",
            "status",
            "id",
            "field_value",
        )
    }
    ordinals = set(amounts) | set(scored)
    if not ordinals:
        return []
    points = []
    for ordinal in range(min(ordinals), max(ordinals) + 1):
        amount = amounts.get(ordinal)
        if ordinal not in scored:
            points.append(SeriesPoint(ordinal, label_from_ordinal(ordinal), _float(amount)))
            continue
        expected, z, score, threshold, flagged, severity, status, det_id, field_value = scored[ordinal]
        points.append(
            SeriesPoint(
                ordinal=ordinal,
                label=label_from_ordinal(ordinal),
                amount=_float(amount if amount is not None else field_value),
                expected=_float(expected),
                z_score=z,
                anomaly_score=score,
                threshold=threshold,
                is_anomaly=flagged,
                severity=severity,
                status=status,
                detection_id=det_id,
            )
        )
    return points


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def detection_source_boxes(*, detection: AnomalyDetection) -> list[dict]:
    """Where the line was read in its PDF: one box per recorded field, the amount first (one query).

    Each box: field, page_number, x0, y0, x1, y1 (PDF points), matched_text, confidence, method.
    When only the line item carries a box (no coordinate rows), that box is returned alone.
    """
    if detection.line_item_id is None:
        return []
    rows = PDFFieldCoordinate.objects.filter(
        document_id=detection.document_id, table_name="line_items", record_id=detection.line_item_id
    ).order_by("page_number", "id")
    boxes = [
        {
            "field": c.field_name,
            "page_number": c.page_number,
            "x0": c.x0,
            "y0": c.y0,
            "x1": c.x1,
            "y1": c.y1,
            "matched_text": c.matched_text,
            "confidence": c.confidence,
            "method": c.extraction_method,
        }
        for c in rows
    ]
    if boxes:
        return sorted(boxes, key=lambda b: b["field"] != "amount")
    line = detection.line_item
    if line is not None and line.page_number is not None and line.x0 is not None:
        return [
            {
                "field": "line",
                "page_number": line.page_number,
                "x0": line.x0,
                "y0": line.y0,
                "x1": line.x1,
                "y1": line.y1,
                "matched_text": "",
                "confidence": line.extraction_confidence,
                "method": "",
            }
        ]
    return []


@dataclass(frozen=True)
class HeatmapCell:
    detection_id: int
    score: float
    severity: str
    status: str


@dataclass
class PropertyHeatmap:
    """Flagged detections of one property by series (rows) and month (columns)."""

    rows: list[tuple[str, str]]  # (document_type, account_code)
    account_names: dict[tuple[str, str], str]  # row -> the account's name
    periods: list[str]  # YYYY-MM, every month from the property's first document to its last
    cells: dict[tuple[int, int], HeatmapCell]

    @property
    def is_empty(self) -> bool:
        return not self.cells


def property_anomaly_heatmap(*, property_id: int) -> PropertyHeatmap:
    """The flagged detections of a property's latest documents on an account x month grid (two queries).

    Rows are the series with at least one flagged month, by document type then account; a cell
    holds the highest score of that series and month (one detection per line and version).
    """
    latest = documents_latest(property_ids=[property_id]).order_by()
    bounds = latest.aggregate(first=Min("period__ordinal"), last=Max("period__ordinal"))
    if bounds["first"] is None:
        return PropertyHeatmap([], {}, [], {})
    flagged = (
        AnomalyDetection.objects.filter(property_id=property_id, is_anomaly=True, document_id__in=latest.values("id"))
        .annotate(account_name=account_name_expression())
        .values_list(
            "document_type", "account_code", "period__ordinal", "anomaly_score", "severity", "status", "id", "account_name"
        )
    )
    grid: dict[tuple[str, str], dict[int, HeatmapCell]] = {}
    names: dict[tuple[str, str], str] = {}
    for doc_type, account, ordinal, score, severity, status, det_id, name in flagged:
        names.setdefault((doc_type, account), name)
        cells = grid.setdefault((doc_type, account), {})
        if ordinal not in cells or cells[ordinal].score < score:
            cells[ordinal] = HeatmapCell(det_id, score, severity, status)
    first, last = bounds["first"], bounds["last"]
    rows = sorted(grid)
    by_position = {
        (i, ordinal - first): cell
        for i, key in enumerate(rows)
        for ordinal, cell in grid[key].items()
        if first <= ordinal <= last
    }
    return PropertyHeatmap(rows, names, [label_from_ordinal(o) for o in range(first, last + 1)], by_position)
