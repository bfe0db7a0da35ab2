"""Leases, heartbeats and the reaper: bad deliveries, skewed clocks, two reapers, lost connections."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from batch_jobs import services
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, JobStatus
from batch_jobs.services import chunks
from batch_jobs.services.leases import LeaseHeartbeat
from batch_jobs.tests import factories


def submit(processor: str = "check_documents") -> BatchReprocessingJob:
    job = services.job_submit(
        job_name="leases",
        property_ids=[],
        date_range_start=None,
        date_range_end=None,
        document_types=[],
        initiated_by=None,
        processor=processor,
    )
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


@pytest.mark.django_db
def test_a_second_delivery_while_the_first_runs_changes_nothing(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 2
    factories.portfolio(properties=1, months=4)
    job = submit()
    chunk = job.chunks.get(index=0)
    assert isinstance(chunks._chunk_claim(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w1:1"), services.ClaimedChunk)
    # The broker delivers the same message to another worker while w1 still holds the lease.
    assert services.chunk_process(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w2:2") == "held by w1:1"
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts, chunk.leased_by) == (ChunkStatus.LEASED, 1, "w1:1")
    job.refresh_from_db()
    assert job.processed_documents == 0


@pytest.mark.django_db
def test_a_worker_clock_two_minutes_ahead_steals_no_live_lease(monkeypatch):
    factories.portfolio(properties=1, months=2)
    job = submit()
    chunk = job.chunks.get()
    chunks._chunk_claim(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w1:1")
    # This process's clock runs 2 minutes ahead; leases are on the database's clock.
    ahead = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: ahead() + timedelta(minutes=2))
    assert services.chunks_requeue_expired() == {}
    assert services.chunk_process(chunk_id=chunk.pk, task_id=chunk.task_id, worker="skewed:2") == "held by w1:1"
    chunk.refresh_from_db()
    assert (chunk.status, chunk.leased_by, chunk.task_id) == (ChunkStatus.LEASED, "w1:1", chunk.task_id)


@pytest.mark.django_db
def test_the_heartbeat_renews_only_the_leases_this_process_holds():
    factories.portfolio(properties=1, months=2)
    job = submit()
    chunk = job.chunks.get()
    chunks._chunk_claim(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w1:1")
    factories.expire_lease(chunk)
    expired_at = BatchJobChunk.objects.get(pk=chunk.pk).lease_expires_at
    heartbeat = LeaseHeartbeat()
    assert heartbeat.renew() == 0
    heartbeat.hold(chunk_id=chunk.pk, task_id="another task")
    assert heartbeat.renew() == 0  # a lease taken over by another task is not ours to renew
    heartbeat.hold(chunk_id=chunk.pk, task_id=chunk.task_id)
    assert heartbeat.renew() == 1
    assert BatchJobChunk.objects.get(pk=chunk.pk).lease_expires_at > expired_at
    assert services.chunks_requeue_expired() == {}  # renewed: live again
    heartbeat.drop(chunk_id=chunk.pk)
    assert heartbeat.renew() == 0


@pytest.mark.django_db
def test_a_lost_database_connection_hands_the_lease_back_for_the_retry(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 3
    factories.portfolio(properties=1, months=3)
    job = submit("test_connection_lost_once")
    chunk = job.chunks.get()
    with pytest.raises(OperationalError):
        services.chunk_process(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w1:1")
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts) == (ChunkStatus.PENDING, 1)
    job.refresh_from_db()
    assert job.processed_documents == job.failed_documents == 0  # no document failed for it
    # Celery's autoretry delivers the same task id again.
    assert services.chunk_process(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w1:1") == "done"
    job.refresh_from_db()
    assert (job.status, job.processed_documents, job.successful_documents) == (JobStatus.COMPLETED, 3, 3)


@pytest.mark.django_db
def test_skipped_documents_are_named_with_their_reason_in_the_summary(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 4
    docs = factories.portfolio(properties=2, months=4)
    docs[5].line_items.all().delete()
    job = submit()
    services.job_run_inline(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.skipped_documents, job.successful_documents) == (JobStatus.COMPLETED, 1, 7)
    summary = job.results_summary
    assert summary["skipped_total"] == 1
    assert summary["skipped_by_reason"] == {"document has no line items": 1}
    assert summary["skipped"] == [
        {
            "document_id": docs[5].pk,
            "document": f"{docs[5].property.code} income_statement 2024-02",
            "property": docs[5].property.code,
            "reason": "document has no line items",
        }
    ]


@pytest.mark.django_db
def test_a_reaper_run_twice_does_the_work_once():
    factories.portfolio(properties=1, months=2)
    job = submit()
    chunk = job.chunks.get()
    chunks._chunk_claim(chunk_id=chunk.pk, task_id=chunk.task_id, worker="dead:1")
    factories.expire_lease(chunk)
    assert services.chunks_requeue_expired() == {"chunks_requeued": 1}
    assert services.chunks_requeue_expired() == {}
    assert BatchJobChunk.objects.get(pk=chunk.pk).status == ChunkStatus.PENDING


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has no row locks (it serialises writers): the sequential test above covers it there",
)
@pytest.mark.django_db(transaction=True)
def test_two_reapers_at_once_do_no_double_work():
    factories.portfolio(properties=1, months=2)
    job = submit()
    chunk = job.chunks.get()
    chunks._chunk_claim(chunk_id=chunk.pk, task_id=chunk.task_id, worker="dead:1")
    factories.expire_lease(chunk)
    first_holds, first_may_go, first_report = threading.Event(), threading.Event(), {}

    def first_reaper() -> None:
        # A reaper on another beat process, caught between locking the job's expired chunks and
        # committing: it holds the row locks the second one would need.
        try:
            with transaction.atomic():
                list(BatchJobChunk.objects.select_for_update().filter(pk=chunk.pk))
                first_holds.set()
                first_may_go.wait(30)
            first_report.update(services.chunks_requeue_expired())
        finally:
            connection.close()

    thread = threading.Thread(target=first_reaper)
    thread.start()
    assert first_holds.wait(30)
    try:
        assert services.chunks_requeue_expired() == {}  # skips what the other reaper holds
    finally:
        first_may_go.set()
        thread.join(30)
    assert first_report == {"chunks_requeued": 1}
    assert services.chunks_requeue_expired() == {}
    chunk.refresh_from_db()
    assert chunk.status == ChunkStatus.PENDING and chunk.attempts == 1


@pytest.mark.django_db
def test_a_chunk_costs_a_fixed_handful_of_bookkeeping_statements(settings, django_assert_max_num_queries):
    """Claim (lock chunk, lock job, lease) and finish (done, lock job, add counts): two short
    transactions per chunk, whatever the chunk size or the job's length; the processor's own read
    is the one more statement here (plus SET LOCAL synchronous_commit twice on PostgreSQL)."""
    settings.BATCH_PROCESSING_CHUNK_SIZE = 10
    factories.portfolio(properties=1, months=12)
    job = submit()
    chunk = job.chunks.order_by("index").first()
    with django_assert_max_num_queries(13):
        assert services.chunk_process(chunk_id=chunk.pk, task_id=chunk.task_id, worker="w") == "done"
