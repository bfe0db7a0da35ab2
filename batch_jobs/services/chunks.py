"""Chunks: claim a chunk's lease, run its documents one outcome each, record it exactly once."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from batch_jobs import processors, selectors
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, JobStatus
from batch_jobs.services import jobs
from batch_jobs.services.leases import heartbeat, lease_expiry, max_chunk_attempts

logger = logging.getLogger(__name__)

# The database went away (a restart, pg_terminate_backend): the task retries; no document fails.
CONNECTION_ERRORS = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class ClaimedChunk:
    chunk_id: int
    job_id: int
    document_ids: list[int]
    processor: str


def chunk_process(*, chunk_id: int, task_id: str, worker: str = "") -> str:
    """Lease, process and record one chunk. Safe to call again for the same chunk and task: a
    duplicate, late or superseded delivery, or one for a finished or cancelled job, changes nothing."""
    claim = _chunk_claim(chunk_id=chunk_id, task_id=task_id, worker=worker)
    if not isinstance(claim, ClaimedChunk):
        return claim
    heartbeat.hold(chunk_id=chunk_id, task_id=task_id)
    try:
        results = run_processor(claim.processor, claim.document_ids)
        return _chunk_finish(claim=claim, task_id=task_id, results=results)
    except BaseException:
        _lease_release_quietly(chunk_id=chunk_id, task_id=task_id)
        raise
    finally:
        heartbeat.drop(chunk_id=chunk_id)


def _bookkeeping_commit_async() -> None:
    """Let this transaction's commit skip the WAL flush wait (PostgreSQL ``synchronous_commit``).

    Safe for lease and count bookkeeping only: a commit lost in a database crash leaves the chunk
    leased or pending, and the reaper and the idempotent detection redo it. Saves a disk flush
    (~10 ms) twice per chunk.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


@transaction.atomic
def _chunk_claim(*, chunk_id: int, task_id: str, worker: str) -> ClaimedChunk | str:
    _bookkeeping_commit_async()
    chunk = (
        BatchJobChunk.objects.select_for_update()
        .annotate(lease_live=ExpressionWrapper(Q(lease_expires_at__gt=Now()), output_field=BooleanField()))
        .filter(pk=chunk_id)
        .first()
    )
    if chunk is None:
        return "no such chunk"
    if chunk.task_id != task_id:
        return "superseded by another task"
    if chunk.status in (ChunkStatus.DONE, ChunkStatus.FAILED):
        return "already finished"
    if chunk.status == ChunkStatus.LEASED and chunk.lease_live:
        return f"held by {chunk.leased_by}"  # a second delivery while the first still runs
    job = BatchReprocessingJob.objects.select_for_update().get(pk=chunk.job_id)
    if job.status != JobStatus.RUNNING:
        return f"job {job.status}"
    if job.cancel_requested:
        if chunk.status == ChunkStatus.LEASED:  # an earlier delivery of this task died
            chunk_release(chunk=chunk)
        if not BatchJobChunk.objects.filter(job=job, status=ChunkStatus.LEASED).exists():
            jobs.job_finish(job=job, status=JobStatus.CANCELLED)
        return "job cancelled"
    if jobs.timed_out(job, timezone.now()):
        jobs.job_finish(job=job, status=JobStatus.FAILED, error=jobs.timeout_reason())
        return "job timed out"
    # The same task id on a chunk it leased before means that delivery is gone (its worker died,
    # or the task retries): a new attempt.
    if chunk.attempts >= max_chunk_attempts():
        chunk_give_up(chunk=chunk, job=job)
        return "given up"
    BatchJobChunk.objects.filter(pk=chunk.pk).update(
        status=ChunkStatus.LEASED,
        attempts=F("attempts") + 1,
        leased_by=worker[:255],
        lease_expires_at=lease_expiry(),
        started_at=Coalesce("started_at", Now()),
    )
    return ClaimedChunk(
        chunk_id=chunk.pk, job_id=job.pk, document_ids=[int(d) for d in chunk.document_ids], processor=job.processor
    )


