"""Reads of the anomalies app: the detection input loaded from the database, and list queries.

The detection input is the engine's columnar :class:`LineTable`. It is built from one
``values_list`` query over ``line_items`` joined to the latest document versions, so that a chunk of
documents costs a handful of queries whatever its number of lines:

1. the target documents (id, property, type, period, version flags);
2. every line of the latest versions of *every* document of those documents' properties, over all
   periods and document types (the engine compares a point with both sides of its history and the
   same month of other years, and reconciles a property's statements with each other): the
   context of a document is its whole property, whatever else the chunk holds;
3. the peers: not rows of other properties but the portfolio-wide :class:`PeerStats` aggregate
   (per document type, account and period: properties reporting and posting, quantiles of the
   scale-free level), computed from one query over every latest line of the portfolio and kept
   in memory while the portfolio's latest documents do not change (``portfolio_peer_stats``).
   A document's detections then never depend on which other documents share its chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Count, Max, Min, Q, QuerySet, Sum

from anomalies.detection.peers import PeerStats, peer_stats_from_columns
from anomalies.detection.table import LineTable
from anomalies.models import AnomalyDetection, AnomalyFeedback, ModelSelectionLog
from documents.models import DocumentUpload, ExtractionStatus, LineItem, PDFFieldCoordinate, Property
from kernel.periods import label_from_ordinal

# Kept for peer_property_ids (a listing helper); detection no longer loads peer rows.
PEER_PROPERTY_COUNT = 3

_LINE_COLUMNS = (
    "id",
    "document_id",
    "document__property_id",
    "document__property__property_type",
    "document__document_type",
    "document__period__ordinal",
    "document__period_id",
    "account_code",
    "amount",
    "is_total",
    "row_order",
)


@dataclass(frozen=True)
class TargetDocument:
    id: int
    property_id: int
    document_type: str
    period_id: int
    period_ordinal: int
    is_latest: bool
    extraction_status: str


@dataclass
class DetectionInput:
    """A LineTable plus what the writer needs to turn the engine's rows back into database rows.

    Row ``i`` of ``table`` is line item ``table.line_ids[i]`` of document ``document_ids[i]``;
    ``amounts`` keeps the exact Decimal amounts (the table holds floats).
    """

    table: LineTable
    document_ids: np.ndarray
    period_ids: np.ndarray
    amounts: list[Decimal]
    targets: dict[int, TargetDocument]
    property_codes: dict[int, str] = field(default_factory=dict)
    peers: PeerStats | None = None  # portfolio-wide peer evidence for the engine

    @property
    def n_rows(self) -> int:
        return self.table.n_rows

    def target_rows(self) -> np.ndarray:
        """Indices of the rows that belong to the target documents."""
        if not self.targets:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(np.isin(self.document_ids, np.fromiter(self.targets, dtype=np.int64)))


def _latest_lines() -> QuerySet[LineItem]:
    return LineItem.objects.filter(document__is_latest=True).exclude(document__extraction_status=ExtractionStatus.FAILED)


def _table_from_rows(rows: Sequence[tuple]) -> tuple[LineTable, np.ndarray, np.ndarray, list[Decimal]]:
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(_LINE_COLUMNS)
    (line_ids, doc_ids, prop_ids, prop_types, doc_types, ordinals, period_ids, accounts, amounts, totals, orders) = cols
    table = LineTable.from_columns(
        line_ids=line_ids,
        property_ids=prop_ids,
        property_types=[t or "" for t in prop_types],
        document_types=doc_types,
        account_codes=accounts,
        periods=ordinals,
        amounts=amounts,
        is_total=totals,
        row_order=orders,
    )
    return (
        table,
        np.asarray(doc_ids, dtype=np.int64),
        np.asarray(period_ids, dtype=np.int64),
        list(amounts),
    )


def target_documents_get(*, document_ids: Iterable[int]) -> dict[int, TargetDocument]:
    """The given documents that exist, keyed by id (one query)."""
    ids = sorted({int(i) for i in document_ids})
    rows = DocumentUpload.objects.filter(id__in=ids).values_list(
        "id", "property_id", "document_type", "period_id", "period__ordinal", "is_latest", "extraction_status"
    )
    return {r[0]: TargetDocument(*r) for r in rows}


def peer_property_ids(*, property_ids: Sequence[int], limit: int = PEER_PROPERTY_COUNT) -> list[int]:
    """Up to ``limit`` other properties to compare with, same property type first, then by id."""
    own = set(property_ids)
    types = set(Property.objects.filter(id__in=own).values_list("property_type", flat=True))
    candidates = Property.objects.exclude(id__in=own).values_list("id", "property_type").order_by("id")
    same = [pid for pid, ptype in candidates if ptype in types]
    other = [pid for pid, ptype in candidates if ptype not in types]
    return (same + other)[:limit]


def _portfolio_fingerprint() -> tuple[int, int, int]:
    """Changes whenever the set of latest, not failed, documents changes (a new version, a new
    document, a deletion, a failed extraction): (count, max id, sum of ids), one query."""
    agg = (
        DocumentUpload.objects.filter(is_latest=True)
        .exclude(extraction_status=ExtractionStatus.FAILED)
        .aggregate(n=Count("id"), top=Max("id"), total=Sum("id"))
    )
    return int(agg["n"] or 0), int(agg["top"] or 0), int(agg["total"] or 0)


_PEER_STATS: dict[tuple[int, int, int], PeerStats] = {}


def portfolio_peer_stats() -> PeerStats:
    """Peer statistics of the whole portfolio (every latest line), for every detection call.

    Computed from one query over the non-total lines of the latest documents and kept in memory
    under the portfolio's fingerprint, so a batch job's chunks share one computation and any
    import (a new version changes the fingerprint) is seen by the next chunk.
    """
    key = _portfolio_fingerprint()
    stats = _PEER_STATS.get(key)
    if stats is None:
        rows = list(
            _latest_lines()
            .filter(is_total=False)
            .values_list(
                "document__property_id", "document__document_type", "account_code", "document__period__ordinal", "amount"
            )
        )
        cols = list(zip(*rows, strict=True)) if rows else [()] * 5
        stats = peer_stats_from_columns(
            property_ids=cols[0], document_types=cols[1], account_codes=cols[2], periods=cols[3], amounts=cols[4]
        )
        _PEER_STATS.clear()
        _PEER_STATS[key] = stats
    return stats


def detection_input_for_documents(*, document_ids: Sequence[int], peer_limit: int = 0) -> DetectionInput:
    """The engine input for a chunk of documents: every latest document of their properties (all
    periods, all document types) as context, and the portfolio's peer statistics.

    Documents that are not the latest version of their (property, type, period) or whose
    extraction failed are kept in ``targets`` (the caller reports them as skipped) but add nothing
    to the table. ``peer_limit`` is ignored (peers come from the portfolio aggregate).
    """
    del peer_limit
    targets = target_documents_get(document_ids=document_ids)
    live = [t for t in targets.values() if t.is_latest and t.extraction_status != ExtractionStatus.FAILED]
    if not live:
        table, doc_ids, period_ids, amounts = _table_from_rows([])
        return DetectionInput(table, doc_ids, period_ids, amounts, targets)
    property_ids = sorted({t.property_id for t in live})
    rows = list(_latest_lines().filter(document__property_id__in=property_ids).order_by("id").values_list(*_LINE_COLUMNS))
    table, doc_ids, period_ids, amounts = _table_from_rows(rows)
    return DetectionInput(table, doc_ids, period_ids, amounts, targets, peers=portfolio_peer_stats())


def detection_input_for_properties(*, property_ids: Sequence[int], peer_limit: int = 0) -> DetectionInput:
    """The engine input for whole properties (every latest document is a target), with the
    portfolio's peer statistics. ``peer_limit`` is ignored (see detection_input_for_documents)."""
    del peer_limit
    rows = list(_latest_lines().filter(document__property_id__in=property_ids).order_by("id").values_list(*_LINE_COLUMNS))
    targets = target_documents_get(document_ids={r[1] for r in rows})
    table, doc_id_arr, period_ids, amounts = _table_from_rows(rows)
    return DetectionInput(table, doc_id_arr, period_ids, amounts, targets, peers=portfolio_peer_stats())


