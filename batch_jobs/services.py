"""Writes of the batch_jobs app: create, start, run, cancel and reap batch reprocessing jobs.

PostgreSQL is the source of truth. A job's documents are split into ``BatchJobChunk`` rows when it
starts; each chunk is run by exactly one Celery task (its ``task_id``) which leases the chunk,
processes it, and marks it done together with its counts in one transaction. The job's counts are
recomputed from its chunk rows under the job's row lock, so a chunk that runs twice (redelivery,
retry, resume) is counted once. Locks are always taken chunk first, then job.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from batch_jobs import processors, selectors
from batch_jobs.models import (
    ACTIVE_STATUSES,
    BatchJobChunk,
    BatchReprocessingJob,
    ChunkStatus,
    ExtractionStatusFilter,
    JobStatus,
)
from documents.models import DocumentType, DocumentUpload, Property
from documents.scoping import SYSTEM, properties_visible_to, sees_everything
from kernel.exceptions import ApplicationError, ConflictError
from kernel.filters import fits_db_id
from kernel.flags import FeatureFlags
from kernel.logging import log_event

logger = logging.getLogger(__name__)

FLAG = "BATCH_REPROCESSING_ENABLED"
FAILURES_CAP = 100  # failures kept in a job's results_summary (failures_total counts them all)


def _log_state_change(job: BatchReprocessingJob, previous: str | None) -> None:
    """One structured line per job state change, written once the change is committed."""
    fields = {
        "job_id": job.pk,
        "job_name": job.job_name,
        "previous_status": previous,
        "status": job.status,
        "initiated_by_id": job.initiated_by_id,
        "celery_task_id": job.celery_task_id or None,
        "total_documents": job.total_documents,
        "processed_documents": job.processed_documents,
        "successful_documents": job.successful_documents,
        "failed_documents": job.failed_documents,
        "skipped_documents": job.skipped_documents,
        "cancel_requested": job.cancel_requested,
        "reason": job.error_message or None,
    }
    level = logging.WARNING if job.status == JobStatus.FAILED else logging.INFO
    transaction.on_commit(lambda: log_event("batch_job_state", level=level, **fields))


def lease_seconds() -> int:
    """How long a worker holds a chunk before the reaper may hand it to another worker."""
    return settings.BATCH_PROCESSING_LEASE_SECONDS


def max_chunk_attempts() -> int:
    """Deliveries of one chunk before it is given up as failed (bounds a poison chunk)."""
    return settings.BATCH_PROCESSING_MAX_CHUNK_ATTEMPTS


# --- Create / start / status / cancel / list ------------------------------------------------------


def _validate_filters(
    *,
    property_ids: Sequence[int] | None,
    date_range_start: date | None,
    date_range_end: date | None,
    document_types: Sequence[str] | None,
    extraction_status_filter: str,
    processor: str,
    visible: QuerySet[Property],
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    wanted = sorted({int(pk) for pk in property_ids or []})
    if wanted:
        # An id no column can hold is unknown without asking (SQLite would overflow on it). A
        # property outside the user's portfolios reads as unknown: whose it is is never said.
        known = set(visible.filter(id__in=[pk for pk in wanted if fits_db_id(pk)]).values_list("id", flat=True))
        unknown = [pk for pk in wanted if pk not in known]
        if unknown:
            errors["property_ids"] = [f"Unknown property ids: {', '.join(map(str, unknown))}"]
    if date_range_start and date_range_end and date_range_end < date_range_start:
        errors["date_range_end"] = [f"date_range_end {date_range_end} is before date_range_start {date_range_start}"]
    bad_types = [t for t in document_types or [] if t not in DocumentType.values]
    if bad_types:
        errors["document_types"] = [
            f"Unknown document type(s): {', '.join(map(str, bad_types))}; expected one of {', '.join(DocumentType.values)}"
        ]
    if extraction_status_filter not in ExtractionStatusFilter.values:
        errors["extraction_status_filter"] = [
            f"Unknown status filter {extraction_status_filter!r}; expected one of {', '.join(ExtractionStatusFilter.values)}"
        ]
    if processor not in processors.processor_names():
        errors["processor"] = [f"Unknown processor {processor!r}"]
    return errors


@transaction.atomic
def create_batch_job(**filters: Any) -> BatchReprocessingJob:
    """Validate the filters (BatchJobCreate), count the matching latest documents, store a queued job.

    Keyword arguments: job_name, property_ids, date_range_start, date_range_end, document_types,
    extraction_status_filter='all', initiated_by, processor='detect_anomalies' (see ``_new_job``).
    """
    return _new_job(**filters)


def _new_job(
    *,
    job_name: str,
    property_ids: Sequence[int] | None,
    date_range_start: date | None,
    date_range_end: date | None,
    document_types: Sequence[str] | None,
    extraction_status_filter: str = ExtractionStatusFilter.ALL,
    initiated_by: Any | None,
    processor: str = "detect_anomalies",
    celery_task_id: str = "",
) -> BatchReprocessingJob:
    FeatureFlags.require(FLAG)
    extraction_status_filter = extraction_status_filter or ExtractionStatusFilter.ALL
    user = initiated_by if getattr(initiated_by, "is_authenticated", False) else None
    # Commands (no user) and superusers reach every property; anyone else their portfolios'.
    visible = Property.objects.all() if user is None else properties_visible_to(user)
    if user is not None and not property_ids and not sees_everything(user):
        # "Every property" means every property the user sees, named on the job.
        property_ids = list(visible.values_list("id", flat=True))
        if not property_ids:
            raise ApplicationError(
                "Invalid batch job filters", field_errors={"property_ids": ["No property in your portfolios."]}
            )
    errors = _validate_filters(
        property_ids=property_ids,
        date_range_start=date_range_start,
        date_range_end=date_range_end,
        document_types=document_types,
        extraction_status_filter=extraction_status_filter,
        processor=processor,
        visible=visible,
    )
    if errors:
        raise ApplicationError("Invalid batch job filters", field_errors=errors)
    property_ids = sorted({int(pk) for pk in property_ids or []})
    document_types = sorted(set(document_types or []))
    total = selectors.job_documents(
        property_ids=property_ids,
        date_range_start=date_range_start,
        date_range_end=date_range_end,
        document_types=document_types,
        extraction_status_filter=extraction_status_filter,
    ).count()
    job = BatchReprocessingJob.objects.create(
        job_name=(job_name or "").strip() or f"Reprocess {timezone.now():%Y-%m-%d %H:%M}",
        initiated_by=user,
        property_ids=property_ids,
        date_range_start=date_range_start,
        date_range_end=date_range_end,
        document_types=document_types,
        extraction_status_filter=extraction_status_filter,
        processor=processor,
        total_documents=total,
        celery_task_id=celery_task_id,
    )
    _log_state_change(job, None)
    return job


@transaction.atomic
def start_batch_job(*, job: BatchReprocessingJob) -> BatchReprocessingJob:
    """Queue the job's task once this transaction commits; store its task id on the job."""
    FeatureFlags.require(FLAG)
    job = BatchReprocessingJob.objects.select_for_update().get(pk=job.pk)
    if job.status != JobStatus.QUEUED:
        raise ConflictError(f"Job #{job.pk} is {job.status}; only a queued job can be started")
    job.celery_task_id = str(uuid.uuid4())
    job.save(update_fields=["celery_task_id", "updated_at"])
    _send_job_task_on_commit(job.pk, job.celery_task_id)
    return job


