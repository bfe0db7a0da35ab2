"""Issue 19, item 7 and 8: an import reports every error of the call at once and writes nothing;
a good import queues detection of what it wrote (``detect=false`` / ``--no-detect`` skip it)."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from anomalies.models import AnomalyDetection
from documents.models import DocumentUpload, LineItem, Property
from documents.parsing.common import MAX_ECHOED, MAX_LISTED_ERRORS
from documents.services import DocumentImportError, UploadedSource, documents_import
from documents.tests.helpers import csv_bytes, statement_rows

URL = "/api/v1/documents/"


def _bad_file() -> bytes:
    """Four mistakes on three rows: a bad amount, a bad period with a bad type, a duplicated account."""
    rows = statement_rows("P1") + statement_rows("P1", period="2024-02")
    rows[1][7] = "12,34.5"  # row 3: amount
    rows[3][4] = "2024-13"  # row 5: period
    rows[3][3] = "income"  # row 5: document_type
    rows[5][5] = rows[4][5]  # row 7: the account of row 6 again
    return csv_bytes(rows)


EXPECTED = [
    "a.csv: row 3, column amount: not a number: '12,34.5'",
    "a.csv: row 5, column document_type: unknown document type 'income' (expected one of balance_sheet, "
    "income_statement, cash_flow, rent_roll, mortgage_statement)",
    "a.csv: row 5, column period: bad period '2024-13' (expected YYYY-MM, month 01-12)",
    "a.csv: row 7, column account_code: account 4050-0000 appears twice in document P1 income_statement 2024-02 "
    "(first at row 6)",
    "b.csv: row 2, column property_code: bad property code 'P 2' (1-20 letters, digits, '_' or '-')",
]


def _files() -> list[UploadedSource]:
    return [UploadedSource("a.csv", _bad_file()), UploadedSource("b.csv", csv_bytes(statement_rows("P 2")[:1]))]


@pytest.mark.django_db
def test_every_error_of_every_file_is_listed_and_nothing_is_written():
    with pytest.raises(DocumentImportError) as caught:
        documents_import(files=[*_files(), UploadedSource("good.csv", csv_bytes(statement_rows("P3")))])
    assert caught.value.lines == EXPECTED
    assert caught.value.message.startswith("5 errors in the import; nothing was imported.")
    assert not DocumentUpload.objects.exists() and not Property.objects.exists() and not LineItem.objects.exists()


@pytest.mark.django_db
def test_the_api_answers_400_with_the_same_list(admin_api_client):
    uploads = [SimpleUploadedFile(f.name, f.data, content_type="text/csv") for f in _files()]
    response = admin_api_client.post(URL, {"file": uploads}, format="multipart")
    assert response.status_code == 400
    assert response.json()["file"] == EXPECTED
    assert "5 errors" in response.json()["detail"]
    assert not DocumentUpload.objects.exists()


@pytest.mark.django_db
def test_the_command_exits_non_zero_listing_every_error(tmp_path):
    for source in _files():
        (tmp_path / source.name).write_bytes(source.data)
    with pytest.raises(CommandError) as caught:
        call_command("import_documents", str(tmp_path), "--no-progress")
    assert str(caught.value).splitlines() == ["5 errors in the import; nothing was imported.", *EXPECTED]


@pytest.mark.django_db
def test_the_admin_form_lists_every_error(admin_client):
    uploads = [SimpleUploadedFile(f.name, f.data, content_type="text/csv") for f in _files()]
    response = admin_client.post(reverse("admin:documents_documentupload_import"), {"files": uploads, "detect": "on"})
    html = response.content.decode()
    listed = html.split('id="import-errors"')[1].split("</ol>")[0]
    assert listed.count("<li>") == len(EXPECTED)
    assert "a.csv: row 7, column account_code" in listed and "b.csv: row 2, column property_code" in listed
    assert not DocumentUpload.objects.exists()


@pytest.mark.django_db
def test_a_hundred_errors_are_listed_then_the_count_of_the_rest():
    rows = [statement_rows("P1", period=f"2024-{m:02d}")[0] for m in range(1, 13)] * 15  # 180 rows
    for row in rows:
        row[7] = "n/a"
    with pytest.raises(DocumentImportError) as caught:
        documents_import(files=[UploadedSource("many.csv", csv_bytes(rows))])
    lines = caught.value.lines
    assert len(lines) == MAX_LISTED_ERRORS + 1
    assert lines[0] == "many.csv: row 2, column amount: not a number: 'n/a'"
    assert lines[-1] == "and 80 more"


@pytest.mark.django_db
def test_an_error_echoes_at_most_200_characters_of_the_cell():
    rows = statement_rows("P1")
    rows[0][7] = "9" * 5000 + "x"
    rows[1][3] = "y" * 100_000
    with pytest.raises(DocumentImportError) as caught:
        documents_import(files=[UploadedSource("long.csv", csv_bytes(rows))])
    amount, document_type = caught.value.lines
    assert "9" * MAX_ECHOED in amount and "9" * (MAX_ECHOED + 1) not in amount and "(5,001 characters)" in amount
    assert "y" * MAX_ECHOED in document_type and "y" * (MAX_ECHOED + 1) not in document_type
    assert len(amount) < 400 and len(document_type) < 500


@pytest.mark.django_db
def test_an_import_queues_detection_after_commit_and_says_so(django_capture_on_commit_callbacks):
    sources = [UploadedSource("p.csv", csv_bytes(statement_rows("P1") + statement_rows("P2")))]
    with django_capture_on_commit_callbacks() as callbacks:
        summary = documents_import(files=sources)
    assert len(callbacks) == 1 and summary.detection_requested  # sent once the transaction commits
    with django_capture_on_commit_callbacks() as callbacks:
        skipped = documents_import(files=[UploadedSource("q.csv", csv_bytes(statement_rows("P3")))], detect=False)
    assert callbacks == [] and skipped.detection_tasks == 0
    assert "detection not queued" in skipped.describe()
    with django_capture_on_commit_callbacks() as callbacks:
        unchanged = documents_import(files=sources)
    assert callbacks == [] and "nothing new to detect" in unchanged.describe()


@pytest.mark.django_db
def test_the_api_takes_detect_false(admin_api_client, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("p.csv", csv_bytes(statement_rows("P1")), content_type="text/csv")
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_api_client.post(URL, {"file": [upload], "detect": "false"}, format="multipart")
    assert response.status_code == 201, response.json()
    assert callbacks == [] and response.json()["detection"] == "detection not queued (asked not to)"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_imported_documents_are_detected_by_a_real_worker(celery_worker_process, admin_api_client, tmp_path):
    rows = [
        row
        for month in range(1, 13)
        for row in statement_rows("W1", period=f"2024-{month:02d}", rent="9000.00" if month == 9 else "1000.00")
    ]
    upload = SimpleUploadedFile("w.csv", csv_bytes(rows), content_type="text/csv")
    response = admin_api_client.post(URL, {"file": [upload]}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["detection_tasks"] == 1 and body["detection_documents"] == 12
    assert "queued for 12 document(s)" in body["detection"] and "anomaly queue" in body["detection"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and DocumentUpload.objects.filter(last_detected_at__isnull=True).exists():
        time.sleep(0.2)  # waiting on the worker's state, not on a guess of its duration
    assert DocumentUpload.objects.filter(last_detected_at__isnull=True).count() == 0, celery_worker_process.log()
    # Every line of the 12 statements has its row (the total with its footing result), and the x9 rent is flagged.
    assert AnomalyDetection.objects.filter(document__property__code="W1").count() == 36
    flagged = AnomalyDetection.objects.filter(is_anomaly=True, account_code="4010-0000")
    assert [d.period.label for d in flagged] == ["2024-09"]
    skipped = admin_api_client.post(
        URL,
        {"file": [SimpleUploadedFile("x.csv", csv_bytes(statement_rows("W2")), content_type="text/csv")], "detect": "false"},
        format="multipart",
    )
    assert skipped.status_code == 201 and skipped.json()["detection_tasks"] == 0
