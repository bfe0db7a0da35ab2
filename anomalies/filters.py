"""django-filter FilterSets of the anomalies API."""

from __future__ import annotations

import builtins

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from anomalies.models import AnomalyDetection, AnomalyType, DetectionStatus, ModelSelectionLog, Severity
from documents.models import DocumentType
from kernel.filters import fits_db_id
from kernel.periods import ordinal_from_label


def period_ordinal(value: str) -> int:
    """'YYYY-MM' -> FinancialPeriod.ordinal, or a ValidationError naming the expected format."""
    try:
        return ordinal_from_label(value)
    except ValueError:
        # The value goes in params: django-filter formats the message with them, so a '%' in
        # the value itself must not reach the format string.
        raise ValidationError("expected YYYY-MM, got %(value)r", params={"value": str(value)}) from None


def validate_period(value: str) -> None:
    period_ordinal(value)


def _property_filter(qs: QuerySet, name: str, value: str) -> QuerySet:
    """A property by code, or by id when the value is all digits and no property has that code."""
    value = str(value).strip()
    condition = Q(property__code=value)
    if value.isascii() and value.isdigit() and fits_db_id(int(value)):
        condition |= Q(property_id=int(value))
    return qs.filter(condition)


class AnomalyFilter(django_filters.FilterSet):
    property = django_filters.CharFilter(method=_property_filter, help_text="property code or id")
    document_type = django_filters.ChoiceFilter(choices=DocumentType.choices)
    period_from = django_filters.CharFilter(
        method="filter_period_from", validators=[validate_period], help_text="YYYY-MM, inclusive"
    )
    period_to = django_filters.CharFilter(
        method="filter_period_to", validators=[validate_period], help_text="YYYY-MM, inclusive"
    )
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    status = django_filters.MultipleChoiceFilter(choices=DetectionStatus.choices)
    anomaly_type = django_filters.MultipleChoiceFilter(choices=AnomalyType.choices)
    min_score = django_filters.NumberFilter(field_name="anomaly_score", lookup_expr="gte")
    account_code = django_filters.CharFilter()
    is_anomaly = django_filters.ChoiceFilter(
        choices=[("true", "flagged"), ("false", "not flagged"), ("all", "all scored lines")],
        method="filter_is_anomaly",
        help_text="true (the default when absent): flagged lines only; false: the others; all: every scored line",
    )

    class Meta:
        model = AnomalyDetection
        fields: list[str] = []

    def filter_period_from(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(period__ordinal__gte=period_ordinal(value))

    def filter_period_to(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(period__ordinal__lte=period_ordinal(value))

    def filter_is_anomaly(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if value == "all":
            return qs
        return qs.filter(is_anomaly=value == "true")

    @builtins.property  # 'property' is the filter above
    def qs(self) -> QuerySet:
        queryset = super().qs
        if not self.data.get("is_anomaly"):
            queryset = queryset.filter(is_anomaly=True)
        return queryset


class SelectionLogFilter(django_filters.FilterSet):
    property = django_filters.CharFilter(method=_property_filter, help_text="property code or id")
    account_code = django_filters.CharFilter()
    account = django_filters.CharFilter(field_name="account_code", help_text="alias of account_code")
    selected_model = django_filters.CharFilter()
    selection_source = django_filters.ChoiceFilter(choices=[("rules", "rules"), ("llm", "llm")])
    document_type = django_filters.ChoiceFilter(choices=DocumentType.choices)

    class Meta:
        model = ModelSelectionLog
        fields: list[str] = []