def submit_batch_job(**filters: Any) -> BatchReprocessingJob:
    """create_batch_job + start_batch_job, the API's hot path: the job is stored with its task id
    by one INSERT (atomic by itself: no BEGIN/COMMIT round trips, no savepoints), and its task is
    sent once that INSERT has committed (at once in autocommit, or when the caller's block commits).
    """
    job = _new_job(**filters, celery_task_id=str(uuid.uuid4()))
    _send_job_task_on_commit(job.pk, job.celery_task_id)
    return job


def get_job_status(*, job_id: int) -> dict[str, Any]:
    job = selectors.job_get(job_id=job_id, user=SYSTEM)
    if job is None:
        raise ApplicationError(f"Batch job #{job_id} does not exist", field_errors={"job_id": ["not found"]})
    return {
        "id": job.pk,
        "job_name": job.job_name,
        "status": job.status,
        "progress_pct": job.progress_pct,
        "estimated_completion_at": job.estimated_completion_at,
        "total_documents": job.total_documents,
        "processed_documents": job.processed_documents,
        "successful_documents": job.successful_documents,
        "failed_documents": job.failed_documents,
        "skipped_documents": job.skipped_documents,
        "cancel_requested": job.cancel_requested,
        "error_message": job.error_message,
        "results_summary": job.results_summary,
        "chunks": selectors.job_chunk_status_counts(job=job),
        "duration_seconds": job.duration_seconds,
    }


