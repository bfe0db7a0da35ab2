"""The detection task through a real Celery worker process (one test: workers are slow to start)."""

from __future__ import annotations

import pytest

from anomalies.models import AnomalyDetection
from anomalies.tasks import detect_documents
from anomalies.tests.conftest import ledger_amounts
from anomalies.tests.factories import load_rows, series_rows
from documents.models import DocumentUpload


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_detect_documents_task_runs_in_a_worker(celery_worker_process):
    ids = load_rows(series_rows(property_code="W1", amounts=ledger_amounts(), start="2022-01"))
    doc_ids = sorted(ids.values())

    result = detect_documents.apply_async(args=[doc_ids]).get(timeout=120)

    assert result["documents_ok"] == 24 and result["anomalies"] == 1
    assert result["per_document"][str(doc_ids[0])]["status"] == "ok"
    assert AnomalyDetection.objects.count() == 72
    assert not DocumentUpload.objects.filter(last_detected_at__isnull=True).exists()
