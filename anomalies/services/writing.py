"""The detections of a chunk written to the database in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Q

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
from anomalies.services.results import ScoredLine
from documents.models import DocumentUpload


@dataclass
class PlannedRow:
    """A detection row to write, the engine's line it came from, and the verdict applied to it."""

    detection: AnomalyDetection
    scored: ScoredLine
    feedback: AnomalyFeedback | None


def _decimal(value: float | None) -> Decimal | None:
    if value is None or not np.isfinite(value):
        return None
    if abs(value) >= 1e16:  # outside max_digits=18, decimal_places=2
        return None
    return Decimal(str(round(float(value), 2)))


def detection_row(target: Any, s: ScoredLine, status: str, now: datetime) -> AnomalyDetection:
    score = min(max(float(s.anomaly_score), 0.0), 100.0)
    return AnomalyDetection(
        line_item_id=s.line_item_id,
        document_id=s.document_id,
        property_id=target.property_id,
        document_type=target.document_type,
        period_id=target.period_id,
        account_code=s.account_code[:40],
        field_value=s.amount,
        expected_value=_decimal(s.expected_value),
        z_score=s.z_score,
        percentage_change=s.percentage_change,
        anomaly_type=s.anomaly_type if s.anomaly_type in AnomalyType.values else AnomalyType.OUTLIER,
        severity=s.severity if s.severity in Severity.values else Severity.LOW,
        # The engine gives no separate confidence: the calibrated score read as a probability.
        confidence=round(score / 100.0, 4),
        anomaly_score=score,
        threshold=None if s.insufficient_history else FLAG_SCORE,
        is_anomaly=bool(s.is_anomaly),
        direction=s.direction if s.direction in Direction.values else Direction.NONE,
        detector=s.detector[:100],
        model_key=(s.model_key or "")[:64],
        model_version=(s.model_version or "")[:100],
        contributions=s.contributions,
        explanation_text=(s.explanation_text or "")[:500],
        status=status,
        detected_at=now,
        updated_at=now,
    )


_UPSERT_FIELDS = [
    "line_item",
    "property",
    "document_type",
    "period",
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
    "detected_at",
    "updated_at",
]


@transaction.atomic
def detections_write(
    *,
    planned: dict[int, list[PlannedRow]],
    selection_logs: list[ModelSelectionLog],
    applied_feedback: set[int],
    now: datetime,
) -> None:
    """Replace the detections of the planned documents (idempotent: a rerun writes the same rows).

    Rows are upserted on (document, account_code) so a line keeps its id across reprocessing
    (links to an anomaly stay valid); rows of lines no longer scored, and the rows of older
    versions of the same documents, are deleted; explanations are rewritten.
    """
    doc_ids = sorted(planned)
    # Serialise two passes over the same documents (a redelivered chunk beside its first run):
    # lock the documents in id order, the same order every writer uses.
    docs = list(
        DocumentUpload.objects.select_for_update()
        .filter(id__in=doc_ids)
        .order_by("id")
        .values_list("id", "property_id", "document_type", "period_id")
    )
    older = Q()
    for _, property_id, document_type, period_id in docs:
        older |= Q(property_id=property_id, document_type=document_type, period_id=period_id)
    if docs:
        AnomalyDetection.objects.filter(older).exclude(document_id__in=doc_ids).delete()

    detections = [row.detection for rows in planned.values() for row in rows]
    if detections:
        AnomalyDetection.objects.bulk_create(
            detections,
            update_conflicts=True,
            unique_fields=["document", "account_code"],
            update_fields=_UPSERT_FIELDS,
            batch_size=1000,
        )
    kept = [det.pk for det in detections]
    AnomalyDetection.objects.filter(document_id__in=doc_ids).exclude(pk__in=kept).delete()
    AnomalyExplanation.objects.filter(anomaly__document_id__in=doc_ids).delete()

    explanations = []
    relink: dict[int, int] = {}
    for rows in planned.values():
        for row in rows:
            det, fb = row.detection, row.feedback
            if fb is not None and fb.anomaly_id != det.pk:
                relink[fb.id] = det.pk
            if det.is_anomaly and row.scored.explanation is not None:
                explanations.append(AnomalyExplanation(anomaly_id=det.pk, **row.scored.explanation))
    if explanations:
        AnomalyExplanation.objects.bulk_create(explanations, batch_size=1000)
    if relink:
        for fb_id, det_id in relink.items():
            AnomalyFeedback.objects.filter(id=fb_id).update(anomaly_id=det_id)
    applied = [fb_id for fb_id in applied_feedback if fb_id]
    if applied:
        AnomalyFeedback.objects.filter(id__in=applied, learned_applied=False).update(learned_applied=True)
    if selection_logs:
        ModelSelectionLog.objects.bulk_create(selection_logs, batch_size=1000)
    DocumentUpload.objects.filter(id__in=doc_ids).update(last_detected_at=now)