def list_jobs(*, status: str | None = None):
    return selectors.job_list(user=SYSTEM, filters={"status": status})


@transaction.atomic
def cancel_job(*, job: BatchReprocessingJob) -> BatchReprocessingJob:
    """Stop a job within one chunk: flag it, revoke the chunk tasks not started, keep finished work.

    A queued job, or a running job with no chunk in flight, is cancelled at once; otherwise the
    chunk in flight finishes and its task ends the job.
    """
    job = BatchReprocessingJob.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise ConflictError(f"Job #{job.pk} is already {job.status}; nothing to cancel")
    job.cancel_requested = True
    job.save(update_fields=["cancel_requested", "updated_at"])
    _log_state_change(job, job.status)  # the request itself; the end follows when the job stops
    if job.status == JobStatus.QUEUED or not BatchJobChunk.objects.filter(job=job, status=ChunkStatus.LEASED).exists():
        _finish_job(job, JobStatus.CANCELLED)  # revokes the pending chunk tasks
    else:
        _revoke_on_commit(_pending_task_ids(job))
    return job


def _pending_task_ids(job: BatchReprocessingJob) -> list[str]:
    ids = list(BatchJobChunk.objects.filter(job=job, status=ChunkStatus.PENDING).values_list("task_id", flat=True))
    if job.status == JobStatus.QUEUED and job.celery_task_id:
        ids.append(job.celery_task_id)
    return ids


# --- Running a job (called by batch_jobs.tasks) ---------------------------------------------------


@dataclass(frozen=True)
class ClaimedChunk:
    chunk_id: int
    job_id: int
    document_ids: list[int]
    processor: str


def job_run(*, job_id: int) -> str:
    """Start (if a slot is free) and chunk a job, then fan out its chunk tasks. Idempotent."""
    with transaction.atomic():
        # Every active job row is locked, in id order, so that two jobs starting at once cannot
        # both take the last slot.
        active = list(BatchReprocessingJob.objects.select_for_update().filter(status__in=ACTIVE_STATUSES).order_by("id"))
        job = next((j for j in active if j.pk == job_id), None)
        if job is None:
            return "not active"
        now = timezone.now()
        if job.cancel_requested:
            _finish_job(job, JobStatus.CANCELLED)
            return "cancelled"
        if job.status == JobStatus.QUEUED:
            running = sum(1 for j in active if j.status == JobStatus.RUNNING)
            if running >= settings.BATCH_PROCESSING_MAX_CONCURRENT:
                return "waiting for a slot"
            if not FeatureFlags.is_enabled(FLAG):
                _finish_job(job, JobStatus.FAILED, error=f"{FLAG} is off")
                return "flag off"
            job.status = JobStatus.RUNNING
            job.started_at = now
            job.save(update_fields=["status", "started_at", "updated_at"])
            _log_state_change(job, JobStatus.QUEUED)
        if _timed_out(job, now):
            _finish_job(job, JobStatus.FAILED, error=_timeout_reason())
            return "timed out"
        if not BatchJobChunk.objects.filter(job=job).exists():
            _materialise_chunks(job)
        pending = list(
            BatchJobChunk.objects.filter(job=job, status=ChunkStatus.PENDING).order_by("index").values_list("id", "task_id")
        )
        if not BatchJobChunk.objects.filter(job=job).exclude(status__in=[ChunkStatus.DONE, ChunkStatus.FAILED]).exists():
            _finish_job(job, JobStatus.COMPLETED)
            return "completed"
        _send_chunk_tasks_on_commit(pending)
        return f"dispatched {len(pending)} chunks"


