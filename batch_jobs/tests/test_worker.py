"""Batch jobs on real Celery worker processes (PostgreSQL or SQLite, Redis or the filesystem broker).

Worker processes load ``batch_jobs.tests.worker_settings``: the project's settings plus the test
processors and a 3-second lease renewed every second. The test process plays the beat: it runs
the reaper (what ``requeue_expired_chunks`` does every 15 s) while it waits. Every wait is on a
state of the database (a chunk leased, a lease renewed, a job ended), never on a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from anomalies.models import AnomalyDetection
from batch_jobs import services
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, JobStatus
from batch_jobs.tests import factories
from reims.celery import app
from reims.testing import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def short_leases(settings):
    """The reaper in this process measures quiet periods with the workers' lease."""
    settings.BATCH_PROCESSING_LEASE_SECONDS = 3
    settings.BATCH_PROCESSING_HEARTBEAT_SECONDS = 1


@pytest.fixture(autouse=True)
def empty_queues():
    """Each test starts on empty queues: messages an earlier test left (for ids the flushed
    database reuses) would change nothing, but a slow broker spends seconds on each of them."""
    with app.connection_for_write() as conn:
        for queue in ("anomaly", "default"):
            conn.default_channel.queue_purge(queue)


def worker(**env: str) -> WorkerProcess:
    process = WorkerProcess(extra_env={"DJANGO_SETTINGS_MODULE": "batch_jobs.tests.worker_settings", **env})
    process.wait_ready()
    return process


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, reap: bool = False) -> None:
    """Poll a database state until it holds; ``reap``: run the beat reaper between polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if reap:
            services.chunks_requeue_expired()
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start(processor: str, **filters) -> BatchReprocessingJob:
    return services.job_submit(
        job_name=processor,
        property_ids=[],
        date_range_start=None,
        date_range_end=None,
        document_types=[],
        initiated_by=None,
        processor=processor,
        **filters,
    )


def fresh(job: BatchReprocessingJob) -> BatchReprocessingJob:
    job.refresh_from_db()
    return job


def chunk_of(job: BatchReprocessingJob, document_id: int) -> BatchJobChunk | None:
    return next((c for c in BatchJobChunk.objects.filter(job=job) if document_id in c.document_ids), None)


def leased(job: BatchReprocessingJob, document_id: int) -> bool:
    chunk = chunk_of(job, document_id)
    return chunk is not None and chunk.status == ChunkStatus.LEASED


def assert_detections_written_once(job: BatchReprocessingJob) -> None:
    duplicates = AnomalyDetection.objects.values("document_id", "account_code").annotate(n=Count("id")).filter(n__gt=1)
    assert not duplicates.exists()
    assert AnomalyDetection.objects.values("document_id").distinct().count() == job.successful_documents


def test_kill_9_mid_job_then_another_worker_finishes_it_without_double_counting(tmp_path: Path):
    docs = factories.portfolio(properties=3, months=8, lines=3)
    hang = docs[7]  # in the 4th chunk of 2: the first worker finishes chunks before it wedges
    hang.file_name = "HANG"
    hang.save()
    job = start("test_hang_once_detect")
    env = {"BATCH_PROCESSING_CHUNK_SIZE": "2", "BATCH_TEST_MARKER_DIR": str(tmp_path)}
    first, second = worker(**env), None
    try:
        wait_for(lambda: leased(job, hang.pk), timeout=120, what="the HANG chunk leased")
        held = chunk_of(job, hang.pk)
        # The wedged chunk outlives its 3 s lease: the heartbeat keeps it while its worker lives.
        renewals: set = set()

        def renewed_four_times() -> bool:
            renewals.add(chunk_of(job, hang.pk).lease_expires_at)
            return len(renewals) >= 5

        wait_for(renewed_four_times, timeout=30, what="four heartbeats", reap=True)
        held = chunk_of(job, hang.pk)
        assert (held.status, held.attempts, held.leased_by) == (ChunkStatus.LEASED, 1, held.leased_by)
        first.kill()  # SIGKILL to the main process and its children: no ack, no cleanup
        assert fresh(job).processed_documents < job.total_documents == len(docs)
        second = worker(**env)
        wait_for(lambda: fresh(job).is_finished, timeout=90, what="the job to end", reap=True)
    finally:
        first.stop()
        if second:
            second.stop()
    job = fresh(job)
    assert job.status == JobStatus.COMPLETED, job.error_message
    assert job.processed_documents == job.total_documents == len(docs)
    assert job.successful_documents + job.skipped_documents + job.failed_documents == len(docs)
    assert not BatchJobChunk.objects.filter(job=job).exclude(status=ChunkStatus.DONE).exists()
    # The wedged chunk was handed to the second worker as a second attempt.
    recovered = chunk_of(job, hang.pk)
    assert recovered.attempts == 2 and recovered.leased_by != held.leased_by
    hosts = {c.split(":")[0] for c in BatchJobChunk.objects.filter(job=job).values_list("leased_by", flat=True)}
    assert len(hosts) == 2
    assert_detections_written_once(job)


def test_lost_chunk_messages_are_sent_again_from_the_chunk_rows():
    docs = factories.portfolio(properties=2, months=6)
    job = start("test_slow_check")
    process = worker(BATCH_PROCESSING_CHUNK_SIZE="1")
    try:
        wait_for(lambda: fresh(job).processed_documents >= 2, timeout=60, what="two chunks")
        with app.connection_for_write() as conn:  # the broker loses every queued message
            conn.default_channel.queue_purge("anomaly")
        wait_for(lambda: fresh(job).is_finished, timeout=90, what="the job to end", reap=True)
    finally:
        process.stop()
    job = fresh(job)
    assert job.status == JobStatus.COMPLETED
    assert job.processed_documents == job.successful_documents == len(docs)


def test_one_bad_document_fails_alone_and_the_summary_names_it():
    docs = factories.portfolio(properties=2, months=5)
    bad = docs[3]
    bad.file_name = "BAD"
    bad.save()
    job = start("test_fail_marked")
    process = worker(BATCH_PROCESSING_CHUNK_SIZE="5")
    try:
        wait_for(lambda: fresh(job).is_finished, timeout=90, what="the job to end", reap=True)
    finally:
        process.stop()
    job = fresh(job)
    assert job.status == JobStatus.COMPLETED
    assert (job.processed_documents, job.successful_documents, job.failed_documents) == (10, 9, 1)
    [failure] = job.results_summary["failures"]
    assert failure["document_id"] == bad.pk
    assert failure["document"] == f"{bad.property.code} income_statement 2024-04"
    assert failure["reason"] == "ValueError: cannot parse amounts of a BAD document"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no server connections to terminate")
def test_terminated_database_connections_lose_and_double_count_nothing():
    docs = factories.portfolio(properties=3, months=6, lines=3)
    job = start("test_slow_detect")
    process = worker(BATCH_PROCESSING_CHUNK_SIZE="2")
    try:
        wait_for(lambda: fresh(job).processed_documents >= 4, timeout=120, what="a few chunks")

        def terminated_a_connection() -> bool:
            # Between two tasks a worker may hold no connection: terminate until one is hit.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return cursor.fetchone()[0] >= 1

        wait_for(terminated_a_connection, timeout=60, what="a worker connection to terminate")
        wait_for(lambda: fresh(job).is_finished, timeout=90, what="the job to end", reap=True)
    finally:
        process.stop()
    job = fresh(job)
    assert job.status == JobStatus.COMPLETED, job.error_message
    assert job.processed_documents == job.total_documents == len(docs)
    assert job.failed_documents == 0, job.results_summary["failures"]
    assert_detections_written_once(job)


def test_a_chunk_that_kills_its_worker_every_time_is_given_up_after_bounded_attempts():
    docs = factories.portfolio(properties=1, months=6)
    docs[2].file_name = "POISON"
    docs[2].save()
    job = start("test_kill_marked")
    process = worker(BATCH_PROCESSING_CHUNK_SIZE="2")
    try:
        wait_for(lambda: fresh(job).is_finished, timeout=120, what="the job to end", reap=True)
        assert process.process.poll() is None, "the worker's main process survives its children's deaths"
    finally:
        process.stop()
    job = fresh(job)
    assert job.status == JobStatus.COMPLETED
    poison = BatchJobChunk.objects.get(job=job, index=1)
    assert poison.status == ChunkStatus.FAILED and poison.attempts == 3
    assert (job.processed_documents, job.failed_documents, job.successful_documents) == (6, 2, 4)
    assert "given up after 3 attempts" in job.results_summary["failures"][0]["reason"]


def test_reprocess_wait_with_two_workers_sharing_one_job():
    docs = factories.portfolio(properties=4, months=6, lines=3)
    workers = [worker(BATCH_PROCESSING_CHUNK_SIZE="3"), worker(BATCH_PROCESSING_CHUNK_SIZE="3")]
    out = StringIO()
    try:
        call_command("reprocess", "--name", "nightly", "--wait", "--poll", "0.2", "--timeout", "120", stdout=out)
    finally:
        for process in workers:
            process.stop()
    text = out.getvalue()
    job = BatchReprocessingJob.objects.get()
    assert job.status == JobStatus.COMPLETED
    assert job.processed_documents == len(docs) == 24
    assert "100.0%" in text and f"Job #{job.pk} completed" in text
    assert f"{len(docs)}/{len(docs)} documents" in text
    hosts = {c.split(":")[0] for c in BatchJobChunk.objects.filter(job=job).values_list("leased_by", flat=True)}
    assert len(hosts) == 2, "both workers took chunks of the one job"
