"""Verdicts become knowledge: a pass's flagged lines judged by what similar verdicts taught.

The numbers live in the Django-free :mod:`anomalies.detection.verdicts`; this module turns the
pass's feedback rows and scored lines into its arrays and writes the outcome back onto the lines
(ACTIVE_LEARNING_ENABLED; AUTO_SUPPRESSION_ENABLED with AUTO_SUPPRESSION_CONFIDENCE_THRESHOLD;
only verdicts of the last FEEDBACK_LOOKBACK_DAYS count).

The verdicts are read once per chunk (the caller's one query), before any of its documents is
scored: a verdict given while a job runs applies from the next chunk on, never to half a document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings

from anomalies.detection import verdicts as verdict_math
from anomalies.detection.scoring import severity
from anomalies.models import AnomalyFeedback, DetectionStatus
from anomalies.selectors import DetectionInput, TargetDocument, verdicts_for_learning
from anomalies.services.feedback import original_account
from anomalies.services.results import ScoredLine
from kernel.flags import FeatureFlags

LineKey = tuple[int, str, str, int]  # (property, document type, account, period ordinal)


@dataclass
class LearningOutcome:
    """Per line index: the status learning sets; per verdict id: how many other lines it quieted."""

    statuses: dict[int, str] = field(default_factory=dict)
    used_verdicts: set[int] = field(default_factory=set)
    quieted_by_verdict: Counter[int] = field(default_factory=Counter)


def verdict_arrays(rows: Iterable[tuple[Any, ...]], *, now: datetime) -> verdict_math.VerdictArrays:
    """The selector's verdict rows (oldest first) as the numeric module's arrays."""
    out = []
    for fb_id, prop, doc, account, period, amount, is_anomaly, kind, score, updated_at, still_seen in rows:
        age = (now - updated_at).total_seconds() / 86400.0
        out.append((fb_id, prop, doc, account, period, amount, is_anomaly, kind or "", score, age, still_seen))
    return verdict_math.VerdictArrays.from_rows(out)


def lines_learn(
    *,
    lines: Sequence[ScoredLine],
    line_keys: Sequence[LineKey],
    present: dict[LineKey, float],
    skip: set[int],
    now: datetime,
) -> LearningOutcome:
    """Lower, keep or suppress each flagged line by what similar verdicts taught (edits ``lines``).

    ``line_keys[i]`` is the natural key of ``lines[i]``; ``present`` every line of the pass's
    context with its amount; ``skip`` the indexes already judged by a verdict on the line itself.
    Verdicts of the whole portfolio on the flagged lines' accounts are read in one query.
    """
    outcome = LearningOutcome()
    if not FeatureFlags.is_enabled("ACTIVE_LEARNING_ENABLED"):
        return outcome
    index = [
        i for i, line in enumerate(lines) if i not in skip and line.is_anomaly and not line.detector.startswith("statement:")
    ]
    if not index:
        return outcome
    lookback = float(settings.FEEDBACK_LOOKBACK_DAYS)
    # Only verdicts of the flagged lines' (document type, account, kind) can teach them.
    wanted = {(line_keys[i][1], line_keys[i][2], lines[i].anomaly_type) for i in index}
    rows = verdicts_for_learning(
        document_types={w[0] for w in wanted},
        account_codes={w[1] for w in wanted},
        anomaly_types={w[2] for w in wanted},
        since=now - timedelta(days=lookback),
    )
    verdicts = verdict_arrays([row for row in rows if (row[2], row[3], row[7]) in wanted], now=now)
    if verdicts.n == 0:
        return outcome
    context = {key[0] for key in present}
    usable = verdict_math.applicable(verdicts, present, lookback, context_properties=context)
    if not usable.any():
        return outcome
    candidates = verdict_math.Candidates(
        property_ids=np.array([line_keys[i][0] for i in index], dtype=np.int64),
        document_types=np.array([line_keys[i][1] for i in index], dtype=object),
        account_codes=np.array([line_keys[i][2] for i in index], dtype=object),
        kinds=np.array([lines[i].anomaly_type for i in index], dtype=object),
        scores=np.array([lines[i].anomaly_score for i in index], dtype=np.float64),
        periods=np.array([line_keys[i][3] for i in index], dtype=np.int64),
    )
    threshold = (
        float(settings.AUTO_SUPPRESSION_CONFIDENCE_THRESHOLD)
        if FeatureFlags.is_enabled("AUTO_SUPPRESSION_ENABLED")
        else None
    )
    learned = verdict_math.learn(verdicts, candidates, usable=usable, suppression_threshold=threshold)
    for j, i in enumerate(index):
        taught = learned.verdict_ids[j]
        if not taught:
            continue
        line = lines[i]
        outcome.used_verdicts.update(taught)
        confidence = float(learned.confidence[j])
        line.contributions = {
            **line.contributions,
            "learned": {
                "confidence": round(confidence, 4),
                "model_score": round(float(line.anomaly_score), 3),
                "reason": learned.reasons[j],
                "verdicts": list(taught),
                "kind": line.anomaly_type,
                "suppressed": bool(learned.suppressed[j]),
            },
        }
        if not learned.suppressed[j] and float(learned.scores[j]) == float(line.anomaly_score):
            continue  # confirmations outweigh (or no dismissal covers it): the alarm stays as the model gave it
        quieted = bool(learned.suppressed[j]) or not bool(learned.flagged[j])
        if quieted:
            outcome.quieted_by_verdict.update(taught)
        if learned.suppressed[j]:
            outcome.statuses[i] = DetectionStatus.SUPPRESSED
            line.explanation_text = f"Suppressed: {learned.reasons[j]}. " + line.explanation_text
            continue
        line.anomaly_score = float(learned.scores[j])
        if learned.flagged[j]:
            line.severity = severity(line.anomaly_score)
            line.explanation_text = (
                f"Score lowered from {line.contributions['learned']['model_score']:.0f} ({learned.reasons[j]}). "
                + line.explanation_text
            )
        else:
            line.is_anomaly = False
            line.explanation_text = (
                f"Not flagged: {learned.reasons[j]} (model score "
                f"{line.contributions['learned']['model_score']:.0f}, learned confidence {confidence:.2f})."
            )
            line.explanation = None
    return outcome


def present_lines(
    context: DetectionInput, targets: dict[int, TargetDocument], lines: Sequence[ScoredLine]
) -> dict[LineKey, float]:
    """Every line of the pass's context with its amount (NaN: a posting reported absent)."""
    table = context.table
    present = {
        (int(p), str(d), original_account(str(a)), int(t)): float(v)
        for p, d, a, t, v in zip(
            table.property_ids, table.document_types, table.account_codes, table.periods, table.amounts, strict=True
        )
    }
    for line in lines:
        if line.line_item_id is None:
            target = targets[line.document_id]
            present[(target.property_id, target.document_type, line.account_code, target.period_ordinal)] = float("nan")
    return present


def quieted_counts_write(outcome: LearningOutcome) -> None:
    """similar_anomalies_suppressed: how many other lines each verdict quieted or suppressed in this pass."""
    for fb_id, n in outcome.quieted_by_verdict.items():
        AnomalyFeedback.objects.filter(id=fb_id).update(similar_anomalies_suppressed=n)
