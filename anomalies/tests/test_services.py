"""Detection services end to end on real data in the database (no mocks of our code)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyExplanation, ModelSelectionLog
from anomalies.tests.conftest import ledger_amounts
from anomalies.tests.factories import load_rows, series_rows
from documents.demo.generator import generate_portfolio
from documents.models import DocumentUpload, LineItem
from kernel.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


def _doc_ids(ids: dict, code: str = "A1", doc_type: str = "income_statement") -> list[int]:
    return [v for (c, t, _), v in sorted(ids.items()) if c == code and t == doc_type]


def test_decimal_shift_is_flagged_with_what_a_reviewer_needs(ledger, shifted_period):
    summary = services.documents_detect(document_ids=_doc_ids(ledger))

    assert summary.documents_ok == 24 and summary.documents_failed == 0
    flagged = AnomalyDetection.objects.get(is_anomaly=True)
    assert (flagged.account_code, flagged.period.label) == ("6010-0000", shifted_period)
    assert flagged.anomaly_type == "decimal_shift"
    assert flagged.severity in ("critical", "high")
    assert flagged.anomaly_score >= flagged.threshold
    assert Decimal("2500") < flagged.expected_value < Decimal("3500")
    assert flagged.model_version and flagged.detector.startswith("pyod:")
    assert flagged.contributions["features"], "per-feature contributions are stored"
    assert "decimal shift" in flagged.explanation_text
    explanation = flagged.explanations.get()
    assert explanation.root_cause_type == "decimal_shift"
    assert explanation.suggested_actions and explanation.summary == flagged.explanation_text
    assert [a["evidence"] for a in explanation.shap_values["attributions"]][:2] == [
        "vs same month last year",
        "vs surrounding months",
    ]  # real SHAP values (anomalies/tests/test_attribution.py), never a placeholder
    # Every scored line is stored, flagged or not; only the flagged one has an explanation row.
    assert AnomalyDetection.objects.count() == LineItem.objects.count() == 72
    assert AnomalyExplanation.objects.count() == 1
    assert summary.anomalies == 1 and summary.anomalies_by_property == {"A1": 1}
    assert summary.per_document[flagged.document_id].anomalies == 1
    assert set(DocumentUpload.objects.values_list("last_detected_at", flat=True)) != {None}
    assert ModelSelectionLog.objects.filter(account_code="6010-0000").exists()


def test_redetection_is_idempotent_and_a_rerun_over_unchanged_inputs_writes_nothing(ledger):
    doc_ids = _doc_ids(ledger)
    first = services.documents_detect(document_ids=doc_ids)
    assert first.rows_written >= first.lines_scored > 0
    before = sorted(AnomalyDetection.objects.values_list("id", "account_code", "is_anomaly", "anomaly_score"))
    stamps = sorted(AnomalyDetection.objects.values_list("id", "updated_at"))
    rerun = services.documents_detect(document_ids=doc_ids)
    assert rerun.rows_written == 0
    assert (rerun.lines_scored, rerun.anomalies) == (first.lines_scored, first.anomalies)
    assert sorted(AnomalyDetection.objects.values_list("id", "updated_at")) == stamps  # not even touched
    assert services.documents_detect(document_ids=doc_ids[:5]).rows_written == 0
    after = sorted(AnomalyDetection.objects.values_list("id", "account_code", "is_anomaly", "anomaly_score"))
    assert after == before  # same rows, same ids (a link to an anomaly stays valid)
    assert AnomalyExplanation.objects.count() == 1


def test_a_new_version_replaces_the_old_versions_detections(ledger, shifted_period):
    services.documents_detect(document_ids=_doc_ids(ledger))
    old = DocumentUpload.objects.get(period__year=2023, period__month=6)
    # The corrected statement arrives as version 2.
    old.is_latest = False
    old.save(update_fields=["is_latest"])
    new = DocumentUpload.objects.create(
        property=old.property,
        document_type=old.document_type,
        period=old.period,
        version=2,
        content_hash="v2",
        extraction_status="completed",
    )
    for line in old.line_items.all():
        amount = Decimal("3010.00") if line.account_code == "6010-0000" else line.amount
        LineItem.objects.create(
            document=new,
            account_code=line.account_code,
            account_name=line.account_name,
            amount=amount,
            row_order=line.row_order,
        )

    summary = services.documents_detect(document_ids=[old.id, new.id])

    assert summary.per_document[old.id].status == "skipped"
    assert "latest" in summary.per_document[old.id].reason
    assert summary.per_document[new.id].status == "ok"
    assert not AnomalyDetection.objects.filter(document=old).exists()
    assert not AnomalyDetection.objects.filter(is_anomaly=True).exists()


def test_unknown_and_empty_documents_are_skipped_and_the_rest_goes_on(ledger):
    empty = DocumentUpload.objects.create(
        property_id=DocumentUpload.objects.first().property_id,
        document_type="rent_roll",
        period=DocumentUpload.objects.first().period,
        content_hash="empty",
        extraction_status="completed",
    )
    doc_ids = _doc_ids(ledger)[:3]
    summary = services.documents_detect(document_ids=[*doc_ids, 999999, empty.id])
    assert summary.per_document[999999].status == "skipped"
    assert summary.per_document[empty.id].reason == "no line items"
    assert [summary.per_document[d].status for d in doc_ids] == ["ok"] * 3
    assert summary.documents_skipped == 2


def test_pyod_flag_off_uses_the_statistical_detector_and_says_so(ledger, monkeypatch, shifted_period):
    monkeypatch.setenv("FEATURE_FLAG_PYOD", "false")
    services.documents_detect(document_ids=_doc_ids(ledger))
    detectors = set(AnomalyDetection.objects.values_list("detector", flat=True))
    assert detectors == {"statistical:robust_z"}
    flagged = AnomalyDetection.objects.get(is_anomaly=True)
    assert flagged.period.label == shifted_period  # the statistics alone still find the error
    assert not ModelSelectionLog.objects.exists()


def test_insufficient_history_is_reported_not_flagged(db, no_model_cache):
    # Three months of a brand-new account next to a long one, plus one wild value in the short one.
    amounts = ledger_amounts(shift_month=None)
    amounts["6500-0000"] = [None] * 21 + [100.0, 120.0, 90000.0]
    ids = load_rows(series_rows(property_code="A1", amounts=amounts, start="2022-01"))

    summary = services.documents_detect(document_ids=_doc_ids(ids))

    short = AnomalyDetection.objects.filter(account_code="6500-0000")
    assert short.count() == 3
    assert not short.filter(is_anomaly=True).exists()
    assert set(short.values_list("detector", flat=True)) == {"insufficient_history"}
    assert "Insufficient history" in short.first().explanation_text
    assert summary.insufficient_history == 3


def test_detection_input_of_a_chunk_costs_a_handful_of_queries(ledger):
    doc_ids = _doc_ids(ledger)
    from anomalies.selectors import portfolio_peer_stats

    portfolio_peer_stats()  # the portfolio's peer aggregate: one query per state of the portfolio
    with CaptureQueriesContext(connection) as few:
        services.documents_detect(document_ids=doc_ids[16:18])  # includes the flagged month
    with CaptureQueriesContext(connection) as many:
        services.documents_detect(document_ids=doc_ids)
    # 24 documents cost what 2 cost, give or take a bulk batch (SQLite caps the parameters per query).
    assert len(many) <= len(few) + 2 <= 25


def test_detection_run_validates_its_filters(db):
    with pytest.raises(ApplicationError, match="unknown property code"):
        services.detection_run(property_codes=["NOPE"])
    with pytest.raises(ApplicationError, match="YYYY-MM"):
        services.detection_run(since="2023-13")
    with pytest.raises(ApplicationError, match="after"):
        services.detection_run(since="2023-05", until="2023-01")


def test_detection_run_limits_periods_and_skips_what_is_done(ledger):
    progress: list[tuple[int, int]] = []
    summary = services.detection_run(
        property_codes=["A1"], since="2023-01", until="2023-06", progress=lambda d, t: progress.append((d, t))
    )
    assert len(summary.per_document) == 6
    assert progress[0] == (0, 6) and progress[-1] == (6, 6)
    periods = set(AnomalyDetection.objects.values_list("period__month", "period__year"))
    assert periods == {(m, 2023) for m in range(1, 7)}

    # Without --all the documents already detected are not redone; the others are.
    summary = services.detection_run()
    assert len(summary.per_document) == 18
    assert services.detection_run().per_document == {}
    assert len(services.detection_run(all_documents=True).per_document) == 24


def test_generated_portfolio_end_to_end(db, no_model_cache):
    portfolio = generate_portfolio(properties=2, months=24, seed=11)
    load_rows(portfolio.rows)

    summary = services.detection_run(all_documents=True)

    assert summary.documents_failed == 0
    assert summary.documents_ok == DocumentUpload.objects.count()
    detail_lines = LineItem.objects.filter(is_total=False).count()
    scored = AnomalyDetection.objects.filter(line_item__is_total=False).count()
    assert scored == detail_lines  # every detail line is scored (or reported as insufficient history)
    flagged = set(
        AnomalyDetection.objects.filter(is_anomaly=True).values_list(
            "property__code", "document_type", "period__year", "period__month", "account_code"
        )
    )
    labelled = {
        (lab["property_code"], lab["document_type"], *map(int, lab["period"].split("-")), lab["account_code"])
        for lab in portfolio.labels
    }
    hits = len(flagged & labelled)
    assert hits >= 0.5 * len(labelled), f"{hits} of {len(labelled)} labelled anomalies flagged"
    assert not AnomalyDetection.objects.filter(is_anomaly=True, explanations__isnull=True).exists()
    assert sum(summary.anomalies_by_property.values()) == summary.anomalies


def test_model_cache_provider_is_used_when_enabled(ledger, monkeypatch):
    from modelcache.models import AnomalyModelCache
    from modelcache.services import reset_model_cache

    monkeypatch.setenv("MODEL_CACHE_ENABLED", "true")
    reset_model_cache()
    doc_ids = _doc_ids(ledger)
    services.documents_detect(document_ids=doc_ids)
    cached = AnomalyModelCache.objects.count()
    assert cached >= 1  # one model per series holding a candidate
    first = sorted(AnomalyDetection.objects.values_list("id", "anomaly_score", "detector"))
    selections = ModelSelectionLog.objects.count()
    reset_model_cache()  # a new process: the second pass reads the database tier
    services.documents_detect(document_ids=doc_ids)
    assert AnomalyModelCache.objects.count() == cached  # nothing retrained
    assert sorted(AnomalyDetection.objects.values_list("id", "anomaly_score", "detector")) == first
    assert ModelSelectionLog.objects.count() == selections  # no model selected again


def _reads_lines(queries: CaptureQueriesContext) -> bool:
    return any('FROM "line_items"' in q["sql"] for q in queries.captured_queries)


def test_a_propertys_later_chunks_reuse_its_context_until_its_data_changes(ledger, analyst):
    doc_ids = _doc_ids(ledger)
    whole = services.documents_detect(document_ids=doc_ids)
    reference = sorted(AnomalyDetection.objects.values_list("document_id", "account_code", "anomaly_score", "is_anomaly"))
    AnomalyDetection.objects.all().delete()

    services.documents_detect(document_ids=doc_ids[:10])
    with CaptureQueriesContext(connection) as second:
        chunk = services.documents_detect(document_ids=doc_ids[10:20])
    assert not _reads_lines(second)  # the property's lines are neither read nor scored again
    assert chunk.documents_ok == 10 and chunk.rows_written > 0
    services.documents_detect(document_ids=doc_ids[20:])
    after = sorted(AnomalyDetection.objects.values_list("document_id", "account_code", "anomaly_score", "is_anomaly"))
    assert after == reference and whole.documents_ok == len(doc_ids)

    # A verdict is a new data version of the property: the next chunk computes its context afresh.
    services.anomaly_feedback_submit(
        anomaly_id=AnomalyDetection.objects.get(is_anomaly=True).id, user=analyst, feedback_type="dismissed"
    )
    with CaptureQueriesContext(connection) as after_verdict:
        services.documents_detect(document_ids=doc_ids[:10])
    assert _reads_lines(after_verdict)
