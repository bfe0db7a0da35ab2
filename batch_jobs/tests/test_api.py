"""The batch reprocessing API: status codes, field errors, permissions, filters and the schema."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from batch_jobs import services
from batch_jobs.models import BatchReprocessingJob, JobStatus
from batch_jobs.tests import factories
from reims.testing import grant_default_portfolio

pytestmark = pytest.mark.django_db

REPROCESS = "/api/v1/batch-reprocessing/reprocess"
JOBS = "/api/v1/batch-reprocessing/jobs"


@pytest.fixture
def user(django_user_model):
    return grant_default_portfolio(django_user_model.objects.create_user("analyst", password="x"))


def client_with(user, *codenames: str) -> APIClient:
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="batch_jobs"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_post_reprocess_creates_and_queues_a_job(user, django_capture_on_commit_callbacks):
    docs = factories.portfolio(properties=2, months=3)
    client = client_with(user, "add_batchreprocessingjob")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            REPROCESS,
            {
                "job_name": "after rule change",
                "property_ids": [docs[0].property_id],
                "date_range_start": "2024-02-01",
                "date_range_end": "2024-03-31",
                "document_types": ["income_statement"],
            },
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["total_documents"] == 2
    assert body["progress_pct"] == 0.0
    assert body["initiated_by"] == "analyst"
    assert body["extraction_status_filter"] == "all"
    assert len(factories.task_sends(callbacks)) == 1  # the task goes to the broker after commit
    job = BatchReprocessingJob.objects.get(pk=body["id"])
    assert job.celery_task_id == body["celery_task_id"] != ""
    assert job.processor == "detect_anomalies"


def test_post_reprocess_answers_400_with_field_errors(user):
    client = client_with(user, "add_batchreprocessingjob")
    response = client.post(
        REPROCESS,
        {
            "property_ids": [424242],
            "date_range_start": "2024-05-01",
            "date_range_end": "2024-01-01",
            "document_types": ["tax_return"],
            "extraction_status_filter": "bogus",
        },
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) >= {"property_ids", "date_range_end", "document_types", "extraction_status_filter"}
    assert "424242" in body["property_ids"][0]
    assert not BatchReprocessingJob.objects.exists()
    malformed = client.post(REPROCESS, {"date_range_start": "May 2024", "property_ids": "x"}, format="json")
    assert malformed.status_code == 400
    assert {"date_range_start", "property_ids"} <= set(malformed.json())


def test_writes_need_the_model_permissions_and_reads_need_login(user):
    job = factories.job()
    reader = client_with(user)
    assert reader.get(JOBS).status_code == 200
    assert reader.post(REPROCESS, {}, format="json").status_code == 403
    assert reader.post(f"{JOBS}/{job.pk}/cancel").status_code == 403
    anonymous = APIClient()
    assert anonymous.get(JOBS).status_code in (401, 403)
    assert anonymous.post(REPROCESS, {}, format="json").status_code in (401, 403)


def test_503_names_the_flag_when_batch_reprocessing_is_off(user, monkeypatch):
    monkeypatch.setenv("BATCH_REPROCESSING_ENABLED", "false")
    response = client_with(user, "add_batchreprocessingjob").post(REPROCESS, {}, format="json")
    assert response.status_code == 503
    assert response.json()["flag"] == "BATCH_REPROCESSING_ENABLED"
    assert "BATCH_REPROCESSING_ENABLED" in response.json()["detail"]


def test_list_is_paginated_and_filterable_by_status(user, settings):
    # A user who is not a superuser sees jobs over properties of their portfolios.
    mine = [factories.PropertyFactory().pk]
    for n in range(3):
        factories.job(job_name=f"q{n}", property_ids=mine)
    factories.job(job_name="done", status=JobStatus.COMPLETED, property_ids=mine)
    client = client_with(user)
    body = client.get(JOBS).json()
    assert body["count"] == 4 and len(body["results"]) == 4
    assert "results_summary" not in body["results"][0]
    completed = client.get(JOBS, {"status": "completed"}).json()
    assert [j["job_name"] for j in completed["results"]] == ["done"]
    assert client.get(JOBS, {"status": "nope"}).status_code == 400
    first = client.get(JOBS, {"page_size": 3}).json()
    second = client.get(JOBS, {"page_size": 3, "page": 2}).json()
    assert len(first["results"]) == 3 and first["next"] is not None
    assert len(second["results"]) == 1 and second["next"] is None
    # Newest first.
    assert first["results"][0]["job_name"] == "done"


def test_get_job_shows_progress_counts_and_results(user, settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 2
    documents = factories.portfolio(properties=1, months=4)
    job = services.job_submit(
        job_name="j",
        property_ids=[documents[0].property_id],
        date_range_start=None,
        date_range_end=None,
        document_types=[],
        initiated_by=None,
        processor="check_documents",
    )
    services.job_run_inline(job_id=job.pk)
    body = client_with(user).get(f"{JOBS}/{job.pk}").json()
    assert body["status"] == "completed"
    assert body["progress_pct"] == 100.0
    assert body["processed_documents"] == body["total_documents"] == 4
    assert body["results_summary"]["documents"]["successful"] == 4
    assert body["estimated_completion_at"] is not None
    assert client_with(user).get(f"{JOBS}/{job.pk + 999}").status_code == 404


def test_cancel_a_queued_job_then_409_when_finished(user):
    job = factories.job(property_ids=[factories.PropertyFactory().pk])
    client = client_with(user, "change_batchreprocessingjob")
    response = client.post(f"{JOBS}/{job.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = client.post(f"{JOBS}/{job.pk}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


def test_endpoints_are_in_the_openapi_schema(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert "post" in paths["/api/v1/batch-reprocessing/reprocess"]
    assert "get" in paths["/api/v1/batch-reprocessing/jobs"]
    assert "get" in paths["/api/v1/batch-reprocessing/jobs/{id}"]
    assert "post" in paths["/api/v1/batch-reprocessing/jobs/{id}/cancel"]
    params = {p["name"] for p in paths["/api/v1/batch-reprocessing/jobs"]["get"]["parameters"]}
    assert {"status", "page"} <= params


def test_browsable_api_renders(admin_client):
    response = admin_client.get(JOBS, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Batch Job" in response.content
