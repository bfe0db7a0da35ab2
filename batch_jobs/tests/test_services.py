"""Services of batch reprocessing, run in this process (chunks are run as a worker would run them)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from batch_jobs import selectors, services
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, JobStatus
from batch_jobs.services import chunks
from batch_jobs.tests import factories
from kernel.exceptions import ApplicationError, ConflictError
from kernel.flags import FeatureDisabled
from reims.testing import grant_default_portfolio

pytestmark = pytest.mark.django_db


def create(**kwargs) -> BatchReprocessingJob:
    defaults = {
        "job_name": "backfill",
        "property_ids": [],
        "date_range_start": None,
        "date_range_end": None,
        "document_types": [],
        "initiated_by": None,
        "processor": "check_documents",
    }
    return services.job_submit(**{**defaults, **kwargs})


def started(job: BatchReprocessingJob) -> BatchReprocessingJob:
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def run_chunks(job: BatchReprocessingJob, limit: int | None = None) -> list[str]:
    outcomes = []
    for chunk in BatchJobChunk.objects.filter(job=job, status=ChunkStatus.PENDING).order_by("index")[:limit]:
        outcomes.append(services.chunk_process(chunk_id=chunk.pk, task_id=chunk.task_id, worker="test"))
    job.refresh_from_db()
    return outcomes


# --- create: validation and counting ------------------------------------------------------------


def test_create_rejects_every_bad_filter_with_field_errors():
    prop = factories.PropertyFactory()
    with pytest.raises(ApplicationError) as caught:
        create(
            property_ids=[prop.pk, 999_998, 999_999],
            date_range_start=date(2024, 5, 1),
            date_range_end=date(2024, 1, 1),
            document_types=["income_statement", "tax_return"],
            extraction_status_filter="done",
        )
    errors = caught.value.field_errors
    assert errors["property_ids"] == ["Unknown property ids: 999998, 999999"]
    assert "before" in errors["date_range_end"][0]
    assert "tax_return" in errors["document_types"][0]
    assert "'done'" in errors["extraction_status_filter"][0]
    assert not BatchReprocessingJob.objects.exists()


def test_create_counts_latest_versions_matching_every_filter():
    docs = factories.portfolio(properties=2, months=4, types=("income_statement", "balance_sheet"))
    old = docs[0]
    # A newer version of the first document: only the latest version counts.
    old.is_latest = False
    old.save()
    factories.DocumentFactory(property=old.property, document_type=old.document_type, period=old.period, version=2)
    other = docs[-1].property
    failed = factories.DocumentFactory(property=other, period=factories.period(2024, 2), document_type="cash_flow")
    failed.extraction_status = "failed"
    failed.save()

    assert create().total_documents == 17
    assert create(property_ids=[other.pk]).total_documents == 9
    assert create(document_types=["balance_sheet"]).total_documents == 8
    # Any day of a month selects that month.
    assert create(date_range_start=date(2024, 2, 15), date_range_end=date(2024, 3, 1)).total_documents == 9
    assert create(extraction_status_filter="failed").total_documents == 1


def test_create_records_user_and_default_name(django_user_model):
    user = grant_default_portfolio(django_user_model.objects.create_user("ana"))
    prop = factories.PropertyFactory()
    job = create(job_name="  ", initiated_by=user)
    assert job.initiated_by == user
    assert job.property_ids == [prop.pk]  # "every property" of a user's portfolios, named
    assert job.job_name.startswith("Reprocess ")
    assert job.status == JobStatus.QUEUED


def test_submit_refuses_when_flag_is_off_and_a_queued_job_fails_when_it_would_start(monkeypatch):
    job = create()
    monkeypatch.setenv("BATCH_REPROCESSING_ENABLED", "false")
    with pytest.raises(FeatureDisabled, match="BATCH_REPROCESSING_ENABLED"):
        create()
    assert services.job_run(job_id=job.pk) == "flag off"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "BATCH_REPROCESSING_ENABLED" in job.error_message


def test_submit_queues_the_task_after_commit_and_stores_its_id(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = create()
    job.refresh_from_db()
    assert len(factories.task_sends(callbacks)) == 1
    assert len(job.celery_task_id) == 36


# --- running: chunks, counts, results -------------------------------------------------------------


def test_chunks_follow_property_type_period_order(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 4
    docs = factories.portfolio(properties=2, months=3, types=("income_statement", "balance_sheet"))
    job = started(create())
    chunks = list(job.chunks.order_by("index"))
    assert [len(c.document_ids) for c in chunks] == [4, 4, 4]
    flat = [d for c in chunks for d in c.document_ids]
    expected = sorted(docs, key=lambda d: (d.property_id, d.document_type, d.period.ordinal))
    assert flat == [d.pk for d in expected]
    assert job.status == JobStatus.RUNNING and job.started_at is not None


def test_job_runs_to_completion_with_counts_progress_and_summary(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 3
    docs = factories.portfolio(properties=2, months=4)
    empty = docs[1]
    empty.line_items.all().delete()
    job = started(create())
    run_chunks(job, limit=1)
    assert job.processed_documents == 3 and job.progress_pct == 37.5
    assert job.estimated_completion_at is not None
    run_chunks(job)
    assert job.status == JobStatus.COMPLETED
    assert (job.processed_documents, job.successful_documents, job.skipped_documents) == (8, 7, 1)
    summary = job.results_summary
    assert summary["documents"]["processed"] == 8
    assert summary["chunks"] == {"done": 3}
    assert job.progress_pct == 100.0


def test_a_failing_document_is_recorded_and_the_job_goes_on(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 4
    docs = factories.portfolio(properties=2, months=4)
    bad = docs[2]
    bad.file_name = "BAD"
    bad.save()
    job = started(create(processor="test_fail_marked"))
    run_chunks(job)
    assert job.status == JobStatus.COMPLETED
    assert (job.processed_documents, job.successful_documents, job.failed_documents) == (8, 7, 1)
    failure = job.results_summary["failures"][0]
    assert failure["document_id"] == bad.pk
    assert "BAD document" in failure["reason"]
    assert failure["property"] == bad.property.code


def test_empty_job_completes_at_once():
    job = started(create())
    assert job.status == JobStatus.COMPLETED
    assert job.progress_pct == 100.0


def test_redelivered_and_retried_work_counts_no_document_twice(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 2
    factories.portfolio(properties=1, months=6)
    job = started(create())
    first = job.chunks.get(index=0)
    assert services.chunk_process(chunk_id=first.pk, task_id=first.task_id) == "done"
    # The same message again (a redelivery), a stale message and the job task again (a retry).
    assert services.chunk_process(chunk_id=first.pk, task_id=first.task_id) == "already finished"
    assert services.chunk_process(chunk_id=first.pk, task_id="stale") == "superseded by another task"
    services.job_run(job_id=job.pk)
    assert job.chunks.count() == 3
    job.refresh_from_db()
    assert job.processed_documents == 2
    run_chunks(job)
    assert job.status == JobStatus.COMPLETED
    assert job.processed_documents == job.total_documents == 6


def test_a_chunk_whose_worker_keeps_dying_is_given_up_after_bounded_attempts(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 2
    settings.BATCH_PROCESSING_MAX_CHUNK_ATTEMPTS = 3
    factories.portfolio(properties=1, months=4)
    job = started(create())
    poison = job.chunks.get(index=0)
    # Each claim without a finish is a delivery whose worker died mid-chunk.
    for attempt in range(1, 4):
        claim = chunks._chunk_claim(chunk_id=poison.pk, task_id=poison.task_id, worker="w")
        assert isinstance(claim, services.ClaimedChunk)
        poison.refresh_from_db()
        assert poison.attempts == attempt
        factories.expire_lease(poison)  # the worker died: no heartbeat renews the lease
    assert services.chunk_process(chunk_id=poison.pk, task_id=poison.task_id) == "given up"
    run_chunks(job)
    poison.refresh_from_db()
    assert poison.status == ChunkStatus.FAILED
    assert job.status == JobStatus.COMPLETED
    assert (job.processed_documents, job.failed_documents, job.successful_documents) == (4, 2, 2)
    assert "given up after 3 attempts" in job.results_summary["failures"][0]["reason"]


def test_reaper_hands_an_expired_lease_to_a_new_task_and_the_old_one_cannot_count():
    factories.portfolio(properties=1, months=2)
    job = started(create())
    chunk = job.chunks.get()
    old_task = chunk.task_id
    assert isinstance(chunks._chunk_claim(chunk_id=chunk.pk, task_id=old_task, worker="dead"), services.ClaimedChunk)
    assert services.chunks_requeue_expired() == {}  # the lease is live: nothing to do
    factories.expire_lease(chunk)
    report = services.chunks_requeue_expired()
    assert report["chunks_requeued"] == 1
    chunk.refresh_from_db()
    assert chunk.status == ChunkStatus.PENDING and chunk.task_id != old_task
    # The old holder wakes up: its result is discarded; the new task records the chunk.
    results = services.run_processor("check_documents", chunk.document_ids)
    old_claim = services.ClaimedChunk(chunk_id=chunk.pk, job_id=job.pk, document_ids=chunk.document_ids, processor="")
    assert chunks._chunk_finish(claim=old_claim, task_id=old_task, results=results) == "lease lost"
    assert services.chunk_process(chunk_id=chunk.pk, task_id=chunk.task_id) == "done"
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and job.processed_documents == 2


def test_reaper_resends_pending_chunks_of_a_stalled_job_once_per_lease_period():
    factories.portfolio(properties=1, months=2)
    job = started(create())
    before = job.chunks.get().task_id
    # The broker's chunk queue is empty: the chunk's message is gone.
    assert services.chunks_requeue_expired(queue_depth=0) == {}  # just dispatched: a worker may hold it
    factories.age_job(job, seconds=services.lease_seconds() + 1)
    assert services.chunks_requeue_expired(queue_depth=1) == {}  # its message still waits in the queue
    assert services.chunks_requeue_expired(queue_depth=0) == {"chunks_resent": 1}
    assert job.chunks.get().task_id != before
    assert services.chunks_requeue_expired(queue_depth=0) == {}  # not again before another quiet lease period


# --- cancel -------------------------------------------------------------------------------------------


def test_cancel_a_queued_job_at_once_and_409_when_finished():
    job = create()
    services.job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.completed_at is not None
    with pytest.raises(ConflictError, match="already cancelled"):
        services.job_cancel(job=job)


def test_cancel_stops_a_running_job_within_one_chunk_and_keeps_finished_work(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 2
    factories.portfolio(properties=1, months=8)
    job = started(create())
    run_chunks(job, limit=1)
    chunk = job.chunks.get(index=1)
    claim = chunks._chunk_claim(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w")
    services.job_cancel(job=job)  # while chunk 1 is in flight
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.cancel_requested
    results = services.run_processor("check_documents", claim.document_ids)
    chunks._chunk_finish(claim=claim, task_id=chunk.task_id, results=results)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    # Chunk tasks delivered despite the revoke do nothing.
    assert run_chunks(job) == ["job cancelled", "job cancelled"]
    assert job.processed_documents == 4
    assert selectors.job_chunk_status_counts(job=job) == {"pending": 2, "leased": 0, "done": 2, "failed": 0}
    assert job.results_summary["documents"]["not_processed"] == 4


# --- slots and timeout ----------------------------------------------------------------------------


def test_at_most_max_concurrent_jobs_run_and_the_oldest_queued_starts_when_a_slot_frees(
    settings, django_capture_on_commit_callbacks
):
    settings.BATCH_PROCESSING_MAX_CONCURRENT = 1
    factories.portfolio(properties=1, months=2)
    first = started(create(job_name="first"))
    second, third = create(job_name="second"), create(job_name="third")
    for job in (second, third):
        assert services.job_run(job_id=job.pk) == "waiting for a slot"
    second_task = BatchReprocessingJob.objects.get(pk=second.pk).celery_task_id
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_chunks(first)
    assert first.status == JobStatus.COMPLETED
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.celery_task_id != second_task  # re-sent for the freed slot
    assert len(factories.task_sends(callbacks)) == 1
    assert services.job_run(job_id=second.pk).startswith("dispatched")
    assert services.job_run(job_id=third.pk) == "waiting for a slot"
    assert BatchReprocessingJob.objects.filter(status=JobStatus.RUNNING).count() == 1


def test_a_job_past_its_timeout_ends_failed_with_the_reason(settings):
    settings.BATCH_PROCESSING_TIMEOUT_MINUTES = 5
    settings.BATCH_PROCESSING_CHUNK_SIZE = 1
    factories.portfolio(properties=1, months=3)
    job = started(create())
    run_chunks(job, limit=1)
    BatchReprocessingJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(minutes=6))
    assert run_chunks(job) == ["job timed out", "job failed"]
    assert job.status == JobStatus.FAILED
    assert "BATCH_PROCESSING_TIMEOUT_MINUTES=5" in job.error_message
    assert job.processed_documents == 1


def test_beat_reaper_times_out_a_running_job(settings):
    settings.BATCH_PROCESSING_TIMEOUT_MINUTES = 1
    factories.portfolio(properties=1, months=1)
    job = started(create())
    BatchReprocessingJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(minutes=2))
    report = services.chunks_requeue_expired()
    assert report["jobs_timed_out"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
