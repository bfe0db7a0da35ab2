"""The detections of a chunk written to the database in one transaction, only what changed.

A pass computes every row of its documents; most are what the database already holds (a rerun
over unchanged inputs: all of them). The writer reads the stored rows of the chunk's documents
in one query, compares them column by column with the new ones, and writes plain tuples with
``executemany``: inserts for new lines, updates for changed ones, deletes for lines no longer
scored and for the rows of older versions of the same documents. Nothing goes through model
instances, so 48,000 rows cost what their changed values cost, not 1.2 million prepared fields.
Rows keep their id across passes (links to an anomaly stay valid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, transaction

from anomalies.detection.scoring import FLAG_SCORE
from anomalies.models import (
    AnomalyDetection,
    AnomalyExplanation,
    AnomalyFeedback,
    AnomalyType,
    Direction,
    ModelSelectionLog,
    Severity,
)
from anomalies.selectors import TargetDocument
from anomalies.services.results import ScoredLine
from documents.models import DocumentUpload

# The result columns of a detection row, compared and written in this order.
RESULT_COLUMNS = (
    "line_item_id",
    "property_id",
    "document_type",
    "period_id",
    "field_value",
    "expected_value",
    "z_score",
    "percentage_change",
    "anomaly_type",
    "severity",
    "confidence",
    "anomaly_score",
    "threshold",
    "is_anomaly",
    "direction",
    "detector",
    "model_key",
    "model_version",
    "contributions",
    "explanation_text",
    "status",
)
_CONTRIBUTIONS = RESULT_COLUMNS.index("contributions")
# The explanation fields that say something (its timing and creation time do not).
EXPLANATION_COLUMNS = ("summary", "root_cause_type", "contributing_factors", "suggested_actions", "explanation_method")

_ANOMALY_TYPES = frozenset(AnomalyType.values)
_SEVERITIES = frozenset(Severity.values)
_DIRECTIONS = frozenset(Direction.values)


class UnknownValueError(ValueError):
    """The engine returned a value the database's vocabulary does not have (a bug, not data)."""


@dataclass
class PlannedRow:
    """A detection row to write (its natural key and result columns), the engine's line it came
    from, and the verdict applied to it."""

    document_id: int
    account_code: str
    values: tuple  # RESULT_COLUMNS
    scored: ScoredLine
    feedback: AnomalyFeedback | None

    def same_as(self, stored: tuple) -> bool:
        """The stored row says what this one says (JSON read back has lists where we had tuples)."""
        if stored == self.values:
            return True
        shaped = list(self.values)
        shaped[_CONTRIBUTIONS] = _json_shaped(shaped[_CONTRIBUTIONS])
        return stored == tuple(shaped)

    @property
    def is_anomaly(self) -> bool:
        return self.values[RESULT_COLUMNS.index("is_anomaly")]

    @property
    def severity(self) -> str:
        return self.values[RESULT_COLUMNS.index("severity")]

    @property
    def detector(self) -> str:
        return self.values[RESULT_COLUMNS.index("detector")]


