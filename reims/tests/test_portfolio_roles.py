"""The groups keep their meaning within a user's portfolios: analysts read and give verdicts;
managers also import, run and cancel jobs and invalidate cached models (DESIGN §11)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from batch_jobs.models import BatchReprocessingJob
from documents.models import DocumentUpload, Portfolio, Property
from documents.tests.helpers import csv_bytes, statement_rows
from reims.roles import ANALYSTS, MANAGERS
from reims.tests.portfolios import make_world, portfolio_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_analyst_reads_and_gives_verdicts_in_their_portfolio_only(world):
    a, b = world
    client = _client(portfolio_user("ana", groups=(ANALYSTS,), portfolios=(a.portfolio,)))
    assert client.get(f"/api/v1/anomalies/{a.anomaly.pk}").status_code == 200
    assert (
        client.post(f"/api/v1/anomalies/{a.anomaly.pk}/feedback", {"feedback_type": "dismissed"}, format="json").status_code
        == 201
    )
    assert (
        client.post(f"/api/v1/anomalies/{b.anomaly.pk}/feedback", {"feedback_type": "dismissed"}, format="json").status_code
        == 404
    )
    # ... and no more than that, even in their own portfolio.
    assert (
        client.post("/api/v1/batch-reprocessing/reprocess", {"property_ids": [a.property.pk]}, format="json").status_code
        == 403
    )
    assert client.post(f"/api/v1/batch-reprocessing/jobs/{a.job.pk}/cancel").status_code == 403
    assert client.post(f"/api/v1/model-cache/{a.cache_entry.pk}/invalidate", {}, format="json").status_code == 403
    upload = client.post("/api/v1/documents/", {"file": [_upload("a.csv", csv_bytes(statement_rows(a.property.code)))]})
    assert upload.status_code == 403


def test_manager_imports_runs_cancels_and_invalidates_in_their_portfolio(world, django_capture_on_commit_callbacks):
    a, b = world
    client = _client(portfolio_user("max", groups=(MANAGERS,), portfolios=(a.portfolio,)))
    upload = client.post("/api/v1/documents/", {"file": [_upload("a.csv", csv_bytes(statement_rows(a.property.code)))]})
    assert upload.status_code == 201, upload.content
    created = client.post("/api/v1/batch-reprocessing/reprocess", {"property_ids": [a.property.pk]}, format="json")
    assert created.status_code == 201, created.content
    # A job without a property filter means the manager's properties, named on the job.
    everything = client.post("/api/v1/batch-reprocessing/reprocess", {}, format="json")
    assert everything.status_code == 201 and everything.json()["property_ids"] == [a.property.pk]
    assert client.post(f"/api/v1/batch-reprocessing/jobs/{a.job.pk}/cancel").status_code == 200
    assert client.post(f"/api/v1/model-cache/{a.cache_entry.pk}/invalidate", {}, format="json").status_code == 200
    # B's job and entry read as missing; a job naming B's property is refused without saying whose.
    assert client.post(f"/api/v1/batch-reprocessing/jobs/{b.job.pk}/cancel").status_code == 404
    assert client.post(f"/api/v1/model-cache/{b.cache_entry.pk}/invalidate", {}, format="json").status_code == 404
    refused = client.post("/api/v1/batch-reprocessing/reprocess", {"property_ids": [b.property.pk]}, format="json")
    assert refused.status_code == 400
    assert refused.json()["property_ids"] == [f"Unknown property ids: {b.property.pk}"]
    listed = client.get("/api/v1/batch-reprocessing/jobs").json()["results"]
    assert b.job.pk not in [job["id"] for job in listed] and a.job.pk in [job["id"] for job in listed]


def test_upload_naming_a_property_of_another_portfolio_is_refused_whole(world):
    a, b = world
    client = _client(portfolio_user("max", groups=(MANAGERS,), portfolios=(a.portfolio,)))
    before = DocumentUpload.objects.count()
    mixed = csv_bytes(statement_rows(a.property.code, period="2024-05") + statement_rows(b.property.code, period="2024-05"))
    response = client.post("/api/v1/documents/", {"file": [_upload("mixed.csv", mixed)]})
    assert response.status_code == 400
    assert response.json()["detail"] == "mixed.csv: row 5, column property_code: property not in your portfolios"
    assert b.portfolio.code not in response.content.decode()
    assert DocumentUpload.objects.count() == before


def test_new_property_goes_to_the_uploaders_portfolio_or_a_granted_portfolio_code(world):
    a, b = world
    client = _client(portfolio_user("max", groups=(MANAGERS,), portfolios=(a.portfolio,)))
    assert (
        client.post("/api/v1/documents/", {"file": [_upload("n.csv", csv_bytes(statement_rows("NEW1")))]}).status_code == 201
    )
    assert Property.objects.get(code="NEW1").portfolio == a.portfolio
    header = ("property_code", "document_type", "period", "account_code", "account_name", "amount", "portfolio_code")
    rows = [["NEW2", "income_statement", "2024-01", "4010", "Rent", "10", "BRAVO"]]
    response = client.post("/api/v1/documents/", {"file": [_upload("p.csv", csv_bytes(rows, header=header))]})
    assert response.status_code == 400
    assert response.json()["detail"] == "p.csv: row 2, column portfolio_code: portfolio not in your portfolios"
    assert not Property.objects.filter(code="NEW2").exists()


def test_import_command_places_new_properties_by_portfolio_code(world, tmp_path):
    from django.core.management import call_command

    header = ("property_code", "document_type", "period", "account_code", "account_name", "amount", "portfolio_code")
    path = tmp_path / "owners.csv"
    path.write_bytes(csv_bytes([["NEW3", "income_statement", "2024-01", "4010", "Rent", "10", "CHARLIE"]], header=header))
    call_command("import_documents", str(path))
    assert Property.objects.get(code="NEW3").portfolio == Portfolio.objects.get(code="CHARLIE")


def test_user_without_grants_sees_nothing(world):
    client = _client(portfolio_user("nobody", groups=(MANAGERS,), portfolios=()))
    for path in ("/api/v1/anomalies/", "/api/v1/documents/", "/api/v1/model-cache/", "/api/v1/selection-log/"):
        assert client.get(path).json()["results"] == [], path
    assert client.get("/api/v1/batch-reprocessing/jobs").json()["results"] == []
    refused = client.post("/api/v1/batch-reprocessing/reprocess", {}, format="json")
    assert refused.status_code == 400 and BatchReprocessingJob.objects.count() == 2
