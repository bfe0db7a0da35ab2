"""Look up a model (LRU, then table) or train it on a miss, store it and keep it in the LRU.

``prefetch`` (``cached_models``) loads a chunk's models in one query and revalidates its LRU
copies in one more light query; a row failing a rule or its signature check is deactivated and
left out.  Invalidation inside this process evicts the copy at once; ``expires_at`` is checked on
every hit without a query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from anomalies.detection.provider import ModelRequest
from kernel.flags import FeatureFlags
from modelcache import envelope
from modelcache.models import AnomalyModelCache, StatsCounter
from modelcache.services.cache import FLAG, ModelCache, default_cache
from modelcache.services.lru import LruEntry
from modelcache.services.maintenance import deactivate_entry
from modelcache.services.rules import data_fingerprint, drift_reason, expiry_reason, shape_reason, should_invalidate
from modelcache.services.store import StorableModel, store_model

logger = logging.getLogger(__name__)

# What a lookup reads of a row (the rules, the blob, the LRU bookkeeping): not the statistics.
LOOKUP_FIELDS = (
    "id",
    "model_key",
    "model_binary",
    "model_metadata",
    "generation",
    "is_active",
    "invalidated_reason",
    "expires_at",
    "validation_accuracy",
)


class CacheOutcome(StrEnum):
    LRU_HIT = "lru_hit"  # served from this process's memory
    DB_HIT = "db_hit"  # loaded from the table (verified, deserialised)
    MISS = "miss"  # nothing cached: trained and stored
    STALE = "stale"  # a cached model failed an invalidation rule: retrained and replaced
    REFUSED = "refused"  # the stored blob failed its signature/format check: retrained and replaced
    BYPASS = "bypass"  # MODEL_CACHE_ENABLED is off: trained, nothing read or written


def _revalidate(cache: ModelCache, entries: dict[str, LruEntry]) -> None:
    """One light query for these LRU copies; drop the ones whose row changed or went away."""
    if not entries:
        return
    light = AnomalyModelCache.objects.filter(model_key__in=list(entries)).values_list(
        "model_key", "generation", "is_active", "expires_at"
    )
    rows = {key: (generation, is_active, expires_at) for key, generation, is_active, expires_at in light}
    stale = []
    for key, entry in entries.items():
        row = rows.get(key)
        if row is None or not row[1] or row[0] != entry.generation:
            stale.append(key)
        else:
            entry.expires_at = row[2]
            cache.mark_checked(entry)
    cache.lru.evict(stale)


def _lookup_lru(cache: ModelCache, model_key: str, x_new: Any, now: datetime) -> tuple[LruEntry | None, str | None]:
    """(entry, None) on a usable LRU copy; (None, reason) when the copy failed a rule (its row is
    then deactivated); (None, None) when there is no current copy."""
    entry = cache.lru.get(model_key)
    if entry is None:
        return None, None
    if cache.needs_check(entry):
        _revalidate(cache, {model_key: entry})
        if model_key not in cache.lru:
            return None, None
    reason = expiry_reason(entry.expires_at, now) or shape_reason(entry.n_features, x_new)
    if reason is None and x_new is not None and entry.fingerprint != data_fingerprint(x_new):
        reason = drift_reason(entry.sample, x_new, column=entry.drift_column)
    if reason:
        cache.lru.evict([model_key])
        deactivate_entry(pk=entry.pk, generation=entry.generation, reason=reason)
        return None, reason
    return entry, None


def _load_row(cache: ModelCache, row: AnomalyModelCache, *, x_new: Any) -> tuple[Any | None, CacheOutcome | None]:
    """(model, None) when the row passes every rule and its signature check; otherwise the row
    is deactivated and (None, STALE or REFUSED) returned."""
    reason = should_invalidate(row, X_new=x_new)
    if reason:
        cache.count(StatsCounter.STALE)
        deactivate_entry(pk=row.pk, generation=row.generation, reason=reason)
        cache.lru.evict([row.model_key])
        return None, CacheOutcome.STALE
    try:
        model, _header = envelope.open_envelope(bytes(row.model_binary), key=settings.MODEL_CACHE_SIGNING_KEY)
    except envelope.EnvelopeError as exc:
        logger.error("model cache: refused blob of entry %s (%s): %s", row.pk, row.model_key[:12], exc)
        cache.count(StatsCounter.REFUSED)
        deactivate_entry(pk=row.pk, generation=row.generation, reason=f"refused: {exc}")
        cache.lru.evict([row.model_key])
        return None, CacheOutcome.REFUSED
    return model, None


def _load_keys(cache: ModelCache, keys: list[str]) -> dict[str, Any]:
    """One query for the full rows of ``keys``; valid ones are deserialised into the LRU."""
    found: dict[str, Any] = {}
    if not keys:
        return found
    for row in AnomalyModelCache.objects.filter(model_key__in=keys, is_active=True).only(*LOOKUP_FIELDS):
        model, _failure = _load_row(cache, row, x_new=None)
        if model is not None:
            cache.lru.put(row.model_key, cache.entry_from_row(row, model, from_db=True))
            found[row.model_key] = model
    return found


def cached_models(*, model_keys: Iterable[str], cache: ModelCache | None = None) -> dict[str, Any]:
    """Models for these keys, from the LRU or from ONE query on the table (then kept in the LRU).

    LRU copies due for revalidation are checked in one more light query. Rows failing an
    invalidation rule or their signature check are deactivated and left out.
    """
    if not FeatureFlags.is_enabled(FLAG):
        return {}
    cache = cache if cache is not None else default_cache()
    keys = list(dict.fromkeys(model_keys))
    resident = {k: e for k in keys if (e := cache.lru.peek(k)) is not None}
    _revalidate(cache, {k: e for k, e in resident.items() if cache.needs_check(e)})
    found: dict[str, Any] = {k: e.model for k, e in resident.items() if k in cache.lru}
    found.update(_load_keys(cache, [k for k in keys if k not in found]))
    return found


def _store_and_keep(*, cache: ModelCache, request: ModelRequest, model: StorableModel, x_train: Any) -> Any:
    """Store, put in the LRU, and return the model every worker should score with."""
    result = store_model(request=request, model=model, x_train=x_train)
    kept: Any = model
    if not result.stored:
        # Another worker stored this key first: use its model, so that both score alike.
        try:
            kept, _ = envelope.open_envelope(bytes(result.entry.model_binary), key=settings.MODEL_CACHE_SIGNING_KEY)
        except envelope.EnvelopeError:
            logger.exception("model cache: the concurrent winner's blob for %s does not open", request.model_key[:12])
    cache.lru.put(request.model_key, cache.entry_from_row(result.entry, kept, from_db=False))
    return kept


def get_or_train_model(
    *, request: ModelRequest, x_train: Any, train: Callable[[], Any], cache: ModelCache | None = None
) -> tuple[Any, CacheOutcome]:
    """The cached model of ``request``, or a freshly trained (and stored) one, under ``request.model_key``.

    With MODEL_CACHE_ENABLED off this is ``train()``: nothing is read, written or counted.
    """
    if not FeatureFlags.is_enabled(FLAG):
        return train(), CacheOutcome.BYPASS
    cache = cache if cache is not None else default_cache()
    model_key = request.model_key
    outcome = CacheOutcome.MISS
    entry, lru_reason = _lookup_lru(cache, model_key, x_train, timezone.now())
    if entry is not None:
        if entry.from_db:
            # Loaded by prefetch for this use: it is the database tier that served it.
            entry.from_db = False
            cache.count(StatsCounter.LRU_MISS)
            cache.count(StatsCounter.DB_HIT)
            outcome = CacheOutcome.DB_HIT
        else:
            cache.count(StatsCounter.LRU_HIT)
            outcome = CacheOutcome.LRU_HIT
        cache.record_use(entry.pk)
        return entry.model, outcome
    cache.count(StatsCounter.LRU_MISS)
    if lru_reason:
        cache.count(StatsCounter.STALE)
        outcome = CacheOutcome.STALE
    else:
        row = AnomalyModelCache.objects.filter(model_key=model_key).only(*LOOKUP_FIELDS).order_by().first()
        if row is not None:
            model, failure = _load_row(cache, row, x_new=x_train)
            if model is not None:
                cache.count(StatsCounter.DB_HIT)
                cache.lru.put(model_key, cache.entry_from_row(row, model, from_db=False))
                cache.record_use(row.pk)
                return model, CacheOutcome.DB_HIT
            outcome = failure or CacheOutcome.STALE
    cache.count(StatsCounter.DB_MISS)

    model = train()
    try:
        kept = _store_and_keep(cache=cache, request=request, model=model, x_train=x_train)
    except DatabaseError:
        # Caching is an optimisation: a failed store must not fail the detection that trained.
        logger.exception("model cache: could not store %s; using the trained model uncached", model_key[:12])
        return model, outcome
    cache.count(StatsCounter.TRAINED)
    return kept, outcome
