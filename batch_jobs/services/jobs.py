"""Jobs: submit, cancel, run (start, chunk and fan out) and finish a batch reprocessing job."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models.functions import Now
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
from batch_jobs.services import dispatch
from documents.models import DocumentType
from documents.scoping import properties_visible_to, sees_everything
from kernel.exceptions import ApplicationError, ConflictError
from kernel.flags import FeatureFlags
from kernel.logging import log_event

FLAG = "BATCH_REPROCESSING_ENABLED"


def log_state_change(job: BatchReprocessingJob, previous: str | None) -> None:
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


# --- Submit and cancel ------------------------------------------------------------------------------


def _filter_errors(
    *,
    property_ids: Sequence[int],
    date_range_start: date | None,
    date_range_end: date | None,
    document_types: Sequence[str],
    extraction_status_filter: str,
    processor: str,
    user: User | None,
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if property_ids:
        known = selectors.existing_property_ids(property_ids=property_ids, user=user)
        unknown = [pk for pk in property_ids if pk not in known]
        if unknown:
            errors["property_ids"] = [f"Unknown property ids: {', '.join(map(str, unknown))}"]
    if date_range_start and date_range_end and date_range_end < date_range_start:
        errors["date_range_end"] = [f"date_range_end {date_range_end} is before date_range_start {date_range_start}"]
    bad_types = [t for t in document_types if t not in DocumentType.values]
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


def job_submit(
    *,
    job_name: str,
    property_ids: Sequence[int] | None,
    date_range_start: date | None,
    date_range_end: date | None,
    document_types: Sequence[str] | None,
    extraction_status_filter: str = ExtractionStatusFilter.ALL,
    initiated_by: User | AnonymousUser | None,
    processor: str = "detect_anomalies",
) -> BatchReprocessingJob:
    """Validate the filters (BatchJobCreate), count the matching latest documents, store a queued
    job with its task id and send its task once that INSERT commits.

    The INSERT is atomic by itself (no BEGIN/COMMIT round trips, no savepoints: the API's hot path);
    the task leaves at once in autocommit, or when the caller's block commits. Raises
    ``ApplicationError`` with every field error, ``FeatureDisabled`` when the flag is off.
    """
    FeatureFlags.require(FLAG)
    extraction_status_filter = extraction_status_filter or ExtractionStatusFilter.ALL
    property_ids = sorted({int(pk) for pk in property_ids or []})
    document_types = sorted(set(document_types or []))
    user = initiated_by if initiated_by is not None and initiated_by.is_authenticated else None
    if user is not None and not property_ids and not sees_everything(user):
        # "Every property" means every property of the user's portfolios, named on the job.
        property_ids = sorted(properties_visible_to(user).values_list("id", flat=True))
        if not property_ids:
            raise ApplicationError(
                "Invalid batch job filters", field_errors={"property_ids": ["No property in your portfolios."]}
            )
    errors = _filter_errors(
        property_ids=property_ids,
        date_range_start=date_range_start,
        date_range_end=date_range_end,
        document_types=document_types,
        extraction_status_filter=extraction_status_filter,
        processor=processor,
        user=user,
    )
    if errors:
        raise ApplicationError("Invalid batch job filters", field_errors=errors)
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
        celery_task_id=str(uuid.uuid4()),
    )
    log_state_change(job, None)
    dispatch.job_task_send_on_commit(job_id=job.pk, task_id=job.celery_task_id)
    return job


@transaction.atomic
def job_cancel(*, job: BatchReprocessingJob) -> BatchReprocessingJob:
    """Stop a job within one chunk: flag it, revoke the chunk tasks not started, keep finished work.

    A queued job, or a running job with no chunk in flight, is cancelled at once; otherwise the
    chunk in flight finishes and its task ends the job.
    """
    job = BatchReprocessingJob.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise ConflictError(f"Job #{job.pk} is already {job.status}; nothing to cancel")
    job.cancel_requested = True
    job.save(update_fields=["cancel_requested", "updated_at"])
    log_state_change(job, job.status)  # the request itself; the end follows when the job stops
    if job.status == JobStatus.QUEUED or not BatchJobChunk.objects.filter(job=job, status=ChunkStatus.LEASED).exists():
        job_finish(job=job, status=JobStatus.CANCELLED)  # revokes the pending chunk tasks
    else:
        dispatch.tasks_revoke_on_commit(task_ids=_pending_task_ids(job))
    return job


def _pending_task_ids(job: BatchReprocessingJob) -> list[str]:
    ids = list(BatchJobChunk.objects.filter(job=job, status=ChunkStatus.PENDING).values_list("task_id", flat=True))
    if job.status == JobStatus.QUEUED and job.celery_task_id:
        ids.append(job.celery_task_id)
    return ids


# --- Run: start, chunk, fan out ---------------------------------------------------------------------


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
            job_finish(job=job, status=JobStatus.CANCELLED)
            return "cancelled"
        if job.status == JobStatus.QUEUED:
            running = sum(1 for j in active if j.status == JobStatus.RUNNING)
            if running >= settings.BATCH_PROCESSING_MAX_CONCURRENT:
                return "waiting for a slot"
            if not FeatureFlags.is_enabled(FLAG):
                job_finish(job=job, status=JobStatus.FAILED, error=f"{FLAG} is off")
                return "flag off"
            job.status = JobStatus.RUNNING
            job.started_at = now
            job.save(update_fields=["status", "started_at", "updated_at"])
            log_state_change(job, JobStatus.QUEUED)
        if timed_out(job, now):
            job_finish(job=job, status=JobStatus.FAILED, error=timeout_reason())
            return "timed out"
        if not BatchJobChunk.objects.filter(job=job).exists():
            _materialise_chunks(job)
        pending = list(
            BatchJobChunk.objects.filter(job=job, status=ChunkStatus.PENDING).order_by("index").values_list("id", "task_id")
        )
        if not BatchJobChunk.objects.filter(job=job).exclude(status__in=[ChunkStatus.DONE, ChunkStatus.FAILED]).exists():
            job_finish(job=job, status=JobStatus.COMPLETED)
            return "completed"
        dispatch.chunk_tasks_send_on_commit(chunks=pending)
        return f"dispatched {len(pending)} chunks"


def _materialise_chunks(job: BatchReprocessingJob) -> None:
    """Split the job's documents into chunk rows (job row locked by the caller)."""
    ids = selectors.job_document_ids_in_chunk_order(job=job)
    size = settings.BATCH_PROCESSING_CHUNK_SIZE
    BatchJobChunk.objects.bulk_create(
        [
            BatchJobChunk(job=job, index=n, document_ids=ids[start : start + size], task_id=str(uuid.uuid4()))
            for n, start in enumerate(range(0, len(ids), size))
        ],
        batch_size=2000,
    )
    # The documents that exist when the job starts are the ones it processes.
    job.total_documents = len(ids)
    job.save(update_fields=["total_documents", "updated_at"])


# --- Counting and finishing (the job's row locked by the caller) ------------------------------------


def job_counts_add(*, job: BatchReprocessingJob, added: dict[str, int] | None) -> None:
    """Bring the job's counts up to date and end the job when nothing is left.

    ``added``: the counts of the one chunk that just became done, in the same transaction as its
    one-time leased -> done transition, so adding them to the locked row counts it exactly once
    (O(1) per chunk). Without it the counts are recomputed from all chunk rows.
    """
    now = timezone.now()
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
    if job.cancel_requested:
        if not BatchJobChunk.objects.filter(job=job, status=ChunkStatus.LEASED).exists():
            job_finish(job=job, status=JobStatus.CANCELLED)
    elif job.processed_documents >= job.total_documents:
        # A chunk's documents are counted once, when it becomes done or failed, and the total is
        # the sum of the chunks' sizes: every chunk is finished. No query needed to know it.
        job_finish(job=job, status=JobStatus.COMPLETED)
    elif timed_out(job, now):
        job_finish(job=job, status=JobStatus.FAILED, error=timeout_reason())


def _refresh_counts(job: BatchReprocessingJob, now: datetime) -> None:
    # The caller holds the job's row lock, so this read sees every chunk committed before us and
    # any chunk committing after us recomputes again: no update is lost, none counted twice.
    totals = selectors.job_chunk_totals(job=job)
    job.processed_documents = totals["processed"]
    job.successful_documents = totals["successful"]
    job.failed_documents = totals["failed"]
    job.skipped_documents = totals["skipped"]
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
        updated_at=Now(),  # the reaper measures stalls on the database's clock
    )