def _materialise_chunks(job: BatchReprocessingJob) -> None:
    """Split the job's documents into chunk rows (job row locked by the caller)."""
    ids = selectors.job_document_ids_in_chunk_order(job)
    size = settings.BATCH_PROCESSING_CHUNK_SIZE
    BatchJobChunk.objects.bulk_create(
        [
            BatchJobChunk(job=job, index=n, document_ids=ids[start : start + size], task_id=str(uuid.uuid4()))
            for n, start in enumerate(range(0, len(ids), size))
        ],
        batch_size=1000,
    )
    # The documents that exist when the job starts are the ones it processes.
    job.total_documents = len(ids)
    job.save(update_fields=["total_documents", "updated_at"])


def chunk_process(*, chunk_id: int, task_id: str, worker: str = "") -> str:
    """Lease, process and record one chunk. Safe to call again for the same chunk and task."""
    claim = _chunk_claim(chunk_id=chunk_id, task_id=task_id, worker=worker)
    if not isinstance(claim, ClaimedChunk):
        return claim
    results = run_processor(claim.processor, claim.document_ids)
    return _chunk_finish(
        chunk_id=chunk_id, job_id=claim.job_id, task_id=task_id, document_ids=claim.document_ids, results=results
    )


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
    chunk = BatchJobChunk.objects.select_for_update().filter(pk=chunk_id).first()
    if chunk is None:
        return "no such chunk"
    if chunk.task_id != task_id:
        return "superseded by another task"
    if chunk.status in (ChunkStatus.DONE, ChunkStatus.FAILED):
        return "already finished"
    job = BatchReprocessingJob.objects.select_for_update().get(pk=chunk.job_id)
    if job.status != JobStatus.RUNNING:
        return f"job {job.status}"
    now = timezone.now()
    if job.cancel_requested:
        if chunk.status == ChunkStatus.LEASED:  # an earlier delivery of this task died
            _release(chunk)
        if not BatchJobChunk.objects.filter(job=job, status=ChunkStatus.LEASED).exists():
            _finish_job(job, JobStatus.CANCELLED)
        return "job cancelled"
    if _timed_out(job, now):
        _finish_job(job, JobStatus.FAILED, error=_timeout_reason())
        return "job timed out"
    # Same task id again means the earlier delivery is gone (worker lost, retry): a new attempt.
    if chunk.attempts >= max_chunk_attempts():
        _give_up_chunk(chunk, job)
        return "given up"
    chunk.status = ChunkStatus.LEASED
    chunk.attempts += 1
    chunk.leased_by = worker[:255]
    chunk.lease_expires_at = now + timedelta(seconds=lease_seconds())
    chunk.started_at = chunk.started_at or now
    chunk.save(update_fields=["status", "attempts", "leased_by", "lease_expires_at", "started_at"])
    return ClaimedChunk(
        chunk_id=chunk.pk, job_id=job.pk, document_ids=[int(d) for d in chunk.document_ids], processor=job.processor
    )


