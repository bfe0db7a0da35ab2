"""POST/GET /api/v1/documents/ and the admin's Import documents page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from documents.models import DocumentUpload, LineItem
from documents.tests.helpers import csv_bytes, statement_rows, xlsx_bytes
from reims.testing import grant_default_portfolio

pytestmark = pytest.mark.django_db
URL = "/api/v1/documents/"


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def importer(api_client):
    user = grant_default_portfolio(User.objects.create_user("importer", password="pw-importer-1"))
    user.user_permissions.add(Permission.objects.get(codename="add_documentupload"))
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def reader(api_client):
    api_client.force_authenticate(grant_default_portfolio(User.objects.create_user("reader", password="pw-reader-1")))
    return api_client


def test_upload_several_files_answers_201_with_the_summary(importer):
    files = [
        _upload("a.csv", csv_bytes(statement_rows())),
        _upload("b.xlsx", xlsx_bytes(statement_rows("P200", "cash_flow"))),
    ]
    response = importer.post(URL, {"file": files}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["files"], body["documents_new"], body["documents_unchanged"], body["line_items_written"]) == (2, 2, 0, 6)
    assert sorted(body["document_ids"]) == sorted(DocumentUpload.objects.values_list("id", flat=True))
    assert body["file_names"] == ["a.csv", "b.xlsx"]
    again = importer.post(URL, {"file": [_upload("a.csv", csv_bytes(statement_rows()))]}, format="multipart")
    assert again.json()["documents_unchanged"] == 1 and again.json()["document_ids"] == []


def test_upload_with_overrides(importer):
    response = importer.post(
        URL,
        {"file": [_upload("a.csv", csv_bytes(statement_rows()))], "property": "OVR1", "period": "2020-06"},
        format="multipart",
    )
    assert response.status_code == 201
    document = DocumentUpload.objects.select_related("property", "period").get()
    assert (document.property.code, document.period.label) == ("OVR1", "2020-06")


def test_bad_file_answers_400_with_the_same_message_and_writes_nothing(importer):
    rows = statement_rows()
    rows[1][7] = "12,5"
    response = importer.post(
        URL,
        {"file": [_upload("good.csv", csv_bytes(statement_rows("P9"))), _upload("bad.csv", csv_bytes(rows))]},
        format="multipart",
    )
    assert response.status_code == 400
    message = "bad.csv: row 3, column amount: not a number: '12,5'"
    assert response.json() == {"detail": message, "file": [message]}
    assert DocumentUpload.objects.count() == 0 and LineItem.objects.count() == 0


def test_bad_override_and_missing_file_answer_400(importer):
    response = importer.post(
        URL, {"file": [_upload("a.csv", csv_bytes(statement_rows()))], "period": "2024-13"}, format="multipart"
    )
    assert response.status_code == 400 and "period" in response.json()
    response = importer.post(URL, {}, format="multipart")
    assert response.status_code == 400 and response.json()["file"] == ["No file was submitted."]


def test_upload_needs_the_add_permission(reader, api_client):
    response = reader.post(URL, {"file": [_upload("a.csv", csv_bytes(statement_rows()))]}, format="multipart")
    assert response.status_code == 403
    assert DocumentUpload.objects.count() == 0


def test_anonymous_users_are_refused(client):
    assert client.get(URL).status_code in (401, 403)
    assert client.post(URL, {"file": _upload("a.csv", csv_bytes(statement_rows()))}).status_code in (401, 403)


def test_list_filters_paginates_and_shows_latest_only(importer):
    rows = statement_rows() + statement_rows(period="2024-02") + statement_rows("P200", "cash_flow")
    importer.post(URL, {"file": [_upload("a.csv", csv_bytes(rows))]}, format="multipart")
    importer.post(URL, {"file": [_upload("b.csv", csv_bytes(statement_rows(rent="1.00")))]}, format="multipart")

    body = importer.get(URL).json()
    assert body["count"] == 3
    first = body["results"][0]
    assert (first["property_code"], first["document_type"], first["period"], first["version"]) == (
        "P100",
        "income_statement",
        "2024-01",
        2,
    )
    assert importer.get(URL, {"latest": "false"}).json()["count"] == 4
    assert importer.get(URL, {"property": "P200"}).json()["results"][0]["document_type"] == "cash_flow"
    assert importer.get(URL, {"document_type": "income_statement", "period_from": "2024-02"}).json()["count"] == 1
    assert importer.get(URL, {"extraction_status": "completed"}).json()["count"] == 3
    page = importer.get(URL, {"page_size": 1, "page": 2}).json()
    assert (page["count"], len(page["results"]), page["results"][0]["period"]) == (3, 1, "2024-02")
    bad = importer.get(URL, {"period_to": "24-1"})
    assert bad.status_code == 400 and "period_to" in bad.json()


def test_detail_has_line_items(reader):
    from documents.services import UploadedSource, documents_import

    summary = documents_import(files=[UploadedSource("a.csv", csv_bytes(statement_rows()))])
    response = reader.get(f"{URL}{summary.document_ids[0]}/")
    assert response.status_code == 200
    body = response.json()
    assert body["line_count"] == 3 and len(body["content_hash"]) == 64
    assert [(i["account_code"], i["amount"], i["is_total"]) for i in body["line_items"]] == [
        ("4010-0000", "1000.00", False),
        ("4050-0000", "250.00", False),
        ("4999-0000", "1250.00", True),
    ]
    assert body["line_items"][0]["page_number"] is None
    assert reader.get(f"{URL}999999/").status_code == 404


# --- Admin ---------------------------------------------------------------------------------------
IMPORT_URL = "/admin/documents/documentupload/import/"


def test_admin_import_page_imports_and_shows_the_summary(admin_client):
    changelist = admin_client.get(reverse("admin:documents_documentupload_changelist"))
    assert IMPORT_URL.encode() in changelist.content  # the "Import documents" link
    response = admin_client.post(
        IMPORT_URL, {"files": [_upload("a.csv", csv_bytes(statement_rows()))], "document_type": "", "period": ""}
    )
    assert response.status_code == 200
    assert b'id="import-summary"' in response.content
    assert DocumentUpload.objects.count() == 1


def test_admin_import_page_shows_the_error_and_writes_nothing(admin_client):
    rows = statement_rows()
    rows[0][4] = "2024-00"
    response = admin_client.post(IMPORT_URL, {"files": [_upload("bad.csv", csv_bytes(rows))]})
    assert response.status_code == 200
    assert b"bad.csv: row 2, column period: bad period &#x27;2024-00&#x27;" in response.content
    assert DocumentUpload.objects.count() == 0


def test_admin_import_page_needs_the_permission(client):
    user = User.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    client.force_login(user)
    assert client.get(IMPORT_URL).status_code == 403


def test_admin_pages_render(admin_client):
    from documents.services import UploadedSource, documents_import

    summary = documents_import(files=[UploadedSource("a.csv", csv_bytes(statement_rows()))])
    document_id = summary.document_ids[0]
    item = LineItem.objects.first()
    for url in (
        reverse("admin:documents_property_changelist"),
        reverse("admin:documents_financialperiod_changelist"),
        reverse("admin:documents_chartofaccount_changelist"),
        reverse("admin:documents_documentupload_changelist") + "?q=P100",
        reverse("admin:documents_documentupload_change", args=[document_id]),
        reverse("admin:documents_lineitem_changelist") + "?q=4010",
        reverse("admin:documents_lineitem_change", args=[item.id]),
        reverse("admin:documents_pdffieldcoordinate_changelist"),
    ):
        assert admin_client.get(url).status_code == 200, url
    assert b"Add document upload" not in admin_client.get(reverse("admin:documents_documentupload_changelist")).content
