"""Analyst feedback: a submitted verdict, and the same rules applied on every later pass.

Feedback is keyed by the line's natural key (property, document type, period, account) so that it
survives reprocessing and new versions. On later passes (ACTIVE_LEARNING_ENABLED):

* ``dismissed`` / ``false_positive``: while the line's amount is the one the analyst saw, it is
  not flagged again (``is_anomaly`` false, status kept, the reason in ``contributions`` and the
  sentence). A changed amount is a new fact and is scored afresh.
* ``confirmed`` / ``false_negative``: while the amount is unchanged the line stays flagged.
* ``new_normal``: the series is cut at the accepted period. The engine sees the periods from
  the accepted one on as a series of their own (and the earlier periods as another), so later
  periods are compared with the new level only, and the accepted point itself starts a new
  history (reported as insufficient history until enough points follow it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.db import transaction

from anomalies.detection.table import LineTable
from anomalies.models import AnomalyDetection, AnomalyExplanation, AnomalyFeedback, DetectionStatus, FeedbackType
from kernel.exceptions import ApplicationError
from kernel.flags import FeatureFlags

NEW_NORMAL_SEPARATOR = "@new-normal-since-"
# The one limit on an analyst's notes, for the API, the admin and any other caller.
FEEDBACK_NOTES_MAX_LENGTH = 2000

# Detection status set by each kind of feedback.
FEEDBACK_STATUS = {
    FeedbackType.CONFIRMED: DetectionStatus.CONFIRMED,
    FeedbackType.FALSE_NEGATIVE: DetectionStatus.CONFIRMED,
    FeedbackType.DISMISSED: DetectionStatus.DISMISSED,
    FeedbackType.FALSE_POSITIVE: DetectionStatus.FALSE_POSITIVE,
    FeedbackType.NEW_NORMAL: DetectionStatus.NEW_NORMAL,
}
FEEDBACK_IS_ANOMALY = {
    FeedbackType.CONFIRMED: True,
    FeedbackType.FALSE_NEGATIVE: True,
    FeedbackType.DISMISSED: False,
    FeedbackType.FALSE_POSITIVE: False,
    FeedbackType.NEW_NORMAL: False,
}


class NotFoundError(ApplicationError):
    status_code = 404


def original_account(code: str) -> str:
    """The account code of a series segment cut at an accepted new normal."""
    return code.split(NEW_NORMAL_SEPARATOR, 1)[0]


@dataclass
class FeedbackIndex:
    by_line: dict[tuple[int, str, int, str], AnomalyFeedback]  # (property, type, period ordinal, account)
    new_normal: dict[tuple[int, str, str], list[int]]  # series -> accepted period ordinals, sorted

    @classmethod
    def build(cls, rows: Iterable[AnomalyFeedback]) -> FeedbackIndex:
        by_line: dict[tuple[int, str, int, str], AnomalyFeedback] = {}
        new_normal: dict[tuple[int, str, str], set[int]] = defaultdict(set)
        for fb in rows:  # oldest first: the latest verdict on a line wins
            by_line[(fb.property_id, fb.document_type, fb.period.ordinal, fb.account_code)] = fb
        for key, fb in by_line.items():
            if fb.feedback_type == FeedbackType.NEW_NORMAL:
                new_normal[(key[0], key[1], key[3])].add(key[2])
        return cls(by_line, {k: sorted(v) for k, v in new_normal.items()})


def split_new_normal(table: LineTable, index: FeedbackIndex) -> LineTable:
    """Cut each series with an accepted new normal into segments the engine models apart."""
    if not index.new_normal:
        return table
    accounts = table.account_codes.copy()
    for i in range(table.n_rows):
        cuts = index.new_normal.get((int(table.property_ids[i]), table.document_types[i], table.account_codes[i]))
        if not cuts:
            continue
        period = int(table.periods[i])
        since = [c for c in cuts if c <= period]
        if since:
            accounts[i] = f"{table.account_codes[i]}{NEW_NORMAL_SEPARATOR}{since[-1]}"
    return LineTable(
        line_ids=table.line_ids,
        property_ids=table.property_ids,
        property_types=table.property_types,
        document_types=table.document_types,
        account_codes=accounts,
        periods=table.periods,
        amounts=table.amounts,
        is_total=table.is_total,
        row_order=table.row_order,
    )


class VerdictTarget(Protocol):
    """What a verdict changes on a line: a ScoredLine of a pass, or a stored AnomalyDetection."""

    is_anomaly: bool
    anomaly_score: float
    contributions: dict[str, Any]
    explanation_text: str


@dataclass(frozen=True)
class VerdictEffect:
    status: str  # the detection's status under this verdict
    applied: bool  # the verdict is taken into account (learning on and the amount unchanged)
    clears_explanation: bool  # the line is no longer flagged: its anomaly explanation goes


def _same_amount(seen: Decimal | None, now: Decimal | None) -> bool:
    """The amount the analyst judged is still the line's amount (an absent posting: still absent)."""
    if seen is None or now is None:
        return seen is None and now is None
    return Decimal(seen) == Decimal(now)