def run_processor(name: str, document_ids: Sequence[int]) -> dict[int, processors.DocumentResult]:
    """Run a chunk; when the chunk as a whole raises, run its documents one by one to find the bad one."""
    processor = processors.get_processor(name)
    try:
        results = dict(processor(document_ids))
    except OperationalError:
        raise  # the database is unreachable: let the task retry rather than fail documents
    except Exception as exc:
        if len(document_ids) == 1:
            return {document_ids[0]: processors.DocumentResult(processors.FAILED, _reason(exc))}
        logger.warning("chunk of %d documents failed (%s); retrying them one by one", len(document_ids), exc)
        results = {}
        for document_id in document_ids:
            try:
                results.update(processor([document_id]))
            except OperationalError:
                raise
            except Exception as one_exc:
                results[document_id] = processors.DocumentResult(processors.FAILED, _reason(one_exc))
    for document_id in document_ids:
        results.setdefault(document_id, processors.DocumentResult(processors.FAILED, "no outcome reported"))
    return {d: results[d] for d in document_ids}


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _chunk_payload(document_ids: Sequence[int], results: dict[int, processors.DocumentResult]) -> dict[str, Any]:
    codes = dict(DocumentUpload.objects.filter(id__in=document_ids).values_list("id", "property__code"))
    by_severity: Counter[str] = Counter()
    by_property: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    statuses: Counter[str] = Counter()
    for document_id in document_ids:
        outcome = results[document_id]
        statuses[outcome.status] += 1
        by_severity.update(outcome.by_severity)
        code = codes.get(document_id, "?")
        if outcome.anomalies:
            by_property[code] += outcome.anomalies
        if outcome.status == processors.FAILED:
            failures.append({"document_id": document_id, "property": code, "reason": outcome.reason})
    return {
        "processed_count": len(document_ids),
        "successful_count": statuses[processors.OK],
        "failed_count": statuses[processors.FAILED],
        "skipped_count": statuses[processors.SKIPPED],
        "anomaly_count": sum(results[d].anomalies for d in document_ids),
        "results": {"by_severity": dict(by_severity), "by_property": dict(by_property), "failures": failures[:FAILURES_CAP]},
    }


@transaction.atomic
def _chunk_finish(
    *,
    chunk_id: int,
    job_id: int,
    task_id: str,
    document_ids: Sequence[int],
    results: dict[int, processors.DocumentResult],
) -> str:
    _bookkeeping_commit_async()
    payload = _chunk_payload(document_ids, results)
    now = timezone.now()
    # Conditional: if the lease was taken over (reaper) the new holder records the chunk, not us.
    updated = BatchJobChunk.objects.filter(pk=chunk_id, task_id=task_id, status=ChunkStatus.LEASED).update(
        status=ChunkStatus.DONE, finished_at=now, lease_expires_at=None, **payload
    )
    if not updated:
        return "lease lost"
    job = BatchReprocessingJob.objects.select_for_update().get(pk=job_id)
    _after_chunk(job, now, added=payload)
    return "done"


def _give_up_chunk(chunk: BatchJobChunk, job: BatchReprocessingJob) -> None:
    reason = f"chunk given up after {chunk.attempts} attempts (its worker died or it kept failing)"
    ids = [int(d) for d in chunk.document_ids]
    results = {d: processors.DocumentResult(processors.FAILED, reason) for d in ids}
    for key, value in _chunk_payload(ids, results).items():
        setattr(chunk, key, value)
    chunk.status = ChunkStatus.FAILED
    chunk.error_message = reason
    chunk.finished_at = timezone.now()
    chunk.lease_expires_at = None
    chunk.save()
    logger.error("job #%s chunk %s: %s", job.pk, chunk.index, reason)
    _after_chunk(job, chunk.finished_at)


def _release(chunk: BatchJobChunk) -> None:
    chunk.status = ChunkStatus.PENDING
    chunk.leased_by = ""
    chunk.lease_expires_at = None
    chunk.save(update_fields=["status", "leased_by", "lease_expires_at", "task_id"])


def _after_chunk(job: BatchReprocessingJob, now: datetime, *, added: dict[str, Any] | None = None) -> None:
    """Bring the job's counts up to date (job row locked) and end the job when nothing is left.

    ``added``: the counts of the one chunk that just became done, in the same transaction as its
    one-time leased -> done transition, so adding them to the locked row counts it exactly once
    (O(1) per chunk). Without it the counts are recomputed from all chunk rows.
    """
    if added is None:
        _refresh_counts(job, now)
    else:
        job.processed_documents += added["processed_count"]
        job.successful_documents += added["successful_count"]
        job.failed_documents += added["failed_count"]
        job.skipped_documents += added["skipped_count"]
        _save_counts(job, now)
    if job.status != JobStatus.RUNNING:
        return  # cancelled or failed meanwhile: the finished chunk's counts are kept, nothing else
    left = set(
        BatchJobChunk.objects.filter(job=job, status__in=[ChunkStatus.PENDING, ChunkStatus.LEASED])
        .values_list("status", flat=True)
        .distinct()
    )
    in_flight = ChunkStatus.LEASED in left
    if job.cancel_requested and not in_flight:
        _finish_job(job, JobStatus.CANCELLED)
    elif not left:
        _finish_job(job, JobStatus.COMPLETED)
    elif _timed_out(job, now):
        _finish_job(job, JobStatus.FAILED, error=_timeout_reason())


def _refresh_counts(job: BatchReprocessingJob, now: datetime) -> None:
    # The caller holds the job's row lock, so this read sees every chunk committed before us and
    # any chunk committing after us recomputes again: no update is lost, none counted twice.
    sums = BatchJobChunk.objects.filter(job=job, status__in=[ChunkStatus.DONE, ChunkStatus.FAILED]).aggregate(
        processed=Sum("processed_count"),
        successful=Sum("successful_count"),
        failed=Sum("failed_count"),
        skipped=Sum("skipped_count"),
    )
    job.processed_documents = sums["processed"] or 0
    job.successful_documents = sums["successful"] or 0
    job.failed_documents = sums["failed"] or 0
    job.skipped_documents = sums["skipped"] or 0
    _save_counts(job, now)


def _save_counts(job: BatchReprocessingJob, now: datetime) -> None:
    job.estimated_completion_at = _estimate_completion(job, now)
    job.updated_at = now
    BatchReprocessingJob.objects.filter(pk=job.pk).update(
        processed_documents=job.processed_documents,
        successful_documents=job.successful_documents,
        failed_documents=job.failed_documents,
        skipped_documents=job.skipped_documents,
        estimated_completion_at=job.estimated_completion_at,
        updated_at=now,
    )


def _estimate_completion(job: BatchReprocessingJob, now: datetime) -> datetime | None:
    if not job.started_at or not job.processed_documents:
        return None
    remaining = max(job.total_documents - job.processed_documents, 0)
    per_document = (now - job.started_at) / job.processed_documents
    return now + per_document * remaining


def _timed_out(job: BatchReprocessingJob, now: datetime) -> bool:
    limit = timedelta(minutes=settings.BATCH_PROCESSING_TIMEOUT_MINUTES)
    return job.status == JobStatus.RUNNING and job.started_at is not None and now - job.started_at > limit


def _timeout_reason() -> str:
    return f"timed out: running longer than BATCH_PROCESSING_TIMEOUT_MINUTES={settings.BATCH_PROCESSING_TIMEOUT_MINUTES}"


def _finish_job(job: BatchReprocessingJob, status: str, *, error: str = "") -> None:
    """End a job (its row locked by the caller): final counts, results summary, free the slot."""
    now = timezone.now()
    revoke_ids = _pending_task_ids(job) if status != JobStatus.COMPLETED else []
    _refresh_counts(job, now)
    previous = job.status
    job.status = status
    job.completed_at = now
    job.error_message = error
    if status == JobStatus.COMPLETED:
        job.estimated_completion_at = now
    job.results_summary = build_results_summary(job)
    job.save(
        update_fields=["status", "completed_at", "error_message", "estimated_completion_at", "results_summary", "updated_at"]
    )
    _revoke_on_commit(revoke_ids)
    _log_state_change(job, previous)
    _start_queued_jobs(exclude=job.pk)


def build_results_summary(job: BatchReprocessingJob) -> dict[str, Any]:
    by_severity: Counter[str] = Counter()
    by_property: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    anomalies = 0
    chunk_statuses: Counter[str] = Counter()
    rows = BatchJobChunk.objects.filter(job=job).order_by("index").values("status", "anomaly_count", "results")
    for row in rows.iterator(chunk_size=2000):
        chunk_statuses[row["status"]] += 1
        anomalies += row["anomaly_count"]
        results = row["results"] or {}
        by_severity.update(results.get("by_severity", {}))
        by_property.update(results.get("by_property", {}))
        if len(failures) < FAILURES_CAP:
            failures.extend(results.get("failures", [])[: FAILURES_CAP - len(failures)])
    return {
        "documents": {
            "total": job.total_documents,
            "processed": job.processed_documents,
            "successful": job.successful_documents,
            "failed": job.failed_documents,
            "skipped": job.skipped_documents,
            "not_processed": max(job.total_documents - job.processed_documents, 0),
        },
        "anomalies": {"total": anomalies, "by_severity": dict(by_severity), "by_property": dict(by_property)},
        "failures": failures,
        "failures_total": job.failed_documents,
        "chunks": dict(chunk_statuses),
    }


# --- Slots and the reaper ------------------------------------------------------------------------


def _start_queued_jobs(*, exclude: int | None = None) -> list[int]:
    """Send the task of the oldest queued jobs that fit in the free slots (after commit)."""
    running = BatchReprocessingJob.objects.filter(status=JobStatus.RUNNING).exclude(pk=exclude).count()
    free = settings.BATCH_PROCESSING_MAX_CONCURRENT - running
    if free <= 0:
        return []
    queued = list(
        BatchReprocessingJob.objects.filter(status=JobStatus.QUEUED, cancel_requested=False)
        .exclude(celery_task_id="")
        .exclude(pk=exclude)
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:free]
    )
    for job_id in queued:
        task_id = str(uuid.uuid4())
        BatchReprocessingJob.objects.filter(pk=job_id).update(celery_task_id=task_id)
        _send_job_task_on_commit(job_id, task_id)
    return queued