@dataclass
class WriteCounts:
    """Rows the writer touched: no result row for a rerun over unchanged inputs."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    explanations: int = 0  # explanation rows deleted or written
    selection_logs: int = 0

    @property
    def rows_written(self) -> int:
        """Result rows (detections, explanations); selection logs record training, not results."""
        return self.inserted + self.updated + self.deleted + self.explanations


def _decimal(value: float | None) -> Decimal | None:
    if value is None or not np.isfinite(value):
        return None
    if abs(value) >= 1e16:  # outside max_digits=18, decimal_places=2
        return None
    return Decimal(str(round(float(value), 2)))


def _known(value: str, allowed: frozenset[str], name: str, line: ScoredLine) -> str:
    if value not in allowed:
        raise UnknownValueError(f"unknown {name} {value!r} for account {line.account_code} of document {line.document_id}")
    return value


def _json_shaped(value: Any) -> Any:
    """The value as the database gives it back (tuples become lists, numpy floats plain floats)."""
    return json.loads(json.dumps(value))


def planned_row(*, target: TargetDocument, line: ScoredLine, status: str, feedback: AnomalyFeedback | None) -> PlannedRow:
    """The detection row of a scored line, in RESULT_COLUMNS order."""
    score = min(max(float(line.anomaly_score), 0.0), 100.0)
    values = (
        line.line_item_id,
        target.property_id,
        target.document_type,
        target.period_id,
        line.amount,
        _decimal(line.expected_value),
        line.z_score,
        line.percentage_change,
        _known(line.anomaly_type, _ANOMALY_TYPES, "anomaly type", line),
        _known(line.severity, _SEVERITIES, "severity", line),
        # The engine gives no separate confidence: the calibrated score read as a probability.
        round(score / 100.0, 4),
        score,
        None if line.insufficient_history else FLAG_SCORE,
        bool(line.is_anomaly),
        _known(line.direction, _DIRECTIONS, "direction", line),
        line.detector,
        line.model_key or "",
        line.model_version or "",
        line.contributions,
        line.explanation_text or "",
        status,
    )
    return PlannedRow(line.document_id, line.account_code, values, line, feedback)


# Column of each attribute (``line_item_id`` -> ``line_item_id``, ``property_id`` -> its FK column).
_COLUMN_OF: dict[str, str] = {f.attname: f.column for f in AnomalyDetection._meta.concrete_fields if f.column}


def _column(name: str) -> str:
    return connection.ops.quote_name(_COLUMN_OF[name])


def _placeholder(name: str) -> str:
    return "%s::jsonb" if name == "contributions" and connection.vendor == "postgresql" else "%s"


def _db_values(values: tuple) -> list[Any]:
    out = list(values)
    out[_CONTRIBUTIONS] = json.dumps(out[_CONTRIBUTIONS])
    return out


def _insert(rows: list[PlannedRow], stamp: Any) -> None:
    columns = ("document_id", "account_code", *RESULT_COLUMNS, "detected_at", "updated_at")
    # Identifiers come from the model's metadata, quoted; every value is a parameter.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        connection.ops.quote_name(AnomalyDetection._meta.db_table),
        ", ".join(_column(c) for c in columns),
        ", ".join(_placeholder(c) for c in columns),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, [[r.document_id, r.account_code, *_db_values(r.values), stamp, stamp] for r in rows])


def _update(rows: list[tuple[int, PlannedRow]], stamp: Any) -> None:
    columns = (*RESULT_COLUMNS, "detected_at", "updated_at")
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 - quoted identifiers, values as parameters
        connection.ops.quote_name(AnomalyDetection._meta.db_table),
        ", ".join(f"{_column(c)} = {_placeholder(c)}" for c in columns),
        connection.ops.quote_name("id"),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, [[*_db_values(r.values), stamp, stamp, pk] for pk, r in rows])


@transaction.atomic
def detections_write(
    *,
    planned: dict[int, list[PlannedRow]],
    selection_logs: list[ModelSelectionLog],
    applied_feedback: set[int],
    now: datetime,
) -> WriteCounts:
    """Make the stored detections of the planned documents what was planned (idempotent).

    Only rows that differ are written; rows of lines no longer scored, and the rows of older
    versions of the same documents, are deleted; explanations follow their flagged rows.
    """
    counts = WriteCounts()
    doc_ids = sorted(planned)
    # Serialise two passes over the same documents (a redelivered chunk beside its first run):
    # lock the documents in id order, the same order every writer uses.
    docs = list(
        DocumentUpload.objects.select_for_update()
        .filter(id__in=doc_ids)
        .order_by("id")
        .values_list("property_id", "document_type", "period_id")
    )
    stored = {
        (doc, account): (pk, tuple(values))
        for pk, doc, account, *values in AnomalyDetection.objects.filter(document_id__in=doc_ids)
        .order_by()
        .values_list("id", "document_id", "account_code", *RESULT_COLUMNS)
    }
    wanted = {(row.document_id, row.account_code): row for rows in planned.values() for row in rows}
    inserts = [row for key, row in wanted.items() if key not in stored]
    updates = [(stored[key][0], row) for key, row in wanted.items() if key in stored and not row.same_as(stored[key][1])]
    gone = [pk for key, (pk, _) in stored.items() if key not in wanted]
    gone += _older_version_rows(docs, doc_ids)
    stamp = connection.ops.adapt_datetimefield_value(now)
    if gone:
        counts.deleted = AnomalyDetection.objects.filter(id__in=gone).delete()[1].get(AnomalyDetection._meta.label, 0)
    if inserts:
        _insert(inserts, stamp)
    if updates:
        _update(updates, stamp)
    counts.inserted, counts.updated = len(inserts), len(updates)
    ids = {key: pk for key, (pk, _) in stored.items()}
    if inserts:
        inserted_docs = sorted({row.document_id for row in inserts})
        ids.update(
            ((doc, account), pk)
            for pk, doc, account in AnomalyDetection.objects.filter(document_id__in=inserted_docs).values_list(
                "id", "document_id", "account_code"
            )
        )
    counts.explanations = _write_explanations(wanted, ids, doc_ids)
    _link_feedback(wanted, ids, applied_feedback)
    if selection_logs:
        ModelSelectionLog.objects.bulk_create(selection_logs, batch_size=1000)
        counts.selection_logs = len(selection_logs)
    DocumentUpload.objects.filter(id__in=doc_ids).update(last_detected_at=now)
    return counts


def _older_version_rows(docs: list[tuple[int, str, int]], doc_ids: list[int]) -> list[int]:
    """Detections of older versions of the chunk's documents (same property, type and period)."""
    if not docs:
        return []
    keys = set(docs)
    rows = (
        AnomalyDetection.objects.filter(property_id__in={p for p, _, _ in keys}, document__is_latest=False)
        .exclude(document_id__in=doc_ids)
        .values_list("id", "property_id", "document_type", "period_id")
    )
    return [pk for pk, *key in rows if tuple(key) in keys]


