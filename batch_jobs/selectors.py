"""Reads of the batch_jobs app: jobs, their chunks, and the documents a job's filters select."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Now

from batch_jobs.models import (
    BatchJobChunk,
    BatchReprocessingJob,
    ChunkStatus,
    ExtractionStatusFilter,
    JobStatus,
)
from documents.models import DocumentUpload, FinancialPeriod, Property
from documents.scoping import properties_visible_to
from kernel.filters import fits_db_id
from kernel.periods import period_ordinal

FAILURES_CAP = 100  # failures named in a job's results_summary (failed_documents counts them all)


def month_ordinal(day: date) -> int:
    """FinancialPeriod.ordinal of the month containing ``day``."""
    return period_ordinal(day.year, day.month)


def existing_property_ids(*, property_ids: Sequence[int], user: Any | None = None) -> set[int]:
    """Those of ``property_ids`` that exist and ``user`` sees (every one without a user: commands).
    A property outside the user's portfolios reads as unknown: whose it is is never said."""
    properties = Property.objects.all() if user is None else properties_visible_to(user)
    # An id no column can hold is unknown without asking (SQLite would overflow on it).
    return set(properties.filter(id__in=[pk for pk in property_ids if fits_db_id(pk)]).values_list("id", flat=True))


def job_documents(
    *,
    property_ids: Sequence[int] | None = None,
    date_range_start: date | None = None,
    date_range_end: date | None = None,
    document_types: Sequence[str] | None = None,
    extraction_status_filter: str = ExtractionStatusFilter.ALL,
) -> QuerySet[DocumentUpload]:
    """The LATEST versions of the documents matching a job's filters (empty filter = no filter).

    The period range compares month ordinals, so any day of a month selects the whole month.
    """
    qs = DocumentUpload.objects.filter(is_latest=True)
    if property_ids:
        qs = qs.filter(property_id__in=list(property_ids))
    if document_types:
        qs = qs.filter(document_type__in=list(document_types))
    if date_range_start is not None or date_range_end is not None:
        # Resolve the months first (a tiny table): the count then runs on the partial index of
        # latest documents alone, without a join (the API counts at job creation).
        periods = FinancialPeriod.objects.all()
        if date_range_start is not None:
            periods = periods.filter(ordinal__gte=month_ordinal(date_range_start))
        if date_range_end is not None:
            periods = periods.filter(ordinal__lte=month_ordinal(date_range_end))
        qs = qs.filter(period_id__in=list(periods.values_list("id", flat=True)))
    if extraction_status_filter and extraction_status_filter != ExtractionStatusFilter.ALL:
        qs = qs.filter(extraction_status=extraction_status_filter)
    return qs


def job_documents_for(job: BatchReprocessingJob) -> QuerySet[DocumentUpload]:
    return job_documents(
        property_ids=job.property_ids,
        date_range_start=job.date_range_start,
        date_range_end=job.date_range_end,
        document_types=job.document_types,
        extraction_status_filter=job.extraction_status_filter,
    )


def job_document_ids_in_chunk_order(*, job: BatchReprocessingJob) -> list[int]:
    """Ids ordered by property, document type, period: one chunk's series load together."""
    return list(
        job_documents_for(job).order_by("property_id", "document_type", "period__ordinal", "id").values_list("id", flat=True)
    )


def job_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[BatchReprocessingJob]:
    """Jobs over properties ``user`` sees (a job over every property: superusers only), newest first."""
    filters = filters or {}
    qs = BatchReprocessingJob.objects.visible_to(user).select_related("initiated_by").order_by("-created_at", "-id")
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    return qs


def job_get(*, job_id: int, user: Any) -> BatchReprocessingJob | None:
    return BatchReprocessingJob.objects.visible_to(user).select_related("initiated_by").filter(pk=job_id).first()


