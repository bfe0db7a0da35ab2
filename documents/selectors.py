"""Reads of the documents app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict

from documents.filters import DocumentFilter
from documents.models import DocumentUpload, ExtractionStatus, LineItem, PDFFieldCoordinate, Property
from documents.scoping import properties_visible_to
from kernel.exceptions import ApplicationError


def document_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[DocumentUpload]:
    """Documents ``user`` may see, with their property and period; latest versions only unless
    ``latest`` is false.

    Filters: property (codes, comma-separated), document_type (one or a list), period_from and
    period_to (YYYY-MM), extraction_status, source_format, latest.
    """
    queryset = (
        DocumentUpload.objects.visible_to(user)
        .select_related("property", "period")
        .order_by("property__code", "document_type", "period__ordinal", "-version")
    )
    filterset = DocumentFilter(_as_query_dict(filters or {}), queryset=queryset)
    if not filterset.is_valid():
        errors = {key: [str(message) for message in messages] for key, messages in filterset.errors.items()}
        raise ApplicationError("Invalid filters.", field_errors=errors)
    return filterset.qs


def _as_query_dict(filters: dict[str, Any]) -> QueryDict:
    """Plain dicts from Python callers read like query strings (lists, booleans, comma lists)."""
    if isinstance(filters, QueryDict):
        return filters
    data = QueryDict(mutable=True)
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, bool):
            data[key] = "true" if value else "false"
        elif isinstance(value, list | tuple | set):
            data.setlist(key, [str(item) for item in value])
        elif key == "document_type":
            data.setlist(key, [part.strip() for part in str(value).split(",") if part.strip()])
        else:
            data[key] = str(value)
    return data


def document_get(*, document_id: int, user: Any) -> DocumentUpload | None:
    return (
        DocumentUpload.objects.visible_to(user)
        .select_related("property", "period", "uploaded_by")
        .filter(id=document_id)
        .first()
    )


def documents_latest(
    *,
    property_ids: Iterable[int] | None = None,
    document_types: Iterable[str] | None = None,
    period_from_ordinal: int | None = None,
    period_to_ordinal: int | None = None,
    extraction_statuses: Iterable[str] | None = None,
) -> QuerySet[DocumentUpload]:
    """The latest version of each document in scope, in chunk order (property, type, period, id).

    The one "latest documents in scope" query of the project (detection runs, batch jobs). A
    failed extraction holds no line to detect on, so it is out of scope unless its status is asked
    for by name: ``extraction_statuses=None`` means every status but ``failed``. Period bounds are
    FinancialPeriod ordinals, inclusive.
    """
    queryset = DocumentUpload.objects.filter(is_latest=True)
    if extraction_statuses is None:
        queryset = queryset.exclude(extraction_status=ExtractionStatus.FAILED)
    else:
        queryset = queryset.filter(extraction_status__in=list(extraction_statuses))
    if property_ids is not None:
        queryset = queryset.filter(property_id__in=list(property_ids))
    if document_types is not None:
        queryset = queryset.filter(document_type__in=list(document_types))
    if period_from_ordinal is not None:
        queryset = queryset.filter(period__ordinal__gte=period_from_ordinal)
    if period_to_ordinal is not None:
        queryset = queryset.filter(period__ordinal__lte=period_to_ordinal)
    return queryset.order_by("property_id", "document_type", "period__ordinal", "id")


def line_items_of_latest_documents() -> QuerySet[LineItem]:
    """The lines of the latest, not failed, documents: what detection and the console read."""
    return LineItem.objects.filter(document__is_latest=True).exclude(document__extraction_status=ExtractionStatus.FAILED)


def line_item_list(*, document_ids: Iterable[int]) -> QuerySet[LineItem]:
    """Line items of the given documents, in document and row order."""
    return LineItem.objects.filter(document_id__in=list(document_ids)).order_by("document_id", "row_order")


def pdf_coordinate_list(*, document_id: int) -> QuerySet[PDFFieldCoordinate]:
    return PDFFieldCoordinate.objects.filter(document_id=document_id).order_by("page_number", "y0", "x0")


def property_list(*, user: Any) -> QuerySet[Property]:
    return properties_visible_to(user).order_by("code")
