"""Reads of the documents app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict

from documents.filters import DocumentFilter
from documents.models import DocumentUpload, LineItem, PDFFieldCoordinate, Property
from documents.scoping import properties_visible_to
from kernel.exceptions import ApplicationError
from kernel.periods import ordinal_from_label


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
    property_codes: Iterable[str] | None = None,
    document_types: Iterable[str] | None = None,
    period_from: str | None = None,
    period_to: str | None = None,
) -> QuerySet[DocumentUpload]:
    """Latest versions, ordered by property, document type and period (the order detection
    and batch chunks want)."""
    queryset = DocumentUpload.objects.filter(is_latest=True).select_related("property", "period")
    if property_ids is not None:
        queryset = queryset.filter(property_id__in=list(property_ids))
    if property_codes is not None:
        queryset = queryset.filter(property__code__in=list(property_codes))
    if document_types is not None:
        queryset = queryset.filter(document_type__in=list(document_types))
    if period_from:
        queryset = queryset.filter(period__ordinal__gte=ordinal_from_label(period_from))
    if period_to:
        queryset = queryset.filter(period__ordinal__lte=ordinal_from_label(period_to))
    return queryset.order_by("property_id", "document_type", "period__ordinal")


def line_item_list(*, document_ids: Iterable[int]) -> QuerySet[LineItem]:
    """Line items of the given documents, in document and row order."""
    return LineItem.objects.filter(document_id__in=list(document_ids)).order_by("document_id", "row_order")


def pdf_coordinate_list(*, document_id: int) -> QuerySet[PDFFieldCoordinate]:
    return PDFFieldCoordinate.objects.filter(document_id=document_id).order_by("page_number", "y0", "x0")


def property_list(*, user: Any) -> QuerySet[Property]:
    return properties_visible_to(user).order_by("code")
