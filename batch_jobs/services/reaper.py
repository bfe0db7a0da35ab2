"""The beat reaper: hands the chunks of dead workers to new tasks and re-sends lost messages.

It runs every ~15 s (batch_jobs/beat.py). Every step is safe to repeat, and safe to run on two
beat processes at once: each job is reaped in one transaction that locks its expired chunks, then
its job row (the order the chunk tasks use), skipping rows another reaper or a chunk task holds;
the skipped work is done on the next pass.
"""

from __future__ import annotations

import uuid
from collections import Counter

from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from batch_jobs import selectors
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, JobStatus
from batch_jobs.services import dispatch, jobs
from batch_jobs.services.chunks import chunk_give_up, chunk_release
from batch_jobs.services.leases import lease_seconds, max_chunk_attempts


def chunks_requeue_expired(*, queue_depth: int | None = None) -> dict[str, int]:
    """One reaper pass over every running job, then start queued jobs in free slots.

    - a chunk whose lease expired (its worker stopped heartbeating) goes back to pending under a
      new task id and is sent again, or is given up after BATCH_PROCESSING_MAX_CHUNK_ATTEMPTS;
    - when no chunk of any running job is leased or has finished for one lease period, and the
      broker's chunk queue holds fewer messages than there are pending chunks, messages were lost
      (a broker restarted empty): the pending chunks of each job quiet for a lease period are sent
      again, from their rows, under new task ids, so the lost messages, should they come back,
      are no-ops. A queue that still holds a backlog is left to drain: no duplicates pile up;
    - a running job without chunks whose own task was lost is sent again; a job past its timeout
      fails; a job whose chunks are all finished ends.

    ``queue_depth``: the chunk queue's depth when the caller knows it; read from the broker
    (only when the workers are idle) otherwise.
    """
    report: Counter[str] = Counter()
    messages_lost = False
    if selectors.batch_workers_idle(seconds=lease_seconds()):
        pending = selectors.running_jobs_pending_chunk_count()
        if pending and queue_depth is None:
            queue_depth = dispatch.chunk_queue_depth()
        messages_lost = bool(pending) and queue_depth is not None and queue_depth < pending
    for job_id in selectors.running_job_ids():
        report.update(_reap_job(job_id, messages_lost=messages_lost))
    with transaction.atomic():
        report["jobs_started"] += len(jobs.queued_jobs_start())
    return {key: value for key, value in report.items() if value}


@transaction.atomic
def _reap_job(job_id: int, *, messages_lost: bool) -> Counter[str]:
    report: Counter[str] = Counter()
    # Chunks first, then the job: the order of the chunk tasks. skip_locked: a chunk or job that
    # another reaper holds is that reaper's work.
    expired = list(
        BatchJobChunk.objects.select_for_update(skip_locked=True)
        .filter(job_id=job_id, status=ChunkStatus.LEASED, lease_expires_at__lt=Now())
        .order_by("id")
    )
    job = BatchReprocessingJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
    if job is None or job.status != JobStatus.RUNNING:
        return report
    if jobs.timed_out(job, timezone.now()):
        jobs.job_finish(job=job, status=JobStatus.FAILED, error=jobs.timeout_reason())
        report["jobs_timed_out"] += 1
        return report
    resend: list[tuple[int, str]] = []
    for chunk in expired:
        if chunk.attempts >= max_chunk_attempts():
            chunk_give_up(chunk=chunk, job=job)
            report["chunks_given_up"] += 1
            continue
        chunk.task_id = str(uuid.uuid4())
        chunk_release(chunk=chunk)
        resend.append((chunk.pk, chunk.task_id))
        report["chunks_requeued"] += 1
    if job.status != JobStatus.RUNNING:  # the last chunk was given up
        report["jobs_finished"] += 1
        return report
    if not BatchJobChunk.objects.filter(job=job).exists():
        if selectors.job_quiet_since(job_id=job.pk, seconds=lease_seconds(), field="started_at"):
            # The job's own task was lost before it chunked the job: send it again.
            job.celery_task_id = str(uuid.uuid4())
            job.save(update_fields=["celery_task_id", "updated_at"])
            dispatch.job_task_send_on_commit(job_id=job.pk, task_id=job.celery_task_id)
            report["jobs_resent"] += 1
        return report
    if not resend and messages_lost and selectors.job_quiet_since(job_id=job.pk, seconds=lease_seconds()):
        resend = _pending_chunks_renew(job)
        report["chunks_resent"] += len(resend)
    if resend:
        dispatch.chunk_tasks_send_on_commit(chunks=resend)
        return report
    left = selectors.job_unfinished_chunk_statuses(job=job)
    if not left:
        jobs.job_finish(job=job, status=JobStatus.COMPLETED)
        report["jobs_finished"] += 1
    elif job.cancel_requested and ChunkStatus.LEASED not in left:
        jobs.job_finish(job=job, status=JobStatus.CANCELLED)
        report["jobs_finished"] += 1
    return report


def _pending_chunks_renew(job: BatchReprocessingJob) -> list[tuple[int, str]]:
    """New task ids for the job's pending chunks (their old messages become no-ops)."""
    pending = list(
        BatchJobChunk.objects.select_for_update(skip_locked=True)
        .filter(job=job, status=ChunkStatus.PENDING)
        .order_by("index")
        .only("id", "task_id")
    )
    for chunk in pending:
        chunk.task_id = str(uuid.uuid4())
    BatchJobChunk.objects.bulk_update(pending, ["task_id"], batch_size=2000)
    if pending:
        BatchReprocessingJob.objects.filter(pk=job.pk).update(updated_at=Now())
    return [(chunk.pk, chunk.task_id) for chunk in pending]
