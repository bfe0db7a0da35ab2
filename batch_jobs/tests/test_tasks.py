"""The Celery tasks, executed in this process with ``apply`` (the worker path is in test_worker.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from batch_jobs import services
from batch_jobs.beat import BEAT_SCHEDULE
from batch_jobs.models import BatchJobChunk, ChunkStatus, JobStatus
from batch_jobs.tasks import process_batch_chunk, reprocess_documents_batch, requeue_expired_chunks
from batch_jobs.tests import factories
from reims.celery import app

pytestmark = pytest.mark.django_db


def test_task_options_follow_the_celery_rules():
    for task in (reprocess_documents_batch, process_batch_chunk):
        assert task.max_retries == 5
        assert task.acks_late is True
        assert task.retry_backoff
    # Routed to the anomaly queue whatever the defaults say.
    assert app.amqp.router.route({}, reprocess_documents_batch.name)["queue"].name == "anomaly"
    assert app.amqp.router.route({}, process_batch_chunk.name)["queue"].name == "anomaly"
    assert app.conf.task_reject_on_worker_lost and app.conf.worker_prefetch_multiplier == 1


def test_job_task_then_chunk_tasks_run_a_job(settings):
    settings.BATCH_PROCESSING_CHUNK_SIZE = 2
    factories.portfolio(properties=1, months=3)
    job = factories.job()
    assert reprocess_documents_batch.apply(args=[job.pk]).get() == "dispatched 2 chunks"
    for chunk in BatchJobChunk.objects.filter(job=job):
        process_batch_chunk.apply(args=[chunk.pk], task_id=chunk.task_id)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert job.processed_documents == 3
    assert set(BatchJobChunk.objects.values_list("leased_by", flat=True)) != {""}
    # A duplicate delivery of the job task changes nothing.
    assert reprocess_documents_batch.apply(args=[job.pk]).get() == "not active"


def test_beat_task_requeues_expired_leases_and_is_scheduled():
    factories.portfolio(properties=1, months=1)
    job = factories.job()
    services.job_run(job_id=job.pk)
    chunk = BatchJobChunk.objects.get(job=job)
    services.chunks._chunk_claim(chunk_id=chunk.pk, task_id=chunk.task_id, worker="gone")
    BatchJobChunk.objects.filter(pk=chunk.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert requeue_expired_chunks.apply().get()["chunks_requeued"] == 1
    chunk.refresh_from_db()
    assert chunk.status == ChunkStatus.PENDING
    entry = BEAT_SCHEDULE["batch-jobs-requeue-expired-chunks"]
    assert entry["task"] == requeue_expired_chunks.name
    assert entry["options"]["expires"] < entry["schedule"]
