"""Reads of the model cache: entry lists (never the blob) and statistics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from kernel.flags import FeatureFlags
from modelcache.models import AnomalyModelCache, ModelCacheStats
from modelcache.services import default_cache, hit_rates


def model_cache_list(*, user: Any) -> QuerySet[AnomalyModelCache]:
    """Entries ``user`` may see, without their binary, newest first (the API filters them with ModelCacheFilter)."""
    return AnomalyModelCache.objects.visible_to(user).defer("model_binary").select_related("property")


def model_cache_entry_for_detection(*, model_key: str, property_id: int) -> AnomalyModelCache | None:
    """The entry whose model scored a detection of ``property_id`` (its ``model_key``), without its
    binary. The entry is the property's own: whoever may see the detection may see it."""
    if not model_key:
        return None
    return (
        AnomalyModelCache.objects.filter(model_key=model_key, property_id=property_id)
        .defer("model_binary")
        .order_by()
        .first()
    )


def model_cache_stats(*, days: int | None = None) -> dict[str, Any]:
    """Hit rates per tier (every process, as flushed; and this process), and entry totals."""
    now = timezone.now()
    rows = ModelCacheStats.objects.all()
    if days is not None:
        rows = rows.filter(day__gt=timezone.localdate() - timedelta(days=days))
    persisted = {row["counter"]: int(row["total"]) for row in rows.values("counter").annotate(total=Sum("value"))}
    entries = AnomalyModelCache.objects.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(is_active=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))),
        inactive=Count("id", filter=Q(is_active=False)),
        expired=Count("id", filter=Q(is_active=True, expires_at__lte=now)),
        size_bytes=Sum("size_bytes"),
        uses=Sum("use_count"),
    )
    entries["size_bytes"] = entries["size_bytes"] or 0
    entries["uses"] = entries["uses"] or 0
    cache = default_cache()
    return {
        "enabled": FeatureFlags.is_enabled("MODEL_CACHE_ENABLED"),
        "all_processes": hit_rates(persisted),
        "this_process": hit_rates(cache.counters.snapshot()),
        "lru": {"entries": len(cache), "bytes": cache.lru.total_bytes, "capacity_bytes": cache.lru.max_bytes},
        "entries": entries,
    }
