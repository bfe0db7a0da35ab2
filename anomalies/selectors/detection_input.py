"""The detection input of a chunk of documents, loaded from the database.

The detection input is the engine's columnar :class:`LineTable`. It is built from one
``values_list`` query over ``line_items`` joined to the latest document versions, so that a chunk of
documents costs a handful of queries whatever its number of lines:

1. the target documents (id, property, type, period, version flags): ``target_documents_get``;
2. every line of the latest versions of *every* document of a target's property, over all
   periods and document types (the engine compares a point with both sides of its history and the
   same month of other years, and reconciles a property's statements with each other): the
   context of a document is its whole property, whatever else the chunk holds
   (``property_lines_get``); ``property_data_versions`` says, in two queries, whether a
   property's lines or verdicts changed since they were last loaded;
3. the peers: not rows of other properties but the portfolio-wide :class:`PeerStats` aggregate
   (per document type, account and period: properties reporting and posting, quantiles of the
   scale-free level), computed from one query over every latest line of the portfolio and kept
   in memory while the portfolio's latest documents do not change (``portfolio_peer_stats``).
   A document's detections then never depend on which other documents share its chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Count, Max, Sum

from anomalies.detection.peers import PeerStats, peer_stats_from_columns
from anomalies.detection.table import LineTable
from anomalies.models import AnomalyFeedback, FeedbackType
from documents.models import DocumentUpload, ExtractionStatus, Property
from documents.selectors import documents_latest, line_items_of_latest_documents

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

    @property
    def is_live(self) -> bool:
        """The latest version of its document, with lines to detect on."""
        return self.is_latest and self.extraction_status != ExtractionStatus.FAILED


@dataclass
class DetectionInput:
    """Every latest line of one property as the engine's LineTable, plus what the writer needs to
    turn the engine's rows back into database rows.

    Row ``i`` of ``table`` is line item ``table.line_ids[i]`` of document ``document_ids[i]``;
    ``amounts`` keeps the exact Decimal amounts (the table holds floats).
    """

    table: LineTable
    document_ids: np.ndarray
    period_ids: np.ndarray
    amounts: list[Decimal]
    peers: PeerStats | None = None  # portfolio-wide peer evidence for the engine

    @property
    def n_rows(self) -> int:
        return self.table.n_rows

    def rows_of_documents(self, document_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The table rows of each of these documents that has any."""
        order = np.argsort(self.document_ids, kind="stable")
        sorted_docs = self.document_ids[order]
        rows: dict[int, np.ndarray] = {}
        for doc_id in document_ids:
            lo, hi = np.searchsorted(sorted_docs, [doc_id, doc_id + 1])
            if lo < hi:
                rows[int(doc_id)] = order[lo:hi]
        return rows


@dataclass(frozen=True)
class PropertyDataVersion:
    """Changes whenever what detection reads of a property changes: its latest, not failed,
    documents (a new version or document, a failed extraction), the property itself (its type),
    its analysts' verdicts, or the portfolio's peer statistics."""

    documents: tuple[int, int, int]  # count, max id, sum of ids
    property_updated_at: Any
    feedback: tuple[int, int, Any]  # count, max id, latest update
    portfolio: tuple[int, int, int]


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


def _portfolio_fingerprint() -> tuple[int, int, int]:
    """Changes whenever the set of latest, not failed, documents changes (a new version, a new
    document, a deletion, a failed extraction): (count, max id, sum of ids), one query."""
    agg = documents_latest().order_by().aggregate(n=Count("id"), top=Max("id"), total=Sum("id"))
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
            line_items_of_latest_documents()
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


def property_lines_get(*, property_id: int) -> DetectionInput:
    """Every latest, not failed, line of the property (all periods, all document types) and the
    portfolio's peer statistics: the engine input of any chunk of the property's documents."""
    rows = list(
        line_items_of_latest_documents().filter(document__property_id=property_id).order_by("id").values_list(*_LINE_COLUMNS)
    )
    table, doc_ids, period_ids, amounts = _table_from_rows(rows)
    return DetectionInput(table, doc_ids, period_ids, amounts, peers=portfolio_peer_stats())


def property_data_versions(*, property_ids: Iterable[int]) -> dict[int, PropertyDataVersion]:
    """The data version of each property (three queries, and the portfolio's fingerprint)."""
    ids = sorted(set(property_ids))
    documents = {
        pid: (n, top, total)
        for pid, n, top, total in documents_latest(property_ids=ids)
        .order_by()
        .values("property_id")
        .annotate(n=Count("id"), top=Max("id"), total=Sum("id"))
        .values_list("property_id", "n", "top", "total")
    }
    properties = dict(Property.objects.filter(id__in=ids).values_list("id", "updated_at"))
    feedback = {
        pid: (n, top, updated)
        for pid, n, top, updated in AnomalyFeedback.objects.filter(property_id__in=ids)
        .values("property_id")
        .order_by()
        .annotate(n=Count("id"), top=Max("id"), updated=Max("updated_at"))
        .values_list("property_id", "n", "top", "updated")
    }
    portfolio = _portfolio_fingerprint()
    return {
        pid: PropertyDataVersion(documents.get(pid, (0, 0, 0)), updated, feedback.get(pid, (0, 0, None)), portfolio)
        for pid, updated in properties.items()
    }


def feedback_for_property(*, property_id: int) -> list[AnomalyFeedback]:
    """Every verdict on the property's lines, oldest first (one query)."""
    return list(
        AnomalyFeedback.objects.filter(property_id=property_id).select_related("period", "user").order_by("updated_at", "id")
    )


def verdicts_for_learning(
    *, document_types: Iterable[str], account_codes: Iterable[str], anomaly_types: Iterable[str], since: datetime
) -> list[tuple[Any, ...]]:
    """Verdicts across the portfolio on these accounts and kinds given since ``since``, oldest first (one query).

    Each row: (id, property, document type, account, period ordinal, amount seen, is_anomaly,
    anomaly type seen, model score seen, updated_at, still_seen) where still_seen says the
    verdict's detection still exists with the amount the analyst saw.
    """
    rows = (
        AnomalyFeedback.objects.filter(
            document_type__in=set(document_types),
            account_code__in=set(account_codes),
            anomaly_type__in=set(anomaly_types),
            updated_at__gte=since,
        )
        .exclude(feedback_type=FeedbackType.NEW_NORMAL)
        .order_by("updated_at", "id")
        .values_list(
            "id",
            "property_id",
            "document_type",
            "account_code",
            "period__ordinal",
            "field_value",
            "is_anomaly",
            "anomaly_type",
            "model_score",
            "updated_at",
            "anomaly_id",
            "anomaly__field_value",
        )
    )
    return [(*row[:10], row[10] is not None and row[11] == row[5]) for row in rows]
