"""Analyst feedback: recorded once per line and user, and effective on later passes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyFeedback
from anomalies.tests.conftest import ledger_amounts, level_shift_amounts
from anomalies.tests.factories import UserFactory, load_rows, month_label, series_rows
from documents.models import DocumentUpload, LineItem
from kernel.exceptions import ApplicationError

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


@pytest.mark.parametrize("verdict", ["dismissed", "false_positive", "false_negative"])
def test_a_submitted_verdict_changes_the_line_at_once_as_the_next_pass_does(detected, analyst, verdict):
    line = detected
    if verdict == "false_negative":
        line = AnomalyDetection.objects.filter(is_anomaly=False, account_code="5010-0000").first()
    services.anomaly_feedback_submit(anomaly_id=line.id, user=analyst, feedback_type=verdict)
    line.refresh_from_db()
    at_once = (line.is_anomaly, line.status, line.explanation_text, line.contributions["feedback"]["reason"])
    assert at_once[0] is (verdict == "false_negative")
    assert "amount is unchanged" in line.explanation_text
    if verdict != "false_negative":
        assert not line.explanations.exists()  # no anomaly sentence left on a dismissed line

    _redetect()
    line.refresh_from_db()
    assert (line.is_anomaly, line.status, line.explanation_text, line.contributions["feedback"]["reason"]) == at_once


def test_notes_have_one_limit_enforced_by_the_service(detected, analyst):
    limit = services.FEEDBACK_NOTES_MAX_LENGTH
    with pytest.raises(ApplicationError) as err:
        services.anomaly_feedback_submit(
            anomaly_id=detected.id, user=analyst, feedback_type="dismissed", notes="x" * (limit + 1)
        )
    assert set(err.value.field_errors) == {"notes"}
    assert not AnomalyFeedback.objects.exists()
    fb = services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type="dismissed", notes="x" * limit)
    assert len(fb.notes) == limit


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


# --- What each flag stores, and feedback across new versions and reprocessing ------------------


def _ledger_with_a_total_that_does_not_foot() -> list[dict]:
    """The ledger plus a repairs total (6999-0000) mis-keyed by 500 in 2022-06."""
    amounts = ledger_amounts()
    rows = series_rows(property_code="A1", amounts=amounts, start="2022-01")
    for month, repairs in enumerate(amounts["6010-0000"]):
        rows.append(
            {
                **rows[0],
                "period": month_label("2022-01", month),
                "account_code": "6999-0000",
                "account_name": "Total repairs",
                "amount": repairs + (500 if month == 5 else 0),
                "is_total": True,
            }
        )
    return rows


def test_each_flag_stores_score_threshold_expected_contributions_and_model_version(db, no_model_cache):
    load_rows(_ledger_with_a_total_that_does_not_foot())
    services.detection_run(all_documents=True)

    flagged = list(AnomalyDetection.objects.filter(is_anomaly=True).select_related("period"))
    kinds = {(d.account_code, d.period.label, d.anomaly_type) for d in flagged}
    assert ("6010-0000", "2023-06", "decimal_shift") in kinds
    assert ("6999-0000", "2022-06", "footing") in kinds
    for detection in flagged:
        assert detection.threshold is not None and detection.anomaly_score >= detection.threshold, detection
        assert detection.expected_value is not None, detection
        assert detection.model_version.startswith("reims-detect-"), detection.model_version
        assert detection.detector, detection
        factors = detection.contributions.get("features") or detection.contributions.get("statement")
        assert factors, detection.contributions
        explanation = detection.explanations.get()
        assert explanation.contributing_factors and explanation.suggested_actions
    footing = next(d for d in flagged if d.anomaly_type == "footing")
    assert footing.contributions["statement"]["difference"] == pytest.approx(500.0)
    assert footing.expected_value == Decimal(str(round(ledger_amounts()["6010-0000"][5], 2)))


def _new_version(old: DocumentUpload, changes: dict[str, Decimal]) -> DocumentUpload:
    """A re-import of ``old`` with some amounts changed (the others identical)."""
    DocumentUpload.objects.filter(id=old.id).update(is_latest=False)
    new = DocumentUpload.objects.create(
        property=old.property,
        document_type=old.document_type,
        period=old.period,
        version=old.version + 1,
        content_hash=f"v{old.version + 1}-{old.id}",
        extraction_status="completed",
    )
    for line in old.line_items.all():
        LineItem.objects.create(
            document=new,
            account_code=line.account_code,
            account_name=line.account_name,
            amount=changes.get(line.account_code, line.amount),
            row_order=line.row_order,
        )
    return new


@pytest.mark.parametrize("verdict", ["dismissed", "false_positive"])
def test_a_dismissed_line_stays_quiet_in_a_new_version_where_only_other_lines_changed(detected, analyst, verdict):
    services.anomaly_feedback_submit(anomaly_id=detected.id, user=analyst, feedback_type=verdict)
    rent = detected.document.line_items.get(account_code="4010-0000").amount
    new = _new_version(detected.document, {"4010-0000": rent + Decimal("10.00")})

    services.documents_detect(document_ids=[new.id])

    line = AnomalyDetection.objects.get(document=new, account_code=detected.account_code)
    assert line.field_value == detected.field_value
    assert not line.is_anomaly and line.status == verdict
    assert line.anomaly_score >= line.threshold  # the model would flag it; the verdict keeps it quiet
    assert not AnomalyDetection.objects.filter(document=detected.document).exists()  # old version's rows gone


def test_new_normal_later_errors_are_measured_against_the_new_level(db, no_model_cache, analyst):
    amounts = level_shift_amounts()
    amounts["7010-0000"][20] = 160000.0  # 2023-09: the new level keyed x10
    load_rows(series_rows(property_code="A1", amounts=amounts, start="2022-01"))
    _redetect()
    step = AnomalyDetection.objects.get(account_code="7010-0000", period__year=2023, period__month=1)
    services.anomaly_feedback_submit(anomaly_id=step.id, user=analyst, feedback_type="new_normal")
    _redetect()

    error = AnomalyDetection.objects.get(account_code="7010-0000", period__year=2023, period__month=9)
    assert error.is_anomaly and error.anomaly_type == "decimal_shift"
    assert error.expected_value == Decimal("16000.00")  # the new level, not a blend with 10,000
    assert "16,000" in error.explanation_text
    flagged_2023 = AnomalyDetection.objects.filter(account_code="7010-0000", period__year=2023, is_anomaly=True)
    assert list(flagged_2023) == [error]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_verdicts_survive_a_batch_reprocessing_job_on_a_real_worker(celery_worker_process):
    """Confirmed stays flagged, a false positive stays quiet, through the batch job path (default engine)."""
    import time

    from batch_jobs.models import BatchReprocessingJob
    from batch_jobs.services import job_submit

    amounts = ledger_amounts()
    amounts["5010-0000"][20] = -amounts["5010-0000"][20]  # electricity sign flip in 2023-09
    load_rows(series_rows(property_code="A1", amounts=amounts, start="2022-01"))
    _redetect()
    repairs = AnomalyDetection.objects.get(is_anomaly=True, account_code="6010-0000")
    flip = AnomalyDetection.objects.get(is_anomaly=True, account_code="5010-0000", period__year=2023, period__month=9)
    user = UserFactory(username="reviewer", feedback_permission=True)
    services.anomaly_feedback_submit(anomaly_id=repairs.id, user=user, feedback_type="confirmed")
    services.anomaly_feedback_submit(anomaly_id=flip.id, user=user, feedback_type="false_positive")

    job = job_submit(
        job_name="after review",
        property_ids=[repairs.property_id],
        date_range_start=None,
        date_range_end=None,
        document_types=[],
        initiated_by=user,
    )
    deadline = time.monotonic() + 90
    while not job.is_finished and time.monotonic() < deadline:
        time.sleep(0.3)
        job.refresh_from_db()
    assert job.status == "completed", (job.status, job.error_message, celery_worker_process.log())
    assert job.successful_documents == 24

    repairs.refresh_from_db()
    flip.refresh_from_db()
    assert (repairs.is_anomaly, repairs.status) == (True, "confirmed")
    assert (flip.is_anomaly, flip.status) == (False, "false_positive")
    assert flip.anomaly_score >= flip.threshold  # the model still flags it: the verdict keeps it quiet
    assert flip.contributions["feedback"]["feedback_type"] == "false_positive"
    assert AnomalyFeedback.objects.filter(learned_applied=True).count() == 2
    assert BatchReprocessingJob.objects.count() == 1
