"""Invalidation and cleanup of cached models."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from kernel.exceptions import ApplicationError, ConflictError
from modelcache.models import AnomalyModelCache
from modelcache.services.cache import ModelCache, default_cache

logger = logging.getLogger(__name__)

CLEANUP_SLICE = 500
REASON_MAX = AnomalyModelCache._meta.get_field("invalidated_reason").max_length or 200


def _reason(reason: str) -> str:
    # A rule's reason quotes library versions or KS statistics: shorten it visibly, never silently.
    return reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"


def deactivate_entry(*, pk: int, generation: int, reason: str) -> bool:
    """Deactivate row ``pk`` if it still has ``generation`` (nobody replaced it meanwhile)."""
    updated = AnomalyModelCache.objects.filter(pk=pk, generation=generation).update(
        is_active=False, invalidated_reason=_reason(reason), generation=F("generation") + 1
    )
    return bool(updated)


@transaction.atomic
def invalidate_cache(
    *,
    model_key: str | None = None,
    property_id: int | None = None,
    account_code: str | None = None,
    reason: str,
    everything: bool = False,
    cache: ModelCache | None = None,
) -> int:
    """Deactivate the matching active entries (all of them only with ``everything=True``)."""
    if model_key is None and property_id is None and account_code is None and not everything:
        raise ApplicationError("Say which cached models to invalidate (model key, property, account) or all of them")
    rows = AnomalyModelCache.objects.filter(is_active=True)
    if model_key is not None:
        rows = rows.filter(model_key=model_key)
    if property_id is not None:
        rows = rows.filter(property_id=property_id)
    if account_code is not None:
        rows = rows.filter(account_code=account_code)
    keys = list(rows.values_list("model_key", flat=True))
    count = (
        AnomalyModelCache.objects.filter(model_key__in=keys, is_active=True).update(
            is_active=False, invalidated_reason=_reason(reason), generation=F("generation") + 1
        )
        if keys
        else 0
    )
    (cache if cache is not None else default_cache()).lru.evict(keys)
    logger.info("model cache: invalidated %d entries (%s)", count, reason)
    return count


@transaction.atomic
def model_cache_entry_invalidate(*, entry_id: int, reason: str, cache: ModelCache | None = None) -> AnomalyModelCache:
    """Deactivate one entry; ConflictError (409) when already inactive, DoesNotExist when unknown."""
    entry = AnomalyModelCache.objects.select_for_update().defer("model_binary").get(pk=entry_id)
    if not entry.is_active:
        raise ConflictError(f"Cached model {entry_id} is already inactive ({entry.invalidated_reason or 'invalidated'})")
    entry.is_active = False
    entry.invalidated_reason = _reason(reason)
    entry.generation += 1
    entry.save(update_fields=["is_active", "invalidated_reason", "generation"])
    (cache if cache is not None else default_cache()).lru.evict([entry.model_key])
    return entry


def cleanup_model_cache(*, now: datetime | None = None, slice_size: int = CLEANUP_SLICE) -> int:
    """Delete expired and inactive entries in bounded id slices, each in its own transaction."""
    now = now or timezone.now()
    doomed = Q(is_active=False) | Q(expires_at__lte=now)
    deleted = 0
    last_id = 0
    while True:
        ids = list(
            AnomalyModelCache.objects.filter(doomed, pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:slice_size]
        )
        if not ids:
            break
        last_id = ids[-1]
        with transaction.atomic():
            # Re-check the condition: a row retrained in place meanwhile is active again and stays.
            deleted += AnomalyModelCache.objects.filter(doomed, pk__in=ids).delete()[0]
    logger.info("model cache: cleanup deleted %d expired or inactive entries", deleted)
    return deleted
