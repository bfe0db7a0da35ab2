"""The admin: progress bar, cancel action, readable summary, start form, read-only chunks."""

from __future__ import annotations

import pytest

from batch_jobs import services
from batch_jobs.models import BatchReprocessingJob, JobStatus
from batch_jobs.tests import factories

pytestmark = pytest.mark.django_db


def test_changelist_shows_progress_bar_counts_and_start_link(admin_client):
    factories.job(job_name="half", status=JobStatus.RUNNING, total_documents=10, processed_documents=5)
    response = admin_client.get("/admin/batch_jobs/batchreprocessingjob/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "width:50.0%" in html and "half" in html
    assert "Start a new job" in html


def test_start_form_creates_and_queues_a_job(admin_client, django_capture_on_commit_callbacks):
    docs = factories.portfolio(properties=1, months=2)
    url = "/admin/batch_jobs/batchreprocessingjob/start/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.get("/admin/batch_jobs/batchreprocessingjob/add/").url == url
    bad = admin_client.post(
        url, {"date_range_start": "2024-05-01", "date_range_end": "2024-01-01", "extraction_status_filter": "all"}
    )
    assert bad.status_code == 200 and "is before" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            url, {"job_name": "from admin", "properties": [docs[0].property_id], "extraction_status_filter": "all"}
        )
    job = BatchReprocessingJob.objects.get()
    assert response.status_code == 302 and job.job_name == "from admin" and job.total_documents == 2
    assert job.celery_task_id and len(factories.task_sends(callbacks)) == 1


def test_cancel_action_and_readable_summary(admin_client, settings):
    factories.portfolio(properties=1, months=2)
    done = factories.job(job_name="done")
    services.job_run_inline(job_id=done.pk)
    queued = factories.job(job_name="queued")
    response = admin_client.post(
        "/admin/batch_jobs/batchreprocessingjob/",
        {"action": "cancel_selected", "_selected_action": [done.pk, queued.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Cancelling 1 job(s)." in html and "already completed" in html
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
    page = admin_client.get(f"/admin/batch_jobs/batchreprocessingjob/{done.pk}/change/").content.decode()
    assert 'id="job-results"' in page and '<th>Processed</th><td class="num">2</td>' in page and "1 done" in page
    chunk = done.chunks.get()
    chunk_page = admin_client.get(f"/admin/batch_jobs/batchjobchunk/{chunk.pk}/change/")
    assert chunk_page.status_code == 200 and b'name="_save"' not in chunk_page.content
