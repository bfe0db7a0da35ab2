"""Verdicts become knowledge: later passes learn which evidence is normal on an account."""

from __future__ import annotations

import numpy as np
import pytest

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyFeedback, DetectionStatus
from anomalies.tests.factories import load_rows, series_rows
from documents.models import LineItem

pytestmark = pytest.mark.django_db

ZERO_MONTHS = (4, 12, 23, 33)  # service charges 52200 not billed in these months (a client convention)


def zero_month_amounts(months: int = 36) -> dict[str, list]:
    rng = np.random.default_rng(5)
    rent = [round(50000.0 + rng.normal(0, 300), 2) for _ in range(months)]
    charges = [0.0 if m in ZERO_MONTHS else round(4000.0 + rng.normal(0, 60), 2) for m in range(months)]
    return {"4010-0000": rent, "52200": charges}


@pytest.fixture
def zero_months(db, no_model_cache, statistical_only):
    load_rows(series_rows(property_code="Z1", amounts=zero_month_amounts(), start="2022-01"))
    services.detection_run(all_documents=True)
    flagged = list(AnomalyDetection.objects.filter(account_code="52200", is_anomaly=True).order_by("period__ordinal"))
    assert [d.field_value for d in flagged] == [0, 0, 0, 0]
    return flagged


def _dismiss_first_two(flagged, analyst) -> list[AnomalyFeedback]:
    return [
        services.anomaly_feedback_submit(anomaly_id=d.id, user=analyst, feedback_type="false_positive") for d in flagged[:2]
    ]


def test_zero_months_dismissed_twice_stop_the_account_alarming_on_zero_months(zero_months, analyst):
    verdicts = _dismiss_first_two(zero_months, analyst)
    assert {v.anomaly_type for v in verdicts} == {zero_months[0].anomaly_type}
    services.detection_run(all_documents=True)

    third = AnomalyDetection.objects.get(id=zero_months[2].id)
    assert not third.is_anomaly and third.status == DetectionStatus.OPEN
    assert not AnomalyDetection.objects.get(id=zero_months[3].id).is_anomaly
    learned = third.contributions["learned"]
    assert learned["reason"].startswith("like 2 dismissed false positives on 52200 at this property")
    assert learned["confidence"] >= 0.5 and sorted(learned["verdicts"]) == sorted(v.id for v in verdicts)
    assert "like 2 dismissed false positives" in third.explanation_text
    for verdict in verdicts:
        verdict.refresh_from_db()
        assert verdict.learned_applied and verdict.similar_anomalies_suppressed == 2  # the two later zero months


def test_auto_suppression_keeps_the_line_visible_as_suppressed_with_the_reason(zero_months, analyst, monkeypatch, settings):
    monkeypatch.setenv("AUTO_SUPPRESSION_ENABLED", "true")
    settings.AUTO_SUPPRESSION_CONFIDENCE_THRESHOLD = 0.6
    _dismiss_first_two(zero_months, analyst)
    services.detection_run(all_documents=True)
    third = AnomalyDetection.objects.get(id=zero_months[2].id)
    assert third.is_anomaly and third.status == DetectionStatus.SUPPRESSED
    assert third.explanation_text.startswith("Suppressed: like 2 dismissed false positives on 52200 at this property")
    # Below the threshold (0.8 by default, two dismissals give 0.67) the line is quieted instead.
    settings.AUTO_SUPPRESSION_CONFIDENCE_THRESHOLD = 0.8
    services.detection_run(all_documents=True)
    third.refresh_from_db()
    assert not third.is_anomaly and third.status == DetectionStatus.OPEN


def test_confirmations_keep_the_kind_alarming(zero_months, analyst, viewer):
    _dismiss_first_two(zero_months, analyst)
    other = viewer
    other.user_permissions.set(analyst.user_permissions.all())
    # A second analyst, later, says the first zero month was an error after all: latest wins, both kept.
    services.anomaly_feedback_submit(anomaly_id=zero_months[0].id, user=other, feedback_type="confirmed")
    services.detection_run(all_documents=True)
    assert AnomalyFeedback.objects.filter(anomaly_id=zero_months[0].id).count() == 2
    assert AnomalyDetection.objects.get(id=zero_months[0].id).is_anomaly
    third = AnomalyDetection.objects.get(id=zero_months[2].id)
    assert third.is_anomaly  # one dismissal against one confirmation: not enough to quiet it
    assert third.contributions["learned"]["confidence"] < 0.5


def test_learning_off_or_verdict_lines_removed_by_reprocessing_teach_nothing(zero_months, analyst, monkeypatch):
    verdicts = _dismiss_first_two(zero_months, analyst)
    monkeypatch.setenv("ACTIVE_LEARNING_ENABLED", "false")
    services.detection_run(all_documents=True)
    assert AnomalyDetection.objects.get(id=zero_months[2].id).is_anomaly
    monkeypatch.setenv("ACTIVE_LEARNING_ENABLED", "true")
    # Reprocessing removed the two dismissed lines: the verdicts are kept, not applied.
    LineItem.objects.filter(id__in=[d.line_item_id for d in zero_months[:2]]).delete()
    services.detection_run(all_documents=True)
    assert AnomalyFeedback.objects.filter(id__in=[v.id for v in verdicts]).count() == 2
    third = AnomalyDetection.objects.get(id=zero_months[2].id)
    assert "learned" not in third.contributions


def test_arithmetic_findings_are_never_learned_away():
    from anomalies.detection.verdicts import NEVER_LEARNED

    assert {"footing", "balance_mismatch"} <= NEVER_LEARNED
