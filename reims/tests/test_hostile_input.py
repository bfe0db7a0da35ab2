"""Statement data is hostile input: imported markup, quotes and URLs come out escaped on every
console page and API response, invisible characters are dropped at import, and oversized names are
refused with a clear error."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from rest_framework.test import APIClient

from anomalies.models import AnomalyDetection, AnomalyExplanation, AnomalyFeedback
from batch_jobs.models import BatchReprocessingJob
from documents.models import DocumentUpload, LineItem, Property
from documents.services import UploadedSource, documents_import
from documents.tests.helpers import csv_bytes
from kernel.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

ATTRIBUTE_BREAK = 'X" onmouseover="alert(1)'
SINGLE_QUOTE_BREAK = "Y' onfocus='alert(5)"
TAG = "<img src=x onerror=alert(2)>"
SCRIPT = "</script><script>alert(3)</script>"
JS_URL = "javascript:alert(4)"
BIDI = "\u202eRENT\u202c"
ZERO_WIDTH = "40\u200b10"
FILE_NAME = '"><svg onload=alert(6)>.csv'
#: What must never be found verbatim in an HTML page (each breaks out of text or an attribute).
RAW_MARKUP = (ATTRIBUTE_BREAK, '" onmouseover="', "' onfocus='", TAG, "<script>alert", "<svg onload")
INVISIBLE = ("\u202e", "\u202c", "\u200b")


def _hostile_rows() -> list[list[str]]:
    accounts = [
        (ATTRIBUTE_BREAK, TAG),
        (SINGLE_QUOTE_BREAK, SCRIPT),
        (TAG, ATTRIBUTE_BREAK),
        (JS_URL, f"{JS_URL} {BIDI}"),
        ("4010", f"Zero{ZERO_WIDTH}width"),
    ]
    return [
        ["HOSTILE1", TAG, "retail", "income_statement", f"2024-0{month}", code, name, f"-{100 * month}.00", "false"]
        for month in (1, 2, 3)
        for code, name in accounts
    ]


@pytest.fixture
def hostile(admin_user):
    documents_import(files=[UploadedSource(name=FILE_NAME, data=csv_bytes(_hostile_rows()))], channel="command")
    # Detections as a detection pass writes them, every line flagged (the review page's chart
    # walks the account's series).
    for line in LineItem.objects.select_related("document__property", "document__period"):
        document = line.document
        detection = AnomalyDetection.objects.create(
            line_item=line,
            document=document,
            property=document.property,
            document_type=document.document_type,
            period=document.period,
            account_code=line.account_code,
            field_value=line.amount,
            expected_value=Decimal("1.00"),
            anomaly_score=90.0,
            threshold=50.0,
            is_anomaly=True,
            severity="high",
            detector="ensemble",
            explanation_text=f"{line.account_name} {TAG}",
            contributions={TAG: 1.0, ATTRIBUTE_BREAK: 0.5},
        )
        AnomalyExplanation.objects.create(
            anomaly=detection,
            summary=f"{line.account_name} {ATTRIBUTE_BREAK}",
            root_cause_type="spike",
            contributing_factors=[{"feature": TAG, "description": ATTRIBUTE_BREAK, "impact": 0.4}],
            suggested_actions=[SCRIPT],
            explanation_method="rules",
        )
    client = APIClient()
    client.force_authenticate(admin_user)
    first = AnomalyDetection.objects.order_by("id").first()
    response = client.post(
        f"/api/v1/anomalies/{first.pk}/feedback", {"feedback_type": "confirmed", "notes": TAG}, format="json"
    )
    assert response.status_code == 201, response.content
    response = client.post("/api/v1/batch-reprocessing/reprocess", {"job_name": ATTRIBUTE_BREAK}, format="json")
    assert response.status_code == 201, response.content
    return Property.objects.get(code="HOSTILE1")


def _assert_escaped(url: str, response) -> None:
    assert response.status_code == 200, (url, response.status_code)
    body = response.content.decode()
    found = [raw for raw in RAW_MARKUP if raw in body]
    assert not found, (url, found)
    assert 'href="javascript:' not in body and 'src="javascript:' not in body, url
    assert not [c for c in INVISIBLE if c in body], url
    assert "script-src 'self'" in response["Content-Security-Policy"], url


def _console_pages(prop: Property) -> list[str]:
    pages = ["/admin/"]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(
            reverse("admin:{}_{}_changelist".format(*info)) + ("?flagged=all" if info[1] == "anomalydetection" else "")
        )
    pages.append(reverse("admin:documents_property_change", args=[prop.pk]))
    pages += [
        reverse("admin:anomalies_anomalydetection_change", args=[pk])
        for pk in AnomalyDetection.objects.values_list("pk", flat=True)
    ]
    pages += [
        reverse("admin:anomalies_anomalyexplanation_change", args=[pk])
        for pk in AnomalyExplanation.objects.values_list("pk", flat=True)[:2]
    ]
    pages += [
        reverse("admin:documents_documentupload_change", args=[pk])
        for pk in DocumentUpload.objects.values_list("pk", flat=True)
    ]
    pages += [
        reverse("admin:documents_lineitem_change", args=[pk]) for pk in LineItem.objects.values_list("pk", flat=True)[:5]
    ]
    pages.append(reverse("admin:anomalies_anomalyfeedback_change", args=[AnomalyFeedback.objects.get().pk]))
    pages.append(reverse("admin:batch_jobs_batchreprocessingjob_change", args=[BatchReprocessingJob.objects.get().pk]))
    return pages


def test_every_console_page_prints_hostile_statement_text_escaped(hostile, admin_client):
    for url in _console_pages(hostile):
        _assert_escaped(url, admin_client.get(url))


def test_review_chart_label_cannot_be_closed_from_an_account_code(hostile, admin_client):
    detection = AnomalyDetection.objects.filter(account_code=ATTRIBUTE_BREAK).first()
    page = admin_client.get(reverse("admin:anomalies_anomalydetection_change", args=[detection.pk])).content.decode()
    assert 'aria-label="X&quot; onmouseover=&quot;alert(1)' in page


def test_api_and_browsable_api_keep_hostile_text_as_data(hostile, admin_client):
    lists = [
        "/api/v1/anomalies/?is_anomaly=true",
        "/api/v1/documents/",
        "/api/v1/selection-log/",
        "/api/v1/batch-reprocessing/jobs",
        "/api/v1/model-cache/",
    ]
    detection = AnomalyDetection.objects.filter(account_code=ATTRIBUTE_BREAK).first()
    document = DocumentUpload.objects.first()
    details = [f"/api/v1/anomalies/{detection.pk}", f"/api/v1/documents/{document.pk}/"]
    for url in lists + details:
        response = admin_client.get(url, HTTP_ACCEPT="application/json")
        assert response["Content-Type"].startswith("application/json"), url
        assert response.status_code == 200, url
        json.loads(response.content)  # well-formed: the payloads are JSON strings, not markup
        _assert_escaped(url, admin_client.get(url, {"format": "api"}))
    body = admin_client.get(details[0], HTTP_ACCEPT="application/json").json()
    assert body["account_code"] == ATTRIBUTE_BREAK  # stored and served as the client sent it


def test_invisible_characters_are_dropped_from_names_and_refused_in_codes(hostile):
    assert LineItem.objects.filter(account_name=f"{JS_URL} RENT").exists()
    assert LineItem.objects.filter(account_name="Zero4010width").exists()
    row = ["HOSTILE2", "Plaza", "retail", "income_statement", "2024-01", ZERO_WIDTH, "Rent", "1.00", "false"]
    with pytest.raises(ApplicationError, match=r"row 2, column account_code: invisible character"):
        documents_import(files=[UploadedSource(name="zw.csv", data=csv_bytes([row]))], channel="command")


@pytest.mark.parametrize("column", [5, 6, 1])
def test_ten_kilobyte_names_are_refused_whole_with_the_row_and_column(column):
    row = ["HUGE1", "Plaza", "retail", "income_statement", "2024-01", "4010", "Rent", "1.00", "false"]
    row[column] = "N" * 10_000
    with pytest.raises(ApplicationError, match=r"^huge\.csv: row 2, column \w+: longer than \d+ characters$"):
        documents_import(files=[UploadedSource(name="huge.csv", data=csv_bytes([row]))], channel="command")
    assert not Property.objects.filter(code="HUGE1").exists()
