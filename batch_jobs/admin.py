"""Admin for batch jobs: progress at a glance, cancel, a readable summary, a form to start a job.

Jobs are never edited by hand: they are created and started through the services (the same path as
the API and the ``reprocess`` command), and their chunks are shown read-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from batch_jobs import selectors, services
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, ExtractionStatusFilter, JobStatus
from documents.admin_scoping import PortfolioScopedAdminMixin
from documents.models import DocumentType, Property
from documents.scoping import properties_visible_to
from kernel.admin_utils import ReadableJSONMixin
from kernel.exceptions import ApplicationError, ConflictError
from kernel.flags import FeatureDisabled

_BAR_COLOURS = {
    JobStatus.COMPLETED: "#2e7d32",
    JobStatus.FAILED: "#c62828",
    JobStatus.CANCELLED: "#757575",
    JobStatus.RUNNING: "#1565c0",
    JobStatus.QUEUED: "#9e9e9e",
}


def progress_bar(job: BatchReprocessingJob) -> str:
    pct = job.progress_pct
    return format_html(
        '<div title="{}%" style="width:120px;background:#eee;border-radius:3px;height:12px;display:inline-block;'
        'vertical-align:middle"><div style="width:{}%;background:{};height:12px;border-radius:3px"></div></div>'
        " <span>{}%</span>",
        pct,
        min(pct, 100.0),
        _BAR_COLOURS.get(job.status, "#1565c0"),
        pct,
    )


class StartJobForm(forms.Form):
    job_name = forms.CharField(max_length=200, required=False)
    properties = forms.ModelMultipleChoiceField(
        queryset=Property.objects.order_by("code"),
        required=False,
        help_text="none selected means every property you can see",
    )
    date_range_start = forms.DateField(required=False, help_text="YYYY-MM-DD; any day selects its month")
    date_range_end = forms.DateField(required=False)
    document_types = forms.MultipleChoiceField(
        choices=DocumentType.choices, required=False, widget=forms.CheckboxSelectMultiple, help_text="none means all"
    )
    extraction_status_filter = forms.ChoiceField(choices=ExtractionStatusFilter.choices, initial="all")


CHUNKS_PER_PAGE = 50
TOP_PROPERTIES = 20  # properties listed by anomaly count in a job's results table


def job_chunk_page(*, job: BatchReprocessingJob, status: str, page: str) -> dict:
    """One page of a job's chunks for its page (``status`` '' for all), with the status filter's counts."""
    chunks = BatchJobChunk.objects.filter(job=job).order_by("index")
    if status in ChunkStatus.values:
        chunks = chunks.filter(status=status)
    paginator = Paginator(chunks, CHUNKS_PER_PAGE)
    counts = selectors.job_chunk_status_counts(job=job)
    return {
        "page": paginator.get_page(page),
        "status": status if status in ChunkStatus.values else "",
        "filters": [("", "All", sum(counts.values()))]
        + [(value, label, counts.get(value, 0)) for value, label in ChunkStatus.choices],
    }


@admin.register(BatchReprocessingJob)
class BatchReprocessingJobAdmin(PortfolioScopedAdminMixin, ReadableJSONMixin, admin.ModelAdmin):
    json_fields = ("results_summary", "property_ids", "document_types")
    change_list_template = "admin/batch_jobs/batchreprocessingjob/change_list.html"
    list_display = (
        "id",
        "job_name",
        "status",
        "progress",
        "processed_documents",
        "total_documents",
        "successful_documents",
        "failed_documents",
        "skipped_documents",
        "duration",
        "initiated_by",
        "created_at",
    )
    list_display_links = ("id", "job_name")
    list_filter = ("status", "processor")
    search_fields = ("job_name",)
    date_hierarchy = "created_at"
    actions = ["cancel_selected"]
    readonly_fields = (
        "job_name",
        "status",
        "progress",
        "duration",
        "chunk_summary",
        "processor",
        "initiated_by",
        "property_ids_pretty",
        "date_range_start",
        "date_range_end",
        "document_types_pretty",
        "extraction_status_filter",
        "celery_task_id",
        "total_documents",
        "processed_documents",
        "successful_documents",
        "failed_documents",
        "skipped_documents",
        "cancel_requested",
        "error_message",
        "created_at",
        "started_at",
        "estimated_completion_at",
        "completed_at",
        "results_summary_table",
    )
    fields = readonly_fields
    # The chunks are a paginated list with a status filter on the job's page (its template), not an
    # inline: a job of hundreds of chunks made the page thousands of pixels tall.
    inlines = ()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        job = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if job is not None:
            extra_context["chunks"] = job_chunk_page(
                job=job, status=request.GET.get("chunk_status", ""), page=request.GET.get("chunk_page", "1")
            )
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    @admin.display(description="results summary")
    def results_summary_table(self, obj: BatchReprocessingJob) -> str:
        summary = obj.results_summary or {}
        if not summary:
            return "—"
        anomalies = summary.get("anomalies", {})
        by_property = sorted(anomalies.get("by_property", {}).items(), key=lambda item: (-item[1], item[0]))
        return render_to_string(
            "admin/batch_jobs/batchreprocessingjob/results_summary.html",
            {
                "documents": summary.get("documents", {}),
                "anomalies_total": anomalies.get("total", 0),
                "by_severity": list(anomalies.get("by_severity", {}).items()),
                "by_property": by_property[:TOP_PROPERTIES],
                "more_properties": max(len(by_property) - TOP_PROPERTIES, 0),
                "failures": summary.get("failures", []),
                "failures_total": summary.get("failures_total", 0),
                "skipped_by_reason": list(summary.get("skipped_by_reason", {}).items()),
                "chunks": list(summary.get("chunks", {}).items()),
            },
        )

    @admin.display(description="progress")
    def progress(self, obj: BatchReprocessingJob) -> str:
        return progress_bar(obj)

    @admin.display(description="duration")
    def duration(self, obj: BatchReprocessingJob) -> str:
        seconds = obj.duration_seconds
        if seconds is None:
            return "—"
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"

    @admin.display(description="chunks")
    def chunk_summary(self, obj: BatchReprocessingJob) -> str:
        counts = selectors.job_chunk_status_counts(job=obj)
        url = reverse("admin:batch_jobs_batchjobchunk_changelist") + f"?job__id__exact={obj.pk}"
        text = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "none yet"
        return format_html('<a href="{}">{}</a>', url, text)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("batch_jobs.add_batchreprocessingjob")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:batch_jobs_batchreprocessingjob_start"))

    def get_urls(self):
        own = [
            path("start/", self.admin_site.admin_view(self.start_view), name="batch_jobs_batchreprocessingjob_start"),
        ]
        return own + super().get_urls()

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StartJobForm(request.POST or None)
        form.fields["properties"].queryset = properties_visible_to(request.user).order_by("code")
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                job = services.job_submit(
                    job_name=data["job_name"],
                    property_ids=[p.pk for p in data["properties"]],
                    date_range_start=data["date_range_start"],
                    date_range_end=data["date_range_end"],
                    document_types=data["document_types"],
                    extraction_status_filter=data["extraction_status_filter"],
                    initiated_by=request.user,
                )
            except FeatureDisabled as exc:
                self.message_user(request, str(exc), messages.ERROR)
            except ApplicationError as exc:
                for field, errors in exc.field_errors.items():
                    for error in errors:
                        # The service says "property_ids"; the form's field is "properties".
                        name = "properties" if field == "property_ids" else field
                        form.add_error(name if name in form.fields else None, error)
                if not exc.field_errors:
                    form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Job #{job.pk} queued over {job.total_documents} documents.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:batch_jobs_batchreprocessingjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Start a batch reprocessing job",
            "form": form,
        }
        return render(request, "admin/batch_jobs/batchreprocessingjob/start_job.html", context)

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[BatchReprocessingJob]) -> None:
        cancelled, refused = 0, []
        for job in queryset:
            try:
                services.job_cancel(job=job)
                cancelled += 1
            except ConflictError as exc:
                refused.append(exc.message)
        if cancelled:
            self.message_user(request, f"Cancelling {cancelled} job(s).", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # A job's page is read-only (obj given); the list-level permission gates the cancel action.
        return obj is None and request.user.has_perm("batch_jobs.change_batchreprocessingjob")


@admin.register(BatchJobChunk)
class BatchJobChunkAdmin(PortfolioScopedAdminMixin, ReadableJSONMixin, admin.ModelAdmin):
    json_fields = ("document_ids", "results")
    list_display = (
        "job",
        "index",
        "status",
        "attempts",
        "processed_count",
        "successful_count",
        "failed_count",
        "skipped_count",
        "anomaly_count",
        "leased_by",
        "lease_expires_at",
        "finished_at",
    )
    list_filter = ("status",)
    list_select_related = ("job",)
    raw_id_fields = ("job",)
    readonly_fields = (
        "job",
        "index",
        "status",
        "task_id",
        "attempts",
        "leased_by",
        "lease_expires_at",
        "processed_count",
        "successful_count",
        "failed_count",
        "skipped_count",
        "anomaly_count",
        "error_message",
        "document_ids_pretty",
        "results_pretty",
        "created_at",
        "started_at",
        "finished_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