def chunks_requeue_expired(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic reaper: time out jobs, re-queue expired leases and stalled chunks, end finished
    jobs, start queued jobs when slots are free. Every step is safe to repeat."""
    now = now or timezone.now()
    report = Counter()
    for job_id in BatchReprocessingJob.objects.filter(status=JobStatus.RUNNING).values_list("id", flat=True):
        report.update(_reap_job(job_id, now))
    with transaction.atomic():
        report["jobs_started"] += len(_start_queued_jobs())
    return dict(report)


@transaction.atomic
def _reap_job(job_id: int, now: datetime) -> Counter:
    report: Counter[str] = Counter()
    # Chunks first, then the job: the same lock order as the chunk tasks.
    expired = list(
        BatchJobChunk.objects.select_for_update(skip_locked=True).filter(
            job_id=job_id, status=ChunkStatus.LEASED, lease_expires_at__lt=now
        )
    )
    job = BatchReprocessingJob.objects.select_for_update().get(pk=job_id)
    if job.status != JobStatus.RUNNING:
        return report
    if _timed_out(job, now):
        _finish_job(job, JobStatus.FAILED, error=_timeout_reason())
        report["jobs_timed_out"] += 1
        return report
    resend: list[tuple[int, str]] = []
    for chunk in expired:
        if chunk.attempts >= max_chunk_attempts():
            _give_up_chunk(chunk, job)
            report["chunks_given_up"] += 1
            continue
        chunk.task_id = str(uuid.uuid4())
        _release(chunk)
        resend.append((chunk.pk, chunk.task_id))
        report["chunks_requeued"] += 1
    has_chunks = BatchJobChunk.objects.filter(job=job).exists()
    stalled_since = now - timedelta(seconds=lease_seconds())
    in_flight = BatchJobChunk.objects.filter(job=job, status=ChunkStatus.LEASED).exists()
    if not has_chunks:
        if job.started_at and job.started_at < stalled_since:
            # The job's own task died before chunking it: send it again.
            job.celery_task_id = str(uuid.uuid4())
            job.save(update_fields=["celery_task_id", "updated_at"])
            _send_job_task_on_commit(job.pk, job.celery_task_id)
            report["jobs_resent"] += 1
        return report
    if not in_flight and not resend and job.updated_at < stalled_since:
        # Nothing leased and no progress for a lease period: the queued chunk messages were lost
        # (a broker restart); hand the pending chunks out again under new task ids.
        pending = list(BatchJobChunk.objects.select_for_update(skip_locked=True).filter(job=job, status=ChunkStatus.PENDING))
        for chunk in pending:
            chunk.task_id = str(uuid.uuid4())
        BatchJobChunk.objects.bulk_update(pending, ["task_id"], batch_size=1000)
        resend.extend((c.pk, c.task_id) for c in pending)
        report["chunks_requeued"] += len(pending)
        if pending:
            BatchReprocessingJob.objects.filter(pk=job.pk).update(updated_at=now)
    if not resend:
        _after_chunk(job, now)  # ends a job whose chunks are all finished
        if job.status != JobStatus.RUNNING:
            report["jobs_finished"] += 1
    _send_chunk_tasks_on_commit(resend)
    return report


# --- Broker side effects, always after commit -----------------------------------------------------


def _send_job_task_on_commit(job_id: int, task_id: str) -> None:
    def send() -> None:
        from batch_jobs.tasks import reprocess_documents_batch

        reprocess_documents_batch.apply_async(args=[job_id], task_id=task_id)

    transaction.on_commit(send)


def _send_chunk_tasks_on_commit(chunks: Sequence[tuple[int, str]]) -> None:
    if not chunks:
        return
    chunks = list(chunks)

    def send() -> None:
        from batch_jobs.tasks import process_batch_chunk

        for chunk_id, task_id in chunks:
            process_batch_chunk.apply_async(args=[chunk_id], task_id=task_id)

    transaction.on_commit(send)


def _revoke_on_commit(task_ids: Iterable[str]) -> None:
    ids = [t for t in task_ids if t]
    if not ids:
        return

    def revoke() -> None:
        from reims.celery import app

        try:
            # Skips tasks not yet started; never terminate: the cancel flag stops the rest.
            app.control.revoke(ids)
        except Exception as exc:  # e.g. a broker without broadcast support
            logger.warning("could not revoke %d chunk tasks: %s", len(ids), exc)

    transaction.on_commit(revoke)


def run_job_inline(*, job_id: int, on_chunk: Callable[[int], None] | None = None) -> None:
    """Run a started job's chunks in this process, in order (for tests and a broker-less shell)."""
    job_run(job_id=job_id)
    for chunk_id, task_id in (
        BatchJobChunk.objects.filter(job_id=job_id, status=ChunkStatus.PENDING)
        .order_by("index")
        .values_list("id", "task_id")
    ):
        chunk_process(chunk_id=chunk_id, task_id=task_id, worker="inline")
        if on_chunk:
            on_chunk(chunk_id)


__all__ = [
    "cancel_job",
    "chunk_process",
    "chunks_requeue_expired",
    "create_batch_job",
    "get_job_status",
    "job_run",
    "list_jobs",
    "start_batch_job",
    "submit_batch_job",
]