def document_ids_for_detection(
    *,
    property_ids: Sequence[int] | None = None,
    since_ordinal: int | None = None,
    until_ordinal: int | None = None,
) -> QuerySet[DocumentUpload]:
    """Latest, not failed, documents in scope, ordered as chunks should be formed (DESIGN §9)."""
    qs = DocumentUpload.objects.filter(is_latest=True).exclude(extraction_status=ExtractionStatus.FAILED)
    if property_ids is not None:
        qs = qs.filter(property_id__in=property_ids)
    if since_ordinal is not None:
        qs = qs.filter(period__ordinal__gte=since_ordinal)
    if until_ordinal is not None:
        qs = qs.filter(period__ordinal__lte=until_ordinal)
    return qs.order_by("property_id", "document_type", "period__ordinal")


def feedback_for_series(*, pairs: Iterable[tuple[int, str]]) -> list[AnomalyFeedback]:
    """Every feedback row on the given (property, document type) pairs, oldest first (one query)."""
    pairs = list(pairs)
    if not pairs:
        return []
    condition = Q()
    for property_id, document_type in pairs:
        condition |= Q(property_id=property_id, document_type=document_type)
    return list(AnomalyFeedback.objects.filter(condition).select_related("period").order_by("updated_at", "id"))


# --- List queries for the API, admin and commands ----------------------------------------------


