"""Admin of the documents substrate. Documents are read-only here: they change only through import
(the "Import documents" page, the API or the command, all one service)."""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from anomalies.models import AnomalyDetection, DetectionStatus
from documents.admin_scoping import PortfolioScopedAdminMixin
from documents.forms import ImportDocumentsForm
from documents.models import (
    ChartOfAccount,
    DocumentUpload,
    FinancialPeriod,
    LineItem,
    PDFFieldCoordinate,
    Portfolio,
    PortfolioGrant,
    Property,
)
from documents.portfolios import portfolio_assign, portfolio_grant_set
from documents.services import DocumentImportError, UploadedSource, documents_import
from documents.uploads import UploadTooLarge, check_declared_size, check_files_size, upload_error_from
from kernel.admin_utils import ReadOnlyAdmin
from kernel.exceptions import ApplicationError
from kernel.logging import log_event
from kernel.throttles import DocumentImportThrottle

IMPORT_PERMISSION = "documents.add_documentupload"


class ImportThrottled(ApplicationError):
    status_code = 429


def _count_of(rows: QuerySet) -> Coalesce:
    """The number of ``rows`` (a queryset filtered on an OuterRef) as a scalar subquery."""
    counted = rows.order_by().values("property").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@admin.register(Property)
class PropertyAdmin(PortfolioScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "portfolio",
        "property_type",
        "area_sqft",
        "address",
        "document_count",
        "open_anomaly_count",
        "updated_at",
    )
    list_filter = ("property_type", ("portfolio", admin.RelatedOnlyFieldListFilter))
    search_fields = ("code", "name", "address")
    readonly_fields = ("code", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        # Properties change portfolio through portfolio_assign (superusers only).
        return (*self.readonly_fields, "portfolio")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Counted in subqueries: two Counts over two joins would multiply each other.
        latest = DocumentUpload.objects.filter(property=OuterRef("pk"), is_latest=True)
        open_anomalies = AnomalyDetection.objects.filter(
            property=OuterRef("pk"), is_anomaly=True, status=DetectionStatus.OPEN
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                _documents=_count_of(latest),
                _open_anomalies=_count_of(open_anomalies),
            )
        )

    @admin.display(description="open anomalies", ordering="_open_anomalies")
    def open_anomaly_count(self, obj: Property) -> HttpResponse:
        url = reverse("admin:anomalies_anomalydetection_changelist") + f"?property__id__exact={obj.pk}&status__exact=open"
        return format_html('<a href="{}">{}</a>', url, obj._open_anomalies)

    @admin.display(description="documents (latest)", ordering="_documents")
    def document_count(self, obj: Property) -> HttpResponse:
        url = reverse("admin:documents_documentupload_changelist") + f"?property__code={obj.code}"
        return format_html('<a href="{}">{}</a>', url, obj._documents)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # properties are created by imports

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(FinancialPeriod)
class FinancialPeriodAdmin(ReadOnlyAdmin):  # months are shared: no property in them
    list_display = ("label", "year", "month", "start_date", "end_date", "ordinal")
    list_filter = ("year",)
    search_fields = ("year",)


