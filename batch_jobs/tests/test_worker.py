"""Batch jobs on real Celery worker processes (PostgreSQL or SQLite, Redis or the filesystem broker).

Worker processes load ``batch_jobs.tests.worker_settings``: the project's settings plus the test
processors and a 3-second chunk lease, so that this test, acting as the beat reaper, can hand the
chunk of a SIGKILLed worker to another worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from anomalies.models import AnomalyDetection
from batch_jobs import services
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, JobStatus
from batch_jobs.tests import factories
from reims.testing import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def worker(**env: str) -> WorkerProcess:
    process = WorkerProcess(extra_env={"DJANGO_SETTINGS_MODULE": "batch_jobs.tests.worker_settings", **env})
    process.wait_ready()
    return process


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, reap: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if reap:
            services.chunks_requeue_expired()  # what the beat task does every minute
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def start(processor: str, **filters) -> BatchReprocessingJob:
    job = services.create_batch_job(
        job_name=processor,
        property_ids=[],
        date_range_start=None,
        date_range_end=None,
        document_types=[],
        initiated_by=None,
        processor=processor,
        **filters,
    )
    services.start_batch_job(job=job)
    return job


def fresh(job: BatchReprocessingJob) -> BatchReprocessingJob:
    job.refresh_from_db()
    return job


def test_kill_9_mid_job_then_another_worker_finishes_it_without_double_counting():
    docs = factories.portfolio(properties=3, months=8, lines=3)
    job = start("test_slow_detect")
    first = worker(BATCH_PROCESSING_CHUNK_SIZE="2")
    second = None
    try:
        wait_for(lambda: fresh(job).processed_documents >= 4, timeout=60, what="a few chunks")
        first.kill()  # SIGKILL: no ack, no cleanup; a chunk is left leased in PostgreSQL
        killed_at = fresh(job).processed_documents
        assert killed_at < job.total_documents == len(docs)
        second = worker(BATCH_PROCESSING_CHUNK_SIZE="2")
        try:
            wait_for(lambda: fresh(job).status != JobStatus.RUNNING, timeout=90, what="the job to end", reap=True)
        except AssertionError:
            rows = list(BatchJobChunk.objects.filter(job=job).values_list("index", "status", "attempts", "leased_by"))
            raise AssertionError(f"{fresh(job).status} {rows}\n{second.log()}") from None
    finally:
        first.stop()
        if second:
            second.stop()
    job = fresh(job)
    assert job.status == JobStatus.COMPLETED, job.error_message
    assert job.processed_documents == job.total_documents == len(docs)
    assert job.successful_documents + job.skipped_documents + job.failed_documents == len(docs)
    assert not BatchJobChunk.objects.filter(job=job).exclude(status=ChunkStatus.DONE).exists()
    # Both workers did part of the job; the chunk of the dead one was leased again.
    assert len({c.split(":")[0] for c in BatchJobChunk.objects.filter(job=job).values_list("leased_by", flat=True)}) == 2
    assert BatchJobChunk.objects.filter(job=job, attempts=2).exists()
    duplicates = AnomalyDetection.objects.values("document_id", "account_code").annotate(n=Count("id")).filter(n__gt=1)
    assert not duplicates.exists()
    assert AnomalyDetection.objects.values("document_id").distinct().count() == job.successful_documents


def test_a_chunk_that_kills_its_worker_every_time_is_given_up_after_bounded_attempts():
    docs = factories.portfolio(properties=1, months=6)
    docs[2].file_name = "POISON"
    docs[2].save()
    job = start("test_kill_marked")
    process = worker(BATCH_PROCESSING_CHUNK_SIZE="2")
    try:
        wait_for(
            lambda: fresh(job).status != JobStatus.RUNNING and job.status != JobStatus.QUEUED,
            timeout=120,
            what="the job to end",
        )
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