def anomaly_list(*, user: Any, flagged_only: bool = True) -> QuerySet[AnomalyDetection]:
    qs = AnomalyDetection.objects.visible_to(user).select_related("property", "period")
    if flagged_only:
        qs = qs.filter(is_anomaly=True)
    return qs


def anomaly_get(*, anomaly_id: int, user: Any) -> AnomalyDetection | None:
    return (
        AnomalyDetection.objects.visible_to(user)
        .select_related("property", "period", "line_item", "document")
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
    qs = AnomalyDetection.objects.filter(document__is_latest=True)
    if not all_lines:
        qs = qs.filter(is_anomaly=True)
    qs = qs.order_by("property__code", "document_type", "period__ordinal", "account_code").values_list(
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
    for code, doc_type, year, month, account, amount, expected, score, severity, flagged, detector in qs.iterator(
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


# --- The analyst console: an anomaly's series, its source in the PDF, a property's heatmap -------


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
        _latest_lines()
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
            document__is_latest=True,
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
    bounds = DocumentUpload.objects.filter(property_id=property_id, is_latest=True).aggregate(
        first=Min("period__ordinal"), last=Max("period__ordinal")
    )
    if bounds["first"] is None:
        return PropertyHeatmap([], [], {})
    flagged = AnomalyDetection.objects.filter(
        property_id=property_id, is_anomaly=True, document__is_latest=True
    ).values_list("document_type", "account_code", "period__ordinal", "anomaly_score", "severity", "status", "id")
    grid: dict[tuple[str, str], dict[int, HeatmapCell]] = {}
    for doc_type, account, ordinal, score, severity, status, det_id in flagged:
        cells = grid.setdefault((doc_type, account), {})
        if ordinal not in cells or cells[ordinal].score < score:
            cells[ordinal] = HeatmapCell(det_id, score, severity, status)
    first, last = bounds["first"], bounds["last"]
    rows = sorted(grid)
    cells = {
        (i, ordinal - first): cell
        for i, key in enumerate(rows)
        for ordinal, cell in grid[key].items()
        if first <= ordinal <= last
    }
    return PropertyHeatmap(rows, [label_from_ordinal(o) for o in range(first, last + 1)], cells)