def verdict_apply(
    *, line: VerdictTarget, feedback: AnomalyFeedback, amount: Decimal | None, learning: bool
) -> VerdictEffect:
    """The feedback rules, in one place: what an analyst's verdict does to a line.

    Used by every detection pass (on the engine's fresh result) and by a submitted verdict (on the
    stored detection), so both say the same thing. ``line`` is updated in place when the verdict
    applies: a verdict holds while the line's amount is the one the analyst saw.
    """
    kind = FeedbackType(feedback.feedback_type)
    status = FEEDBACK_STATUS[kind]
    if kind == FeedbackType.NEW_NORMAL:
        # Its effect is the series cut made before the engine ran (split_new_normal).
        return VerdictEffect(status, learning, False)
    if not _same_amount(feedback.field_value, amount):
        # The line changed since the analyst's verdict: score it afresh.
        return VerdictEffect(DetectionStatus.OPEN, False, False)
    if not learning:
        return VerdictEffect(status, False, False)
    who = getattr(feedback.user, "username", None) or "an analyst"
    when = feedback.updated_at.date().isoformat() if feedback.updated_at else ""
    label = DetectionStatus(status).label  # Confirmed, Dismissed, False positive
    previous = (line.contributions or {}).get("feedback") or {}
    model_flagged = bool(previous.get("model_flagged", line.is_anomaly))
    line.contributions = {
        **(line.contributions or {}),
        "feedback": {
            "feedback_type": kind.value,
            "by": who,
            "on": when,
            "model_flagged": model_flagged,
            "reason": f"{label} by {who} on {when}; amount unchanged",
        },
    }
    verdict = FEEDBACK_IS_ANOMALY[kind]
    if verdict and not line.is_anomaly:
        line.is_anomaly = True
        if model_flagged:
            # Only on a stored line an earlier verdict had unflagged: the model's own sentence
            # was replaced then, and comes back with the next pass.
            line.explanation_text = f"{label} by {who} on {when}; flagged by the model (score {line.anomaly_score:.0f})."
        else:
            line.explanation_text = (
                f"{label} by {who} on {when}; kept flagged while the amount is unchanged. " + line.explanation_text
            )
    elif not verdict and line.is_anomaly:
        line.is_anomaly = False
        line.explanation_text = (
            f"{label} by {who} on {when}: not flagged while the amount is unchanged (model score {line.anomaly_score:.0f})."
        )
        return VerdictEffect(status, True, True)
    return VerdictEffect(status, True, False)


@transaction.atomic
def anomaly_feedback_submit(
    *,
    anomaly_id: int,
    user: Any,
    feedback_type: str,
    notes: str = "",
    feedback_confidence: float | None = None,
    business_context: dict | None = None,
) -> AnomalyFeedback:
    """Record (or update) ``user``'s verdict on a detection and apply it to the detection at once.

    One row per (property, document type, period, account, user): feedback twice updates it.
    The verdict changes the detection exactly as the next pass will (``verdict_apply``).
    """
    errors: dict[str, list[str]] = {}
    if feedback_type not in FeedbackType.values:
        errors["feedback_type"] = [f"must be one of {', '.join(FeedbackType.values)}"]
    if feedback_confidence is not None and not (0.0 <= float(feedback_confidence) <= 1.0):
        errors["feedback_confidence"] = ["must be between 0 and 1"]
    if business_context is not None and not isinstance(business_context, dict):
        errors["business_context"] = ["must be a JSON object"]
    if len((notes or "").strip()) > FEEDBACK_NOTES_MAX_LENGTH:
        errors["notes"] = [f"at most {FEEDBACK_NOTES_MAX_LENGTH} characters (got {len(notes.strip())})"]
    if errors:
        raise ApplicationError("invalid feedback", field_errors=errors)
    # Lock the detection so that a pass rewriting it and this verdict do not interleave.
    detection = AnomalyDetection.objects.select_for_update().select_related("period").filter(id=anomaly_id).first()
    if detection is None:
        raise NotFoundError(f"anomaly {anomaly_id} not found")
    # What the model said before any learning: the evidence this verdict is about.
    learned = (detection.contributions or {}).get("learned") or {}
    feedback, _ = AnomalyFeedback.objects.update_or_create(
        property_id=detection.property_id,
        document_type=detection.document_type,
        period_id=detection.period_id,
        account_code=detection.account_code,
        user_id=user.pk,
        defaults={
            "anomaly": detection,
            "field_value": detection.field_value,
            "feedback_type": feedback_type,
            "is_anomaly": FEEDBACK_IS_ANOMALY[FeedbackType(feedback_type)],
            "anomaly_type": learned.get("kind") or detection.anomaly_type,
            "model_score": learned.get("model_score", detection.anomaly_score),
            "notes": (notes or "").strip(),
            "feedback_confidence": feedback_confidence,
            "business_context": business_context or {},
        },
    )
    effect = verdict_apply(
        line=detection,
        feedback=feedback,
        amount=detection.field_value,
        learning=FeatureFlags.is_enabled("ACTIVE_LEARNING_ENABLED"),
    )
    detection.status = effect.status
    detection.save(update_fields=["status", "is_anomaly", "contributions", "explanation_text", "updated_at"])
    if effect.clears_explanation:
        AnomalyExplanation.objects.filter(anomaly=detection).delete()
    if effect.applied and not feedback.learned_applied:
        feedback.learned_applied = True
        feedback.save(update_fields=["learned_applied", "updated_at"])
    return feedback


def anomalies_feedback_bulk(*, anomaly_ids: Iterable[int], user: Any, feedback_type: str) -> int:
    """The admin actions: the same verdict on several detections; returns how many were recorded."""
    count = 0
    for anomaly_id in anomaly_ids:
        anomaly_feedback_submit(anomaly_id=anomaly_id, user=user, feedback_type=feedback_type)
        count += 1
    return count