def run_processor(name: str, document_ids: Sequence[int]) -> dict[int, processors.DocumentResult]:
    """Run a chunk with one outcome per document: when the chunk as a whole raises, its documents
    run one by one, so a document that raises every time fails alone."""
    processor = processors.get_processor(name)
    try:
        results = dict(processor(document_ids))
    except CONNECTION_ERRORS:
        raise
    except Exception as exc:
        if len(document_ids) == 1:
            return {document_ids[0]: processors.DocumentResult(processors.FAILED, _reason(exc))}
        logger.warning("chunk of %d documents failed (%s); running them one by one", len(document_ids), exc)
        results = {}
        for document_id in document_ids:
            try:
                results.update(processor([document_id]))
            except CONNECTION_ERRORS:
                raise
            except Exception as one_exc:
                results[document_id] = processors.DocumentResult(processors.FAILED, _reason(one_exc))
    for document_id in document_ids:
        results.setdefault(document_id, processors.DocumentResult(processors.FAILED, "no outcome reported"))
    return {d: results[d] for d in document_ids}


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _chunk_payload(document_ids: Sequence[int], results: dict[int, processors.DocumentResult]) -> dict[str, Any]:
    statuses: Counter[str] = Counter(results[d].status for d in document_ids)
    by_severity: Counter[str] = Counter()
    for document_id in document_ids:
        by_severity.update(results[document_id].by_severity)
    anomalous = [d for d in document_ids if results[d].anomalies]
    named = {
        status: [d for d in document_ids if results[d].status == status][: selectors.FAILURES_CAP]
        for status in (processors.FAILED, processors.SKIPPED)
    }
    noted = anomalous + named[processors.FAILED] + named[processors.SKIPPED]
    # One read, and only when a document is named: most chunks of a rerun need none.
    labels = selectors.document_labels(document_ids=noted) if noted else {}

    def label(document_id: int) -> selectors.DocumentLabel:
        return labels.get(document_id, selectors.UNKNOWN_DOCUMENT)

    by_property: Counter[str] = Counter()
    for document_id in anomalous:
        by_property[label(document_id).property_code] += results[document_id].anomalies
    listed = {
        status: [
            {
                "document_id": d,
                "document": label(d).label,
                "property": label(d).property_code,
                "reason": results[d].reason,
            }
            for d in ids
        ]
        for status, ids in named.items()
    }
    return {
        "processed_count": len(document_ids),
        "successful_count": statuses[processors.OK],
        "failed_count": statuses[processors.FAILED],
        "skipped_count": statuses[processors.SKIPPED],
        "anomaly_count": sum(results[d].anomalies for d in document_ids),
        "results": {
            "by_severity": dict(by_severity),
            "by_property": dict(by_property),
            "failures": listed[processors.FAILED],
            "skipped": listed[processors.SKIPPED],
        },
    }


@transaction.atomic
def _chunk_finish(*, claim: ClaimedChunk, task_id: str, results: dict[int, processors.DocumentResult]) -> str:
    _bookkeeping_commit_async()
    payload = _chunk_payload(claim.document_ids, results)
    # Conditional: if the lease was taken over (reaper) the new holder records the chunk, not us.
    updated = BatchJobChunk.objects.filter(pk=claim.chunk_id, task_id=task_id, status=ChunkStatus.LEASED).update(
        status=ChunkStatus.DONE, finished_at=Now(), lease_expires_at=None, **payload
    )
    if not updated:
        return "lease lost"
    job = BatchReprocessingJob.objects.select_for_update().get(pk=claim.job_id)
    jobs.job_counts_add(job=job, added=payload)
    return "done"


def chunk_give_up(*, chunk: BatchJobChunk, job: BatchReprocessingJob) -> None:
    """Record a chunk delivered ``BATCH_PROCESSING_MAX_CHUNK_ATTEMPTS`` times as failed (rows locked)."""
    reason = f"chunk given up after {chunk.attempts} attempts (its worker died or it kept failing)"
    ids = [int(d) for d in chunk.document_ids]
    payload = _chunk_payload(ids, {d: processors.DocumentResult(processors.FAILED, reason) for d in ids})
    BatchJobChunk.objects.filter(pk=chunk.pk).update(
        status=ChunkStatus.FAILED, error_message=reason, finished_at=Now(), lease_expires_at=None, **payload
    )
    logger.error("job #%s chunk %s: %s", job.pk, chunk.index, reason)
    jobs.job_counts_add(job=job, added=None)


def chunk_release(*, chunk: BatchJobChunk) -> None:
    """Back to pending under ``chunk.task_id`` (the caller may have set a new one; rows locked)."""
    BatchJobChunk.objects.filter(pk=chunk.pk).update(
        status=ChunkStatus.PENDING, leased_by="", lease_expires_at=None, task_id=chunk.task_id
    )


def _lease_release_quietly(*, chunk_id: int, task_id: str) -> None:
    """Hand back the lease of a chunk whose task raised, so the task's retry can claim it at once.

    Best effort: when the database is still gone the lease simply expires and the reaper re-sends
    the chunk under a new task id.
    """
    try:
        if not connection.in_atomic_block:  # a broken connection is replaced, a caller's block kept
            connection.close_if_unusable_or_obsolete()
        BatchJobChunk.objects.filter(pk=chunk_id, task_id=task_id, status=ChunkStatus.LEASED).update(
            status=ChunkStatus.PENDING, leased_by="", lease_expires_at=None
        )
    except DatabaseError as exc:
        logger.warning("chunk %s: lease not released (%s); it expires by itself", chunk_id, exc)


def job_run_inline(*, job_id: int, on_chunk: Callable[[int], None] | None = None) -> None:
    """Run a job's chunks in this process, in order (tests, and a shell without a broker)."""
    jobs.job_run(job_id=job_id)
    for chunk_id, task_id in selectors.job_pending_chunks(job_id=job_id):
        chunk_process(chunk_id=chunk_id, task_id=task_id, worker="inline")
        if on_chunk:
            on_chunk(chunk_id)
