"""Analyst feedback: recorded once per line and user, and effective on later passes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyFeedback
from anomalies.tests.conftest import level_shift_amounts
from anomalies.tests.factories import load_rows, series_rows
from documents.models import DocumentUpload, LineItem
from reims.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def detected(ledger, statistical_only):
    services.detection_run(all_documents=True)
    return AnomalyDetection.objects.get(is_anomaly=True)


def _redetect() -> None:
    services.detection_run(all_documents=True)


def test_feedback_twice_updates_one_row_with_the_lines_natural_key(detected, analyst):
    first = services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type="confirmed")
    second = services.anomaly_feedback_submit(
        anomaly_id=detected.id,
        user=analyst,
        feedback_type="dismissed",
        notes="known invoice",
        feedback_confidence=0.9,
        business_context={"ticket": "OPS-12"},
    )
    assert first.id == second.id and AnomalyFeedback.objects.count() == 1
    second.refresh_from_db()
    assert (second.property_id, second.document_type, second.period_id, second.account_code) == (
        detected.property_id,
        detected.document_type,
        detected.period_id,
        detected.account_code,
    )
    assert second.field_value == detected.field_value
    assert (second.feedback_type, second.is_anomaly, second.notes) == ("dismissed", False, "known invoice")
    assert second.business_context == {"ticket": "OPS-12"}
    detected.refresh_from_db()
    assert detected.status == "dismissed"


def test_invalid_feedback_is_refused_with_field_errors(detected, analyst):
    with pytest.raises(ApplicationError) as err:
        services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type="maybe", feedback_confidence=3)
    assert set(err.value.field_errors) == {"feedback_type", "feedback_confidence"}
    with pytest.raises(services.NotFoundError):
        services.anomaly_feedback_submit(anomaly_id=10**9, user=analyst, feedback_type="confirmed")
    assert not AnomalyFeedback.objects.exists()


@pytest.mark.parametrize("verdict", ["dismissed", "false_positive"])
def test_a_dismissed_line_stays_quiet_while_its_amount_is_unchanged(detected, analyst, verdict):
    services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type=verdict)
    _redetect()

    line = AnomalyDetection.objects.get(document=detected.document, account_code=detected.account_code)
    assert line.id == detected.id
    assert not line.is_anomaly and line.status == verdict
    assert line.anomaly_score >= 50  # the model still sees it: the verdict, not the model, silences it
    assert line.contributions["feedback"]["feedback_type"] == verdict
    assert "amount is unchanged" in line.explanation_text
    assert not line.explanations.exists()
    fb = AnomalyFeedback.objects.get()
    assert fb.learned_applied and fb.anomaly_id == line.id


def test_a_changed_amount_is_scored_afresh(detected, analyst):
    services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type="dismissed")
    # The same statement is re-imported with the amount now x100: a new fact.
    old = detected.document
    DocumentUpload.objects.filter(id=old.id).update(is_latest=False)
    new = DocumentUpload.objects.create(
        property=old.property,
        document_type=old.document_type,
        period=old.period,
        version=2,
        content_hash="v2",
        extraction_status="completed",
    )
    for line in old.line_items.all():
        amount = line.amount * 10 if line.account_code == detected.account_code else line.amount
        LineItem.objects.create(
            document=new,
            account_code=line.account_code,
            account_name=line.account_name,
            amount=amount,
            row_order=line.row_order,
        )
    services.documents_detect(document_ids=[new.id])

    line = AnomalyDetection.objects.get(document=new, account_code=detected.account_code)
    assert line.is_anomaly and line.status == "open"
    assert AnomalyFeedback.objects.get().anomaly_id == line.id  # the verdict follows the line


def test_confirmed_anomalies_stay_flagged_across_reprocessing(detected, analyst, monkeypatch):
    services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type="confirmed")
    _redetect()
    line = AnomalyDetection.objects.get(id=detected.id)
    assert line.is_anomaly and line.status == "confirmed"

    # A false negative reported by an analyst is flagged on the next pass too.
    quiet = AnomalyDetection.objects.filter(is_anomaly=False, account_code="5010-0000").first()
    services.anomaly_feedback_submit(anomaly_id=quiet.id, user=analyst, feedback_type="false_negative")
    _redetect()
    quiet.refresh_from_db()
    assert quiet.is_anomaly and quiet.status == "confirmed"
    assert "Confirmed by ana" in quiet.explanation_text


def test_without_active_learning_the_model_decides(detected, analyst, monkeypatch):
    services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type="dismissed")
    monkeypatch.setenv("ACTIVE_LEARNING_ENABLED", "false")
    _redetect()
    line = AnomalyDetection.objects.get(id=detected.id)
    assert line.is_anomaly and line.status == "dismissed"  # the verdict is shown, not applied


def test_new_normal_makes_later_periods_compare_with_the_new_level(db, no_model_cache, analyst):
    load_rows(series_rows(property_code="A1", amounts=level_shift_amounts(), start="2022-01"))
    _redetect()
    # Whether the engine flags the step itself is its business; the analyst accepts the new level.
    step = AnomalyDetection.objects.get(account_code="7010-0000", period__year=2023, period__month=1)
    services.anomaly_feedback_submit(anomaly_id=step.id, user=analyst, feedback_type="new_normal")
    _redetect()

    series = AnomalyDetection.objects.filter(account_code="7010-0000").order_by("period__ordinal")
    step.refresh_from_db()
    assert step.status == "new_normal" and not step.is_anomaly
    later = [d for d in series if d.period.year == 2023]
    assert not any(d.is_anomaly for d in later)
    # From the accepted month on, the expectation is the new level, not a blend with the old one.
    assert all(d.expected_value in (None, Decimal("16000.00")) for d in later)
    earlier = [d for d in series if d.period.year == 2022]
    assert all(d.expected_value == Decimal("10000.00") for d in earlier)
    assert {d.contributions.get("series_since") for d in later if d.detector != "insufficient_history"} == {
        str(step.period.ordinal)
    }