def _write_explanations(
    wanted: dict[tuple[int, str], PlannedRow], ids: dict[tuple[int, str], int], doc_ids: list[int]
) -> int:
    """A flagged row's explanation, rewritten only where it says something new; 0 on a rerun."""
    desired = {
        ids[key]: row.scored.explanation
        for key, row in wanted.items()
        if row.is_anomaly and row.scored.explanation is not None
    }
    stored: dict[int, list[tuple]] = {}
    for anomaly_id, *values in AnomalyExplanation.objects.filter(anomaly__document_id__in=doc_ids).values_list(
        "anomaly_id", *EXPLANATION_COLUMNS
    ):
        stored.setdefault(anomaly_id, []).append(tuple(values))
    stale = [
        anomaly_id
        for anomaly_id, rows in stored.items()
        if anomaly_id not in desired or rows != [_explanation_values(desired[anomaly_id])]
    ]
    fresh = [anomaly_id for anomaly_id in desired if anomaly_id in stale or anomaly_id not in stored]
    deleted = AnomalyExplanation.objects.filter(anomaly_id__in=stale).delete()[0] if stale else 0
    AnomalyExplanation.objects.bulk_create(
        [AnomalyExplanation(anomaly_id=anomaly_id, **desired[anomaly_id]) for anomaly_id in fresh], batch_size=1000
    )
    return deleted + len(fresh)


def _explanation_values(explanation: dict[str, Any]) -> tuple:
    return tuple(_json_shaped(explanation[name]) for name in EXPLANATION_COLUMNS)


def _link_feedback(
    wanted: dict[tuple[int, str], PlannedRow], ids: dict[tuple[int, str], int], applied_feedback: set[int]
) -> None:
    """A verdict follows its line to the line's current row; verdicts taken into account are marked."""
    for key, row in wanted.items():
        fb = row.feedback
        if fb is not None and fb.anomaly_id != ids[key]:
            AnomalyFeedback.objects.filter(id=fb.id).update(anomaly_id=ids[key])
    applied = [fb_id for fb_id in applied_feedback if fb_id]
    if applied:
        AnomalyFeedback.objects.filter(id__in=applied, learned_applied=False).update(learned_applied=True)
