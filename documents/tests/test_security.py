"""Imports under attack or misuse: oversized uploads, throttling, hostile names, and the import log."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from documents.models import ChartOfAccount, DocumentUpload, LineItem, Property
from documents.services import UploadedSource, documents_import
from documents.tests.helpers import csv_bytes, statement_rows
from reims.testing import grant_default_portfolio

pytestmark = pytest.mark.django_db
URL = "/api/v1/documents/"
ADMIN_IMPORT_URL = "/admin/documents/documentupload/import/"
MB = 1024 * 1024


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def _padded_csv(size: int) -> bytes:
    """A valid canonical CSV of about ``size`` bytes (long account names on many rows)."""
    rows = []
    index = 0
    data = csv_bytes(rows)
    while len(data) < size:
        chunk = [
            ["BIG1", "Big", "office", "income_statement", "2024-01", f"{5000 + i:04d}-{index:04d}", "x" * 190, "1.00", ""]
            for i in range(200)
        ]
        index += 1
        rows.extend(chunk)
        data = csv_bytes(rows)
    return data


def _nothing_written() -> bool:
    return not (DocumentUpload.objects.exists() or LineItem.objects.exists() or Property.objects.exists())


@pytest.fixture
def importer(api_client):
    user = grant_default_portfolio(User.objects.create_user("importer", password="pw-importer-1"))
    user.user_permissions.add(Permission.objects.get(codename="add_documentupload"))
    api_client.force_authenticate(user)
    api_client.user = user
    return api_client


def _rates(**rates: str) -> dict:
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    return {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**current, **rates}}


# --- Upload size ---------------------------------------------------------------------------------
@override_settings(MAX_UPLOAD_SIZE_MB=1)
def test_api_upload_over_the_limit_answers_413_json_and_writes_nothing(importer, event_lines):
    response = importer.post(URL, {"file": [_upload("big.csv", _padded_csv(int(1.5 * MB)))]}, format="multipart")
    assert response.status_code == 413
    body = response.json()
    assert "limit is 1 MB" in body["detail"] and body["file"] == [body["detail"]]
    assert _nothing_written()
    (line,) = [line for line in event_lines() if line["event"] == "documents_import"]
    assert (line["outcome"], line["channel"], line["level"]) == ("rejected", "api", "WARNING")
    assert "limit is 1 MB" in line["reason"]


@override_settings(MAX_UPLOAD_SIZE_MB=1)
def test_files_over_the_limit_are_refused_even_when_the_request_size_looks_acceptable(importer):
    # Content-Length is within the envelope allowance; the files themselves are over 1 MB together.
    data = _padded_csv(MB - 100 * 1024)
    files = [_upload("a.csv", data), _upload("b.csv", data[: 150 * 1024])]
    response = importer.post(URL, {"file": files}, format="multipart")
    assert response.status_code == 413, response.content
    assert _nothing_written()


@override_settings(MAX_UPLOAD_SIZE_MB=1)
def test_a_file_just_under_the_limit_is_imported(importer):
    response = importer.post(URL, {"file": [_upload("ok.csv", _padded_csv(MB - 200 * 1024))]}, format="multipart")
    assert response.status_code == 201, response.content
    assert DocumentUpload.objects.count() == 1


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_oversized_form_fields_are_a_clean_413_not_a_server_error(importer):
    # Django raises RequestDataTooBig for form data above DATA_UPLOAD_MAX_MEMORY_SIZE.
    response = importer.post(
        URL, {"file": [_upload("a.csv", csv_bytes(statement_rows()))], "period": "2" * 5000}, format="multipart"
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert _nothing_written()


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=3)
def test_too_many_form_fields_are_a_clean_400(importer):
    data = {"file": [_upload("a.csv", csv_bytes(statement_rows()))], **{f"junk{i}": "x" for i in range(10)}}
    response = importer.post(URL, data, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed upload")
    assert _nothing_written()


@override_settings(MAX_UPLOAD_SIZE_MB=1)
def test_admin_import_page_refuses_an_oversized_upload_with_413(admin_client, event_lines):
    response = admin_client.post(ADMIN_IMPORT_URL, {"files": [_upload("big.csv", _padded_csv(int(1.5 * MB)))]})
    assert response.status_code == 413
    assert b'id="import-error"' in response.content and b"limit is 1 MB" in response.content
    assert _nothing_written()
    (line,) = [line for line in event_lines() if line["event"] == "documents_import"]
    assert (line["outcome"], line["channel"]) == ("rejected", "admin")


@override_settings(MAX_UPLOAD_SIZE_MB=1)
def test_admin_import_page_checks_the_files_received(admin_client):
    data = _padded_csv(MB - 100 * 1024)
    response = admin_client.post(ADMIN_IMPORT_URL, {"files": [_upload("a.csv", data), _upload("b.csv", data[: 150 * 1024])]})
    assert response.status_code == 413
    assert _nothing_written()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_admin_import_page_refuses_oversized_form_fields(admin_client):
    response = admin_client.post(
        ADMIN_IMPORT_URL, {"files": [_upload("a.csv", csv_bytes(statement_rows()))], "period": "2" * 5000}
    )
    assert response.status_code == 413
    assert _nothing_written()


def test_admin_import_page_needs_the_import_permission(client):
    user = User.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    client.force_login(user)
    response = client.post(ADMIN_IMPORT_URL, {"files": [_upload("a.csv", csv_bytes(statement_rows()))]})
    assert response.status_code == 403
    assert _nothing_written()


# --- Throttling ----------------------------------------------------------------------------------
def test_imports_over_the_rate_answer_429_and_write_nothing(importer, api_client, event_lines):
    with override_settings(REST_FRAMEWORK=_rates(document_import="2/min")):
        for period in ("2024-01", "2024-02"):
            response = importer.post(
                URL, {"file": [_upload("a.csv", csv_bytes(statement_rows(period=period)))]}, format="multipart"
            )
            assert response.status_code == 201
        refused = importer.post(
            URL, {"file": [_upload("a.csv", csv_bytes(statement_rows(period="2024-03")))]}, format="multipart"
        )
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) > 0
        assert DocumentUpload.objects.count() == 2
        # Reading is not throttled.
        assert importer.get(URL).status_code == 200
        # Another user has a budget of their own.
        other = grant_default_portfolio(User.objects.create_user("other", password="pw-other-1"))
        other.user_permissions.add(Permission.objects.get(codename="add_documentupload"))
        api_client.force_authenticate(other)
        again = api_client.post(
            URL, {"file": [_upload("a.csv", csv_bytes(statement_rows(period="2024-03")))]}, format="multipart"
        )
        assert again.status_code == 201
    outcomes = [line["outcome"] for line in event_lines() if line["event"] == "documents_import"]
    assert outcomes == ["ok", "ok", "throttled", "ok"]


def test_admin_import_page_shares_the_import_rate(admin_client, admin_user, api_client, event_lines):
    with override_settings(REST_FRAMEWORK=_rates(document_import="2/min")):
        first = admin_client.post(ADMIN_IMPORT_URL, {"files": [_upload("a.csv", csv_bytes(statement_rows()))]})
        assert first.status_code == 200 and b'id="import-summary"' in first.content
        api_client.force_authenticate(admin_user)
        files = [_upload("b.csv", csv_bytes(statement_rows(period="2024-02")))]
        assert api_client.post(URL, {"file": files}, format="multipart").status_code == 201
        refused = admin_client.post(
            ADMIN_IMPORT_URL, {"files": [_upload("c.csv", csv_bytes(statement_rows(period="2024-03")))]}
        )
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        assert b"Too many imports" in refused.content
        assert admin_client.get(ADMIN_IMPORT_URL).status_code == 200  # the page itself stays readable
    assert DocumentUpload.objects.count() == 2
    outcomes = [(line["channel"], line["outcome"]) for line in event_lines() if line["event"] == "documents_import"]
    assert outcomes == [("admin", "ok"), ("api", "ok"), ("admin", "throttled")]


def test_failed_imports_count_towards_the_rate(importer):
    with override_settings(REST_FRAMEWORK=_rates(document_import="1/min")):
        assert importer.post(URL, {"file": [_upload("bad.txt", b"x")]}, format="multipart").status_code == 400
        response = importer.post(URL, {"file": [_upload("a.csv", csv_bytes(statement_rows()))]}, format="multipart")
        assert response.status_code == 429
    assert _nothing_written()


# --- Hostile and unusual content -------------------------------------------------------------------
SQL_LOOKING = "'; DROP TABLE line_items; --"


def test_sql_looking_names_are_stored_as_plain_text(importer):
    rows = statement_rows()
    rows[0][1] = f"Plaza {SQL_LOOKING}"
    rows[0][6] = f"Rent {SQL_LOOKING}"
    response = importer.post(URL, {"file": [_upload("a.csv", csv_bytes(rows))]}, format="multipart")
    assert response.status_code == 201, response.content
    assert Property.objects.get(code="P100").name == f"Plaza {SQL_LOOKING}"
    assert LineItem.objects.filter(account_name=f"Rent {SQL_LOOKING}").count() == 1
    assert ChartOfAccount.objects.count() == 3  # the table is still there and whole


def test_sql_looking_property_codes_are_refused_by_the_format(importer):
    rows = statement_rows(property_code="P1' OR '1'='1")
    response = importer.post(URL, {"file": [_upload("a.csv", csv_bytes(rows))]}, format="multipart")
    assert response.status_code == 400
    assert "column property_code" in response.json()["detail"]
    assert _nothing_written()


def test_sql_looking_filters_are_refused_or_match_nothing(importer):
    importer.post(URL, {"file": [_upload("a.csv", csv_bytes(statement_rows()))]}, format="multipart")
    assert importer.get(URL, {"property": "P100' OR '1'='1"}).json()["count"] == 0
    assert importer.get(URL, {"property": "P100,' OR 1=1 --"}).json()["count"] == 1  # only the real code
    for name, value in (("period_from", "2024-01' OR '1'='1"), ("document_type", "x' OR 1=1"), ("latest", "1 OR 1")):
        response = importer.get(URL, {name: value})
        assert response.status_code == 400, (name, response.content)
        assert name in response.json()
    assert DocumentUpload.objects.count() == 1


def test_unicode_names_round_trip(importer):
    rows = statement_rows()
    rows[0][1] = "Tour Eiffel Bürohaus — 東京タワー 🏢"
    rows[0][6] = "Loyer de base (édition spéciale) Ωμέγα"
    response = importer.post(URL, {"file": [_upload("relevé-été-東京.csv", csv_bytes(rows))]}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["file_names"] == ["relevé-été-東京.csv"]
    detail = importer.get(f"{URL}{response.json()['document_ids'][0]}/").json()
    assert detail["property_name"] == "Tour Eiffel Bürohaus — 東京タワー 🏢"
    assert detail["file_name"] == "relevé-été-東京.csv"
    assert detail["line_items"][0]["account_name"] == "Loyer de base (édition spéciale) Ωμέγα"


def test_unicode_and_control_characters_in_codes_are_refused(importer):
    for code in ("P１００", "P100\x00", "ＰＲＯＰ", "P\u200b100"):
        response = importer.post(
            URL, {"file": [_upload("a.csv", csv_bytes(statement_rows(property_code=code)))]}, format="multipart"
        )
        assert response.status_code == 400, code
    assert _nothing_written()


def test_zip_bombs_are_refused_before_they_are_unpacked(importer, monkeypatch):
    from documents.parsing import xlsx_rows
    from documents.tests.helpers import xlsx_bytes

    monkeypatch.setattr(xlsx_rows, "MAX_UNPACKED_BYTES", 4096)  # a real bomb would take seconds to build
    response = importer.post(URL, {"file": [_upload("bomb.xlsx", xlsx_bytes(statement_rows()))]}, format="multipart")
    assert response.status_code == 400
    assert "unpacks to" in response.json()["detail"]
    assert _nothing_written()


def test_path_traversal_file_names_keep_only_the_base_name(importer):
    files = [_upload("../../etc/passwd.csv", csv_bytes(statement_rows()))]
    response = importer.post(URL, {"file": files}, format="multipart")
    assert response.status_code == 201
    assert DocumentUpload.objects.get().file_name == "passwd.csv"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"page_size": -1}, 400),
        ({"page_size": 0}, 400),
        ({"page_size": "1e9"}, 400),
        ({"page_size": "٣"}, 400),  # a digit to Python, not to us
        ({"page_size": 10**30}, 200),  # capped at the maximum
        ({"page": -3}, 404),
        ({"page": 0}, 404),
        ({"page": "abc"}, 404),
        ({"page": 99999999999999999999}, 404),
    ],
)
def test_odd_pagination_answers_a_clear_4xx(importer, query, status):
    importer.post(URL, {"file": [_upload("a.csv", csv_bytes(statement_rows()))]}, format="multipart")
    response = importer.get(URL, query)
    assert response.status_code == status, response.content
    body = response.json()
    if status == 200:
        assert body["count"] == 1
    else:
        assert "detail" in body


@pytest.mark.parametrize("document_id", ["99999999999999999999", "9223372036854775808", "0", "-1"])
def test_huge_or_odd_ids_answer_404(importer, document_id):
    assert importer.get(f"{URL}{document_id}/").status_code == 404


# --- The import log ------------------------------------------------------------------------------
def test_every_import_writes_one_structured_line(event_lines):
    user = grant_default_portfolio(User.objects.create_user("loader", password="pw-loader-1"))
    documents_import(files=[UploadedSource("a.csv", csv_bytes(statement_rows()))], uploaded_by=user, channel="api")
    documents_import(files=[UploadedSource("a.csv", csv_bytes(statement_rows()))], uploaded_by=user)
    with pytest.raises(Exception, match="row 2, column amount"):
        rows = statement_rows()
        rows[0][7] = "12,5"
        documents_import(files=[UploadedSource("bad.csv", csv_bytes(rows))], uploaded_by=user)
    first, second, failed = [line for line in event_lines() if line["event"] == "documents_import"]
    assert first["outcome"] == "ok" and first["channel"] == "api"
    assert (first["files"], first["file_names"], first["user_id"]) == (1, ["a.csv"], user.pk)
    assert (first["documents_new"], first["documents_changed"], first["documents_unchanged"]) == (1, 0, 0)
    assert first["line_items"] == 3 and first["document_ids"] == list(DocumentUpload.objects.values_list("id", flat=True))
    assert isinstance(first["duration_ms"], int) and first["duration_ms"] >= 0
    assert first["ts"].endswith("Z") and first["level"] == "INFO"
    assert (second["documents_unchanged"], second["line_items"], second["channel"]) == (1, 0, "service")
    assert failed["outcome"] == "rejected" and failed["level"] == "WARNING"
    assert failed["reason"] == "bad.csv: row 2, column amount: not a number: '12,5'"
    assert "documents_new" not in failed


def test_an_unexpected_failure_is_logged_as_an_error_and_raised(event_lines):
    from documents.models import FinancialPeriod

    # A period row that collides with what the import writes is not something a file can cause:
    # simulate it with a period whose ordinal is taken by another month.
    FinancialPeriod.objects.create(year=2023, month=12, ordinal=2024 * 12, start_date="2023-12-01", end_date="2023-12-31")
    with pytest.raises(KeyError):
        documents_import(files=[UploadedSource("a.csv", csv_bytes(statement_rows()))])
    (line,) = [line for line in event_lines() if line["event"] == "documents_import"]
    assert line["outcome"] == "error" and line["level"] == "ERROR"
    assert line["reason"].startswith("KeyError")
    assert _nothing_written()
