"""Admin of the model cache: read-only entries with size, age, use and an invalidate action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.timesince import timesince

from documents.admin_scoping import PortfolioScopedAdminMixin
from kernel.admin_utils import ReadableJSONMixin
from kernel.flags import FeatureFlags
from modelcache.models import AnomalyModelCache, ModelCacheStats
from modelcache.selectors import model_cache_stats
from modelcache.services import FLAG, invalidate_cache


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


@admin.register(AnomalyModelCache)
class AnomalyModelCacheAdmin(PortfolioScopedAdminMixin, ReadableJSONMixin, admin.ModelAdmin):
    change_list_template = "admin/modelcache/anomalymodelcache/change_list.html"
    json_fields = ("model_metadata", "training_date_range")
    list_display = (
        "model_key_short",
        "property",
        "document_type",
        "account_code",
        "model_type",
        "is_active",
        "size_kb",
        "age",
        "use_count",
        "last_used_at",
        "uses_per_day",
        "expires_at",
    )
    list_filter = ("is_active", "model_type", ("property", admin.RelatedOnlyFieldListFilter), "document_type")
    search_fields = ("account_code", "model_key")
    list_select_related = ("property",)
    ordering = ("-trained_at",)
    actions = ("invalidate_selected",)
    fields = (
        "model_key",
        "property",
        "document_type",
        "account_code",
        "model_type",
        "model_version",
        "is_active",
        "invalidated_reason",
        "generation",
        "size_kb",
        "age",
        "trained_at",
        "expires_at",
        "last_used_at",
        "use_count",
        "uses_per_day",
        "training_data_size",
        "training_date_range_pretty",
        "training_accuracy",
        "validation_accuracy",
        "precision",
        "recall",
        "f1",
        "model_metadata_pretty",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("model_binary")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="key")
    def model_key_short(self, obj: AnomalyModelCache) -> str:
        return obj.model_key[:12]

    @admin.display(description="size (KB)", ordering="size_bytes")
    def size_kb(self, obj: AnomalyModelCache) -> str:
        return f"{obj.size_bytes / 1024:.1f}"

    @admin.display(description="age", ordering="-trained_at")
    def age(self, obj: AnomalyModelCache) -> str:
        return timesince(obj.trained_at) if obj.trained_at else "—"

    @admin.display(description="uses / day")
    def uses_per_day(self, obj: AnomalyModelCache) -> str:
        if not obj.trained_at:
            return "—"
        days = max((timezone.now() - obj.trained_at).total_seconds() / 86400, 1.0)
        return f"{obj.use_count / days:.1f}"

    @admin.action(description="Invalidate selected cached models", permissions=["change"])
    def invalidate_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not FeatureFlags.is_enabled(FLAG):
            self.message_user(request, "MODEL_CACHE_ENABLED is off: nothing invalidated.", messages.ERROR)
            return
        count = 0
        reason = f"manual: admin (by {request.user.get_username()})"
        for model_key in queryset.filter(is_active=True).values_list("model_key", flat=True):
            count += invalidate_cache(model_key=model_key, reason=reason)
        self.message_user(request, f"Invalidated {count} cached model(s).", messages.SUCCESS)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        stats = model_cache_stats()
        extra_context = {
            **(extra_context or {}),
            "cache_stats": stats,
            "cache_rates": {
                "lru": _percent(stats["all_processes"]["lru"]["hit_rate"]),
                "db": _percent(stats["all_processes"]["db"]["hit_rate"]),
                "overall": _percent(stats["all_processes"]["overall_hit_rate"]),
                "process": _percent(stats["this_process"]["overall_hit_rate"]),
            },
        }
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(ModelCacheStats)
class ModelCacheStatsAdmin(admin.ModelAdmin):
    list_display = ("day", "counter", "value", "updated_at")
    list_filter = ("counter",)
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
