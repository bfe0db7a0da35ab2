"""Reads of the batch_jobs app: jobs, their chunks, and the documents a job's filters select."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django.db.models import Count, QuerySet

from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, ExtractionStatusFilter
from documents.models import DocumentUpload, FinancialPeriod
from kernel.periods import period_ordinal


def month_ordinal(day: date) -> int:
    """FinancialPeriod.ordinal of the month containing ``day``."""
    return period_ordinal(day.year, day.month)


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


def job_document_ids_in_chunk_order(job: BatchReprocessingJob) -> list[int]:
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


def job_chunks(*, job: BatchReprocessingJob) -> QuerySet[BatchJobChunk]:
    return BatchJobChunk.objects.filter(job=job).order_by("index")


def job_chunk_status_counts(*, job: BatchReprocessingJob) -> dict[str, int]:
    counts = dict.fromkeys(ChunkStatus.values, 0)
    for row in BatchJobChunk.objects.filter(job=job).values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts
