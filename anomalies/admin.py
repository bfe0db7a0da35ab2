"""Admin for detections, explanations, feedback, the selection log and peer benchmarks.

Everything is read-only: detections are written by detection passes, and the only edits an
analyst makes are verdicts, through the confirm / dismiss / false-positive actions and the review
page's buttons, which call the feedback service (the same path as the API).

An anomaly's page is the review page of the analyst console (``anomalies.console``): its series
as a chart, the explanation, the source document and the verdict buttons with keyboard shortcuts,
walking the review queue the analyst filtered on the list.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from anomalies import console, selectors, services
from anomalies.models import (
    AnomalyDetection,
    AnomalyExplanation,
    AnomalyFeedback,
    CrossPropertyBenchmark,
    FeedbackType,
    ModelSelectionLog,
)
from documents.admin_scoping import PortfolioScopedAdminMixin
from documents.scoping import sees_everything
from kernel.admin_utils import ReadOnlyAdmin, pretty_json
from kernel.exceptions import ApplicationError
from modelcache.selectors import model_cache_entry_for_detection


def account_cell(*, name: str, code: str, where: str) -> str:
    """An account in a list: its name, and under it the code and where it is (statement, property)."""
    return format_html(
        '<span class="account-name">{}</span> <span class="account-code">{} · {}</span>', name or code, code, where
    )


class FlaggedFilter(admin.SimpleListFilter):
    """Flagged lines by default: an analyst opens the list to review anomalies, not every line."""

    title = "flagged"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", "Flagged"), ("no", "Not flagged"), ("all", "All scored lines")]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or "yes") == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or "yes"
        if value == "all":
            return queryset
        return queryset.filter(is_anomaly=value == "yes")


@admin.register(AnomalyDetection)
class AnomalyDetectionAdmin(PortfolioScopedAdminMixin, ReadOnlyAdmin):
    # Fits 1,400 px with the side menu open (console.css: .change-list.console-anomalies); the
    # document type and the detector are on the review page and in the filters.
    list_display = (
        "property_code",
        "account_display",
        "period_label",
        "amount_display",
        "expected_display",
        "anomaly_score_display",
        "severity",
        "anomaly_type",
        "status",
    )
    list_filter = (
        FlaggedFilter,
        "severity",
        "status",
        "anomaly_type",
        "document_type",
        ("property", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("account_code", "line_item__account_name", "property__code")
    list_select_related = ("property", "period")
    ordering = ("-anomaly_score", "-detected_at")
    list_per_page = 50
    show_full_result_count = False
    change_form_template = "admin/anomalies/anomalydetection/change_form.html"
    actions = ("confirm_selected", "dismiss_selected", "mark_false_positive")
    json_fields = ("contributions",)
    fieldsets = (
        (None, {"fields": ("explanation_text", "status", "is_anomaly", "severity", "anomaly_type")}),
        (
            "Line",
            {"fields": ("property", "document", "document_type", "period", "account_code", "line_item", "field_value")},
        ),
        (
            "Score",
            {
                "fields": (
                    "anomaly_score",
                    "threshold",
                    "expected_value",
                    "z_score",
                    "percentage_change",
                    "confidence",
                    "contributions_pretty",
                )
            },
        ),
        ("Model", {"fields": ("detector", "cached_model", "model_version", "detected_at", "updated_at")}),
    )
    # The explanation is shown by the review panel above the fields (anomalies.console).
    inlines = ()

    def get_readonly_fields(self, request, obj=None):
        return [f for _, opts in self.fieldsets for f in opts["fields"]]

    @admin.display(description="model key")
    def cached_model(self, obj: AnomalyDetection) -> str:
        """The key, linked to the cache entry whose model scored this line (when it is still stored)."""
        entry = model_cache_entry_for_detection(model_key=obj.model_key, property_id=obj.property_id)
        if entry is None:
            return obj.model_key or "—"
        url = reverse("admin:modelcache_anomalymodelcache_change", args=[entry.pk])
        return format_html('<a href="{}">{}</a> ({}, {})', url, obj.model_key, entry.model_type, entry.model_version)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(account_name=selectors.account_name_expression())

    @admin.display(description="property", ordering="property__code")
    def property_code(self, obj: AnomalyDetection) -> str:
        return obj.property.code

    @admin.display(description="account", ordering="account_name")
    def account_display(self, obj: AnomalyDetection) -> str:
        return account_cell(name=obj.account_name, code=obj.account_code, where=obj.get_document_type_display())

    @admin.display(description="period", ordering="period__ordinal")
    def period_label(self, obj: AnomalyDetection) -> str:
        return obj.period.label

    @admin.display(description="score", ordering="anomaly_score")
    def anomaly_score_display(self, obj: AnomalyDetection) -> str:
        return f"{obj.anomaly_score:.0f}"

    @admin.display(description="amount", ordering="field_value")
    def amount_display(self, obj: AnomalyDetection) -> str:
        return "no line" if obj.field_value is None else f"{obj.field_value:,.2f}"

    @admin.display(description="expected", ordering="expected_value")
    def expected_display(self, obj: AnomalyDetection) -> str:
        return "—" if obj.expected_value is None else f"{obj.expected_value:,.2f}"

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """The list is the review queue: a button opens its first anomaly with the queue kept."""
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None and len(changelist.result_list):
            filters = request.GET.copy()
            filters.pop("p", None)  # the queue spans every page of the list
            response.context_data["review_start_url"] = console.change_url(changelist.result_list[0].pk, filters.urlencode())
        return response

    def get_urls(self):
        own = [
            path(
                "<int:object_id>/feedback/",
                self.admin_site.admin_view(self.feedback_view),
                name="anomalies_anomalydetection_feedback",
            ),
        ]
        return own + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None) -> HttpResponse:
        detection = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if detection is not None and self.has_view_permission(request, detection):
            extra_context["review"] = console.review_context(
                detection=detection,
                request=request,
                model_admin=self,
                changelist_filters=request.GET.get("_changelist_filters", ""),
            )
            extra_context["subtitle"] = extra_context["review"]["heading"]
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    def feedback_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The review page's verdict buttons: record the verdict, then open the next anomaly of the queue.

        The next anomaly is found before the verdict is written: a dismissed anomaly leaves a queue
        of flagged ones, and the analyst moves on from where it was.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_feedback_permission(request):
            raise PermissionDenied
        detection = self.get_object(request, str(object_id))
        if detection is None or not self.has_view_permission(request, detection):
            raise Http404
        filters = request.POST.get("_changelist_filters", "")
        queue = console.review_queue_position(
            model_admin=self, request=request, anomaly_id=detection.id, changelist_filters=filters
        )
        feedback_type = request.POST.get("feedback_type", "")
        try:
            feedback = services.anomaly_feedback_submit(
                anomaly_id=detection.id,
                user=request.user,
                feedback_type=feedback_type,
                notes=request.POST.get("notes", ""),
            )
        except ApplicationError as exc:
            details = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.field_errors.items())
            self.message_user(request, f"{exc.message} ({details})" if details else exc.message, messages.ERROR)
            return HttpResponseRedirect(console.change_url(detection.id, filters))
        done = format_html(
            '<a id="reviewed-link" href="{}">{} {} ({})</a> marked {}.',
            console.change_url(detection.id, filters),
            console.account_label(detection),
            detection.period.label,
            detection.property.code,
            feedback.get_feedback_type_display().lower(),
        )
        if queue.next_id is not None and queue.next_id != detection.id:
            self.message_user(request, format_html("{} Next in the queue:", done), messages.SUCCESS)
            return HttpResponseRedirect(console.change_url(queue.next_id, filters))
        self.message_user(request, format_html("{} That was the last anomaly of the queue.", done), messages.SUCCESS)
        return HttpResponseRedirect(console.changelist_url(filters))

    def has_feedback_permission(self, request: HttpRequest) -> bool:
        """The verdict actions are shown to users who may add feedback, and only to them."""
        return request.user.has_perm("anomalies.add_anomalyfeedback")

    def _feedback(self, request: HttpRequest, queryset: QuerySet, feedback_type: str) -> None:
        try:
            count = services.anomalies_feedback_bulk(
                anomaly_ids=list(queryset.values_list("id", flat=True)), user=request.user, feedback_type=feedback_type
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        label = FeedbackType(feedback_type).label.lower()
        self.message_user(request, f"{count} anomal{'y' if count == 1 else 'ies'} marked {label}.", messages.SUCCESS)

    @admin.action(description="Confirm selected anomalies", permissions=["feedback"])
    def confirm_selected(self, request, queryset):
        self._feedback(request, queryset, FeedbackType.CONFIRMED)

    @admin.action(description="Dismiss selected anomalies", permissions=["feedback"])
    def dismiss_selected(self, request, queryset):
        self._feedback(request, queryset, FeedbackType.DISMISSED)

    @admin.action(description="Mark selected as false positives", permissions=["feedback"])
    def mark_false_positive(self, request, queryset):
        self._feedback(request, queryset, FeedbackType.FALSE_POSITIVE)


@admin.register(AnomalyExplanation)
class AnomalyExplanationAdmin(PortfolioScopedAdminMixin, ReadOnlyAdmin):
    list_display = ("account_display", "summary", "root_cause_type", "explanation_method", "created_at")
    list_filter = ("root_cause_type", "explanation_method")
    search_fields = ("summary", "anomaly__account_code", "anomaly__line_item__account_name", "anomaly__property__code")
    list_select_related = ("anomaly", "anomaly__property")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        names = selectors.account_name_expression(line_item="anomaly__line_item", account_code="anomaly__account_code")
        return super().get_queryset(request).annotate(account_name=names)

    @admin.display(description="account", ordering="account_name")
    def account_display(self, obj: AnomalyExplanation) -> str:
        return account_cell(name=obj.account_name, code=obj.anomaly.account_code, where=obj.anomaly.property.code)

    json_fields = ("contributing_factors", "suggested_actions", "shap_values", "lime_explanation")
    fields = (
        "anomaly",
        "summary",
        "root_cause_type",
        "contributing_factors_pretty",
        "suggested_actions_pretty",
        "shap_values_pretty",
        "lime_explanation_pretty",
        "explanation_method",
        "computation_time_ms",
        "created_at",
    )
    readonly_fields = fields


@admin.register(AnomalyFeedback)
class AnomalyFeedbackAdmin(PortfolioScopedAdminMixin, ReadOnlyAdmin):
    list_display = (
        "property",
        "document_type",
        "period",
        "account_display",
        "field_value",
        "feedback_type",
        "user",
        "learned_applied",
        "updated_at",
    )
    list_filter = ("feedback_type", "learned_applied", "document_type")
    search_fields = ("account_code", "property__code", "notes")
    list_select_related = ("property", "period", "user")
    json_fields = ("business_context",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        names = selectors.account_name_expression(line_item="anomaly__line_item")
        return super().get_queryset(request).annotate(account_name=names)

    @admin.display(description="account", ordering="account_name")
    def account_display(self, obj: AnomalyFeedback) -> str:
        return account_cell(name=obj.account_name, code=obj.account_code, where=obj.get_document_type_display())

    fields = (
        "anomaly",
        "user",
        "property",
        "document_type",
        "period",
        "account_code",
        "field_value",
        "feedback_type",
        "is_anomaly",
        "notes",
        "feedback_confidence",
        "business_context_pretty",
        "learned_applied",
        "similar_anomalies_suppressed",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields


@admin.register(ModelSelectionLog)
class ModelSelectionLogAdmin(PortfolioScopedAdminMixin, ReadOnlyAdmin):
    list_display = (
        "property",
        "document_type",
        "account_code",
        "selected_model",
        "selection_source",
        "cross_validation_score",
        "selected_at",
    )
    list_filter = ("selected_model", "selection_source", "document_type")
    search_fields = ("account_code", "property__code")
    list_select_related = ("property",)
    json_fields = ("data_characteristics", "rule_recommended_models", "llm_recommended_models")
    fields = (
        "property",
        "document_type",
        "account_code",
        "selected_model",
        "selection_source",
        "selection_reasoning",
        "cross_validation_score",
        "rule_recommended_models_pretty",
        "llm_recommended_models_pretty",
        "llm_error",
        "data_characteristics_pretty",
        "actual_precision",
        "actual_recall",
        "selected_at",
    )
    readonly_fields = fields


@admin.register(CrossPropertyBenchmark)
class CrossPropertyBenchmarkAdmin(ReadOnlyAdmin):
    list_display = (
        "account_code",
        "benchmark_period",
        "property_group",
        "median",
        "p25",
        "p75",
        "property_count",
        "computed_at",
    )
    list_filter = ("property_group",)
    search_fields = ("account_code",)
    list_select_related = ("benchmark_period",)

    @admin.display(description="property ids")
    def property_ids_pretty(self, obj: CrossPropertyBenchmark) -> str:
        return pretty_json(obj.property_ids)

    def get_fields(self, request: HttpRequest, obj=None):
        # Peer groups span portfolios: only superusers see which properties a figure is made of.
        if sees_everything(request.user):
            return self.fields
        return tuple(f for f in self.fields if f != "property_ids_pretty")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.get_fields(request, obj)

    fields = (
        "account_code",
        "benchmark_period",
        "property_group",
        "mean",
        "median",
        "std",
        "p25",
        "p75",
        "p90",
        "p95",
        "property_count",
        "property_ids_pretty",
        "computed_at",
    )
    readonly_fields = fields
