"""Job creation: throttling, structured state-change logs, and property-based validation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import caches
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from batch_jobs import services
from batch_jobs.models import BatchReprocessingJob
from batch_jobs.tests import factories
from documents.models import DocumentType
from kernel.exceptions import ApplicationError
from kernel.throttles import THROTTLE_CACHE_ALIAS
from reims.testing import grant_default_portfolio

pytestmark = pytest.mark.django_db

REPROCESS = "/api/v1/batch-reprocessing/reprocess"


@pytest.fixture
def manager_client(django_user_model):
    caches[THROTTLE_CACHE_ALIAS].clear()
    user = grant_default_portfolio(django_user_model.objects.create_user("manager"))
    for codename in ("add_batchreprocessingjob", "change_batchreprocessingjob"):
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="batch_jobs"))
    client = APIClient()
    client.force_authenticate(user)
    yield client
    caches[THROTTLE_CACHE_ALIAS].clear()


def test_job_creation_is_throttled_with_429(manager_client, settings):
    factories.portfolio(properties=1, months=1)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "job_create": "2/min"},
    }
    codes = [manager_client.post(REPROCESS, {"job_name": f"j{i}"}, format="json").status_code for i in range(3)]
    assert codes == [201, 201, 429]
    assert BatchReprocessingJob.objects.count() == 2
    # Reading and cancelling are not throttled by the creation scope.
    job = BatchReprocessingJob.objects.first()
    assert manager_client.get(f"/api/v1/batch-reprocessing/jobs/{job.pk}").status_code == 200


def test_each_state_change_writes_one_structured_line(event_lines, django_user_model, django_capture_on_commit_callbacks):
    factories.portfolio(properties=1, months=2)
    user = grant_default_portfolio(django_user_model.objects.create_user("m", password="secret-password-1"))
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_submit(
            job_name="nightly",
            property_ids=None,
            date_range_start=None,
            date_range_end=None,
            document_types=None,
            initiated_by=user,
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.job_cancel(job=job)
    lines = [line for line in event_lines() if line["event"] == "batch_job_state"]
    assert [(line["previous_status"], line["status"]) for line in lines] == [
        (None, "queued"),
        ("queued", "queued"),  # the cancel request
        ("queued", "cancelled"),
    ]
    assert all(line["job_id"] == job.pk and line["initiated_by_id"] == user.pk for line in lines)
    assert lines[-1]["cancel_requested"] is True
    text = repr(event_lines())
    assert "secret-password-1" not in text


document_types = st.lists(st.sampled_from([*DocumentType.values, "invoice", "", "BALANCE_SHEET"]), max_size=4)
days = st.one_of(st.none(), st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)))
status_filters = st.sampled_from(["all", "pending", "processing", "completed", "failed", "done", "", "ALL"])


def test_create_batch_job_accepts_exactly_the_valid_filters():
    docs = factories.portfolio(properties=2, months=2)
    existing = sorted({doc.property_id for doc in docs})

    @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        property_ids=st.lists(st.one_of(st.sampled_from(existing), st.integers(min_value=-5, max_value=2**70)), max_size=3),
        start=days,
        end=days,
        types=document_types,
        status_filter=status_filters,
    )
    def check(property_ids, start, end, types, status_filter):
        expected_errors = set()
        if any(pid not in existing for pid in property_ids):
            expected_errors.add("property_ids")
        if start and end and end < start:
            expected_errors.add("date_range_end")
        if any(t not in DocumentType.values for t in types):
            expected_errors.add("document_types")
        if status_filter not in {"all", "pending", "processing", "completed", "failed", ""}:
            expected_errors.add("extraction_status_filter")
        before = BatchReprocessingJob.objects.count()
        try:
            job = services.job_submit(
                job_name="prop",
                property_ids=property_ids,
                date_range_start=start,
                date_range_end=end,
                document_types=types,
                extraction_status_filter=status_filter,
                initiated_by=None,
            )
        except ApplicationError as error:
            assert expected_errors, f"refused valid filters: {error.field_errors}"
            assert set(error.field_errors) == expected_errors
            assert BatchReprocessingJob.objects.count() == before
        else:
            assert not expected_errors, f"accepted invalid filters {expected_errors}"
            assert job.status == "queued"
            assert 0 <= job.total_documents <= len(docs)
            job.delete()

    check()


def test_a_range_of_one_day_selects_its_whole_month():
    docs = factories.portfolio(properties=1, months=3)
    day = date(2024, 2, 14)
    job = services.job_submit(
        job_name="feb",
        property_ids=[docs[0].property_id],
        date_range_start=day,
        date_range_end=day + timedelta(days=1),
        document_types=None,
        initiated_by=None,
    )
    assert job.total_documents == 1
