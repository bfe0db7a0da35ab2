"""Filters of the document list (API and selectors)."""

from __future__ import annotations

import django_filters
from django.core.validators import RegexValidator
from django.db.models import QuerySet

from documents.models import DocumentType, DocumentUpload, ExtractionStatus, SourceFormat
from kernel.periods import ordinal_from_label

_TRUE_VALUES = frozenset({"true", "True", "1"})
_FALSE_VALUES = frozenset({"false", "False", "0"})
PERIOD_VALIDATOR = RegexValidator(r"\A[0-9]{4}-(0[1-9]|1[0-2])\Z", "Expected a period YYYY-MM.")


class DocumentFilter(django_filters.FilterSet):
    property = django_filters.CharFilter(method="filter_property", help_text="property code(s), comma-separated")
    document_type = django_filters.MultipleChoiceFilter(choices=DocumentType.choices)
    period_from = django_filters.CharFilter(method="filter_period_from", validators=[PERIOD_VALIDATOR])
    period_to = django_filters.CharFilter(method="filter_period_to", validators=[PERIOD_VALIDATOR])
    extraction_status = django_filters.ChoiceFilter(choices=ExtractionStatus.choices)
    source_format = django_filters.ChoiceFilter(choices=SourceFormat.choices)
    # A choice, not a BooleanFilter: django-filter reads an unknown boolean ("yes please") as
    # "not given", and a typo should be a 400, not silently the default.
    latest = django_filters.ChoiceFilter(
        choices=[(value, value) for value in sorted(_TRUE_VALUES | _FALSE_VALUES)],
        method="filter_latest",
        help_text="latest versions only (default true)",
    )

    class Meta:
        model = DocumentUpload
        fields = ["property", "document_type", "period_from", "period_to", "extraction_status", "source_format", "latest"]

    def filter_property(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        codes = [code.strip() for code in value.split(",") if code.strip()]
        return queryset.filter(property__code__in=codes) if codes else queryset

    def filter_period_from(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(period__ordinal__gte=ordinal_from_label(value))

    def filter_period_to(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(period__ordinal__lte=ordinal_from_label(value))

    def filter_latest(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset if value.lower() in _FALSE_VALUES else queryset.filter(is_latest=True)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        # Latest versions only unless latest=false is asked for explicitly.
        if not self.form.cleaned_data.get("latest"):
            queryset = queryset.filter(is_latest=True)
        return super().filter_queryset(queryset)