def _estimate_completion(job: BatchReprocessingJob, now: datetime) -> datetime | None:
    if not job.started_at or not job.processed_documents:
        return None
    remaining = max(job.total_documents - job.processed_documents, 0)
    per_document = (now - job.started_at) / job.processed_documents
    return now + per_document * remaining


def timed_out(job: BatchReprocessingJob, now: datetime) -> bool:
    limit = timedelta(minutes=settings.BATCH_PROCESSING_TIMEOUT_MINUTES)
    return job.status == JobStatus.RUNNING and job.started_at is not None and now - job.started_at > limit


def timeout_reason() -> str:
    return f"timed out: running longer than BATCH_PROCESSING_TIMEOUT_MINUTES={settings.BATCH_PROCESSING_TIMEOUT_MINUTES}"


def job_finish(*, job: BatchReprocessingJob, status: str, error: str = "") -> None:
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
    job.results_summary = selectors.job_results_summary(job=job)
    job.save(
        update_fields=["status", "completed_at", "error_message", "estimated_completion_at", "results_summary", "updated_at"]
    )
    dispatch.tasks_revoke_on_commit(task_ids=revoke_ids)
    log_state_change(job, previous)
    queued_jobs_start(exclude=job.pk)


def queued_jobs_start(*, exclude: int | None = None) -> list[int]:
    """Send the task of the oldest queued jobs that fit in the free slots (after commit).

    Sent again on every reaper pass while they wait, so a queued job whose message a broker lost
    still starts; ``job_run`` is idempotent.
    """
    others = BatchReprocessingJob.objects.all() if exclude is None else BatchReprocessingJob.objects.exclude(pk=exclude)
    running = others.filter(status=JobStatus.RUNNING).count()
    free = settings.BATCH_PROCESSING_MAX_CONCURRENT - running
    if free <= 0:
        return []
    queued = list(
        others.filter(status=JobStatus.QUEUED, cancel_requested=False)
        .exclude(celery_task_id="")
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:free]
    )
    for job_id in queued:
        task_id = str(uuid.uuid4())
        BatchReprocessingJob.objects.filter(pk=job_id).update(celery_task_id=task_id)
        dispatch.job_task_send_on_commit(job_id=job_id, task_id=task_id)
    return queued