def job_chunk_status_counts(*, job: BatchReprocessingJob) -> dict[str, int]:
    counts = dict.fromkeys(ChunkStatus.values, 0)
    for row in BatchJobChunk.objects.filter(job=job).values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def job_pending_chunks(*, job_id: int) -> list[tuple[int, str]]:
    """(chunk id, task id) of the job's pending chunks, in chunk order."""
    return list(
        BatchJobChunk.objects.filter(job_id=job_id, status=ChunkStatus.PENDING)
        .order_by("index")
        .values_list("id", "task_id")
    )


def job_unfinished_chunk_statuses(*, job: BatchReprocessingJob) -> set[str]:
    """Which of pending / leased the job's chunks still are (empty: every chunk finished)."""
    return set(
        BatchJobChunk.objects.filter(job=job, status__in=[ChunkStatus.PENDING, ChunkStatus.LEASED])
        .values_list("status", flat=True)
        .distinct()
        .order_by()
    )


def job_chunk_totals(*, job: BatchReprocessingJob) -> dict[str, int]:
    """The job's document counts summed over its finished chunks."""
    sums = BatchJobChunk.objects.filter(job=job, status__in=[ChunkStatus.DONE, ChunkStatus.FAILED]).aggregate(
        processed=Sum("processed_count"),
        successful=Sum("successful_count"),
        failed=Sum("failed_count"),
        skipped=Sum("skipped_count"),
    )
    return {key: value or 0 for key, value in sums.items()}


def running_job_ids() -> list[int]:
    return list(BatchReprocessingJob.objects.filter(status=JobStatus.RUNNING).order_by("id").values_list("id", flat=True))


def running_jobs_pending_chunk_count() -> int:
    return BatchJobChunk.objects.filter(job__status=JobStatus.RUNNING, status=ChunkStatus.PENDING).count()


def batch_workers_idle(*, seconds: float) -> bool:
    """No chunk of any running job is leased, and none finished in the last ``seconds`` (the
    database's clock): the workers are not taking batch chunks, so queued chunk messages are gone."""
    chunks = BatchJobChunk.objects.filter(job__status=JobStatus.RUNNING)
    return not (
        chunks.filter(status=ChunkStatus.LEASED).exists()
        or chunks.filter(finished_at__gt=Now() - timedelta(seconds=seconds)).exists()
    )


def job_quiet_since(*, job_id: int, seconds: float, field: str = "updated_at") -> bool:
    """The job's ``field`` (its last progress, or its start) is older than ``seconds`` on the database's clock."""
    return BatchReprocessingJob.objects.filter(pk=job_id, **{f"{field}__lt": Now() - timedelta(seconds=seconds)}).exists()


class DocumentLabel(NamedTuple):
    property_code: str
    label: str  # "P001 income_statement 2024-03"


UNKNOWN_DOCUMENT = DocumentLabel("?", "document no longer exists")


def document_labels(*, document_ids: Sequence[int]) -> dict[int, DocumentLabel]:
    """How a results summary names documents: property code, document type and period."""
    rows = DocumentUpload.objects.filter(id__in=list(document_ids)).values_list(
        "id", "property__code", "document_type", "period__year", "period__month"
    )
    return {
        pk: DocumentLabel(code, f"{code} {document_type} {year:04d}-{month:02d}")
        for pk, code, document_type, year, month in rows
    }


def job_results_summary(*, job: BatchReprocessingJob) -> dict[str, Any]:
    """A job's outcome from its chunk rows: counts, anomalies by severity and property, failed and
    skipped documents (each named with its reason, up to FAILURES_CAP), chunks by status."""
    by_severity: Counter[str] = Counter()
    by_property: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    skipped_by_reason: Counter[str] = Counter()
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
        for entry in results.get("skipped", []):
            skipped_by_reason[entry["reason"] or "no reason given"] += 1
            if len(skipped) < FAILURES_CAP:
                skipped.append(entry)
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
        # Documents with nothing to score (missing periods, empty statements): named up to
        # FAILURES_CAP, counted by reason (the reasons of the first FAILURES_CAP per chunk).
        "skipped": skipped,
        "skipped_total": job.skipped_documents,
        "skipped_by_reason": dict(skipped_by_reason.most_common()),
        "chunks": dict(chunk_statuses),
    }