@admin.register(ChartOfAccount)
class ChartOfAccountAdmin(PortfolioScopedAdminMixin, admin.ModelAdmin):
    list_display = ("account_code", "account_name", "account_type", "is_total")
    list_filter = ("account_type", "is_total")
    search_fields = ("account_code", "account_name")
    readonly_fields = ("account_code", "is_total", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class LineItemInline(admin.TabularInline):
    model = LineItem
    fields = (
        "row_order",
        "account_code",
        "account_name",
        "amount",
        "is_total",
        "page_number",
        "box",
        "extraction_confidence",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("row_order",)

    @admin.display(description="x0, y0, x1, y1")
    def box(self, obj: LineItem) -> str:
        return _box(obj)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _box(obj) -> str:
    if obj.x0 is None:
        return "—"
    return f"{obj.x0:.1f}, {obj.y0:.1f}, {obj.x1:.1f}, {obj.y1:.1f}"


@admin.register(DocumentUpload)
class DocumentUploadAdmin(PortfolioScopedAdminMixin, ReadOnlyAdmin):
    change_list_template = "admin/documents/documentupload/change_list.html"
    list_display = (
        "id",
        "property_code",
        "document_type",
        "period",
        "version",
        "is_latest",
        "extraction_status",
        "line_count",
        "source_format",
        "file_name",
        "uploaded_at",
    )
    list_filter = ("document_type", "is_latest", "extraction_status", "source_format", "property__property_type")
    search_fields = ("property__code", "property__name", "file_name", "content_hash", "file_hash")
    list_select_related = ("property", "period")
    date_hierarchy = "uploaded_at"
    show_full_result_count = False
    inlines = [LineItemInline]
    fields = (
        "property",
        "document_type",
        "period",
        "version",
        "is_latest",
        "extraction_status",
        "extraction_error",
        "line_count",
        "line_items_link",
        "source_format",
        "file_name",
        "file_hash",
        "content_hash",
        "uploaded_by",
        "uploaded_at",
        "processed_at",
        "last_detected_at",
    )
    readonly_fields = fields

    @admin.display(description="property", ordering="property__code")
    def property_code(self, obj: DocumentUpload) -> str:
        return obj.property.code

    @admin.display(description="line items")
    def line_items_link(self, obj: DocumentUpload) -> HttpResponse:
        url = reverse("admin:documents_lineitem_changelist") + f"?document__id__exact={obj.id}"
        return format_html('<a href="{}">{} line items</a>', url, obj.line_count)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm(IMPORT_PERMISSION)

    def get_urls(self):
        custom = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="documents_documentupload_import",
            )
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": request.user.has_perm(IMPORT_PERMISSION)}
        return super().changelist_view(request, extra_context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload files through documents_import and show the summary or the one-line error."""
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        summary = None
        error = None
        error_lines: list[str] = []
        if request.method == "POST":
            # The API's import rate applies here too (same scope, same per-user history).
            throttle = DocumentImportThrottle()
            if not throttle.allow_request(request, None):
                wait = max(1, round(throttle.wait() or 1))
                message = f"Too many imports: try again in {wait} s (THROTTLE_DOCUMENT_IMPORT)."
                response = self._import_refused(request, ImportThrottled(message), outcome="throttled")
                response["Retry-After"] = str(wait)
                return response
            try:
                check_declared_size(request.META)
                posted, files = request.POST, request.FILES  # parses the body: may be refused
            except (UploadTooLarge, SuspiciousOperation) as exc:
                refusal = exc if isinstance(exc, UploadTooLarge) else upload_error_from(exc, request.META)
                if refusal is None:
                    raise
                return self._import_refused(request, refusal)
        else:
            posted, files = None, None
        form = ImportDocumentsForm(posted, files)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                check_files_size(data["files"])
                summary = documents_import(
                    files=[UploadedSource.from_file(f) for f in data["files"]],
                    uploaded_by=request.user,
                    channel="admin",
                    detect=data["detect"],
                    overrides={
                        "property_code": data["property_code"] or None,
                        "document_type": data["document_type"] or None,
                        "period": data["period"] or None,
                    },
                )
            except UploadTooLarge as exc:
                return self._import_refused(request, exc, form=form)
            except DocumentImportError as exc:
                error, error_lines = exc.message, exc.lines
            except ApplicationError as exc:
                error = exc.message
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Imported {summary.describe()}")
                form = ImportDocumentsForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import documents",
            "form": form,
            "summary": summary,
            "error": error,
            "error_lines": error_lines,
        }
        return TemplateResponse(request, "admin/documents/documentupload/import_form.html", context)

    def _import_refused(
        self, request: HttpRequest, exc: ApplicationError, form=None, outcome: str = "rejected"
    ) -> HttpResponse:
        """The import page again with the reason, answered with the error's status (413, 429)."""
        log_event(
            "documents_import",
            level=logging.WARNING,
            outcome=outcome,
            channel="admin",
            reason=exc.message,
            user_id=request.user.pk,
            content_length=request.META.get("CONTENT_LENGTH"),
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import documents",
            "form": form or ImportDocumentsForm(),
            "summary": None,
            "error": exc.message,
        }
        return TemplateResponse(request, "admin/documents/documentupload/import_form.html", context, status=exc.status_code)


@admin.register(LineItem)
class LineItemAdmin(PortfolioScopedAdminMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "document_link",
        "account_code",
        "account_name",
        "amount",
        "is_total",
        "page_number",
        "box",
        "extraction_confidence",
    )
    list_filter = ("is_total", "document__document_type", "document__is_latest", "document__source_format")
    search_fields = ("account_code", "account_name", "document__property__code")
    list_select_related = ("document__property", "document__period")
    show_full_result_count = False
    raw_id_fields = ("document",)

    @admin.display(description="document", ordering="document_id")
    def document_link(self, obj: LineItem) -> HttpResponse:
        url = reverse("admin:documents_documentupload_change", args=[obj.document_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.document))

    @admin.display(description="x0, y0, x1, y1 (pt, top-left origin)")
    def box(self, obj: LineItem) -> str:
        return _box(obj)


@admin.register(PDFFieldCoordinate)
class PDFFieldCoordinateAdmin(PortfolioScopedAdminMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "document",
        "table_name",
        "record_id",
        "field_name",
        "page_number",
        "x0",
        "y0",
        "x1",
        "y1",
        "extraction_method",
        "confidence",
        "matched_text",
    )
    list_filter = ("table_name", "field_name", "extraction_method")
    search_fields = ("matched_text", "document__property__code", "=record_id")
    list_select_related = ("document__property", "document__period")
    show_full_result_count = False
    raw_id_fields = ("document",)


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """Portfolios and grants decide who sees what: only superusers see or change them."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_module_permission(request)


class PortfolioForm(forms.ModelForm):
    move_properties = forms.ModelMultipleChoiceField(
        queryset=Property.objects.select_related("portfolio").order_by("code"),
        required=False,
        help_text="properties to move into this portfolio (the portfolio_assign command)",
    )

    class Meta:
        model = Portfolio
        fields = ("code", "name")


@admin.register(Portfolio)
class PortfolioAdmin(SuperuserOnlyAdmin):
    form = PortfolioForm
    list_display = ("code", "name", "property_count", "user_count")
    search_fields = ("code", "name")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(_properties=Count("properties", distinct=True), _users=Count("grants", distinct=True))
        )

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        return ("code",) if obj is not None else ()

    @admin.display(description="properties", ordering="_properties")
    def property_count(self, obj: Portfolio) -> int:
        return obj._properties

    @admin.display(description="users", ordering="_users")
    def user_count(self, obj: Portfolio) -> int:
        return obj._users

    def save_model(self, request: HttpRequest, obj: Portfolio, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        codes = [p.code for p in form.cleaned_data.get("move_properties") or []]
        if codes:
            result = portfolio_assign(code=obj.code, property_codes=codes)
            self.message_user(request, f"{len(result.moved)} propert(y/ies) moved into {obj.code}.", messages.SUCCESS)


@admin.register(PortfolioGrant)
class PortfolioGrantAdmin(SuperuserOnlyAdmin):
    """Adding a row grants a portfolio to a user; deleting it revokes (the portfolio_grant command)."""

    list_display = ("user", "portfolio", "granted_at")
    list_filter = ("portfolio",)
    search_fields = ("user__username", "portfolio__code")
    fields = ("user", "portfolio")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a grant is given or taken away, never edited

    def save_model(self, request: HttpRequest, obj: PortfolioGrant, form: forms.ModelForm, change: bool) -> None:
        portfolio_grant_set(username=obj.user.get_username(), code=obj.portfolio.code, granted=True)
        obj.pk = PortfolioGrant.objects.get(user=obj.user, portfolio=obj.portfolio).pk

    def delete_model(self, request: HttpRequest, obj: PortfolioGrant) -> None:
        portfolio_grant_set(username=obj.user.get_username(), code=obj.portfolio.code, granted=False)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for grant in queryset.select_related("user", "portfolio"):
            self.delete_model(request, grant)
