"""Celery tasks of batch reprocessing: thin wrappers around batch_jobs.services.

``reprocess_documents_batch`` starts and chunks a job and fans out one ``process_batch_chunk``
per chunk (queue ``anomaly``, by CELERY_TASK_ROUTES); any worker listening to that queue takes chunks of any job, so
adding workers adds throughput. ``requeue_expired_chunks`` is the beat reaper (queue ``default``, every ~15 s).
"""

from __future__ import annotations

import os

from celery import shared_task
from django.db import InterfaceError, OperationalError

from batch_jobs import services

# Transient database trouble (a restart, pg_terminate_backend) is retried with exponential backoff
# (about 1 s, 2 s, 4 s ... capped at 10 min, well below the Redis visibility_timeout). A chunk task
# hands its lease back before it retries, so the retry can claim it at once.
_RETRY = {
    "bind": True,
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "max_retries": 5,
    "retry_backoff": 1,
    "retry_backoff_max": 600,
    "retry_jitter": True,
}


def _worker_name(task) -> str:
    return f"{task.request.hostname or 'local'}:{os.getpid()}"


@shared_task(name="batch_jobs.tasks.reprocess_documents_batch", **_RETRY)
def reprocess_documents_batch(self, job_id: int) -> str:
    return services.job_run(job_id=job_id)


@shared_task(name="batch_jobs.tasks.process_batch_chunk", ignore_result=True, **_RETRY)
def process_batch_chunk(self, chunk_id: int) -> str:
    # The chunk row names the one task id allowed to run it; a retry or a redelivery after a lost
    # worker keeps that id and counts as a new attempt (bounded in the chunk row).
    return services.chunk_process(chunk_id=chunk_id, task_id=self.request.id, worker=_worker_name(self))


@shared_task(name="batch_jobs.tasks.requeue_expired_chunks", acks_late=True)
def requeue_expired_chunks() -> dict[str, int]:
    return services.chunks_requeue_expired()
