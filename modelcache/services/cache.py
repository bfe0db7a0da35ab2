"""``ModelCache``: one process's LRU tier, its pending usage counts and its statistics.

*Staleness of LRU copies when another process invalidates a row.* Each row carries a
``generation`` bumped on every invalidation or retraining. An LRU copy remembers the generation
it was loaded with and is revalidated lazily with a light query (generation, is_active,
expires_at; never the blob): on its first hit of each detection run (a new
``CachedModelProvider`` starts a run), and otherwise when it was last checked more than
``revalidate_seconds`` ago.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from modelcache.models import AnomalyModelCache, StatsCounter
from modelcache.services.lru import LruEntry, ModelLru
from modelcache.services.rules import DRIFT_COLUMN
from modelcache.services.usage import CacheCounters, PendingUse, merge_pending, record, write_counts, write_usage

logger = logging.getLogger(__name__)

FLAG = "MODEL_CACHE_ENABLED"
USAGE_FLUSH_EVERY = 1000
USAGE_FLUSH_SECONDS = 30.0
LRU_REVALIDATE_SECONDS = 30.0


class ModelCache:
    """The LRU tier (``lru``), the pending usage counts and the statistics of one process."""

    def __init__(
        self,
        *,
        max_bytes: int,
        revalidate_seconds: float = LRU_REVALIDATE_SECONDS,
        flush_every: int = USAGE_FLUSH_EVERY,
        flush_seconds: float = USAGE_FLUSH_SECONDS,
    ) -> None:
        self.lru = ModelLru(max_bytes=max_bytes)
        self.revalidate_seconds = revalidate_seconds
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._lock = threading.RLock()
        self._run = 0
        self._pending_uses: dict[int, PendingUse] = {}
        self._pending_hits = 0
        self._pending_counts: Counter[str] = Counter()
        self._last_flush = time.monotonic()
        self.counters = CacheCounters()

    def __len__(self) -> int:
        return len(self.lru)

    def __contains__(self, model_key: object) -> bool:
        return model_key in self.lru

    def clear(self) -> None:
        """Forget everything in memory (LRU, pending usage, counters); writes nothing."""
        with self._lock:
            self.lru.clear()
            self._pending_uses.clear()
            self._pending_counts.clear()
            self._pending_hits = 0
            self.counters = CacheCounters()

    # Runs and revalidation ----------------------------------------------------------------------
    def begin_run(self) -> None:
        """A new detection run: every LRU copy is revalidated against its row before its next use."""
        with self._lock:
            self._run += 1

    def entry_from_row(self, row: AnomalyModelCache, model: Any, *, from_db: bool) -> LruEntry:
        """An LRU entry for ``model``, loaded from or stored as ``row``, checked in this run."""
        metadata = row.model_metadata or {}
        return LruEntry(
            model=model,
            pk=row.pk,
            generation=row.generation,
            expires_at=row.expires_at,
            fingerprint=metadata.get("training_fingerprint", ""),
            sample=metadata.get("training_sample"),
            drift_column=int(metadata.get("drift_column", DRIFT_COLUMN)),
            n_features=metadata.get("n_features"),
            size_bytes=len(row.model_binary),
            checked_at=time.monotonic(),
            checked_run=self._run,
            from_db=from_db,
        )

    def needs_check(self, entry: LruEntry) -> bool:
        return entry.checked_run != self._run or time.monotonic() - entry.checked_at > self.revalidate_seconds

    def mark_checked(self, entry: LruEntry) -> None:
        entry.checked_at = time.monotonic()
        entry.checked_run = self._run

    # Counting and usage -----------------------------------------------------------------------------
    def count(self, counter: StatsCounter | str, n: int = 1) -> None:
        name = StatsCounter(counter).value
        with self._lock:
            self.counters.values[name] += n
            self._pending_counts[name] += n

    def record_use(self, pk: int) -> None:
        """One use of row ``pk``: counted in memory, flushed every ``flush_every`` hits or
        ``flush_seconds`` seconds."""
        now = timezone.now()
        with self._lock:
            record(self._pending_uses, pk, now)
            self._pending_hits += 1
            due = self._pending_hits >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds
        if due:
            self.flush_usage()

    def flush_usage(self) -> int:
        """Write the accumulated use counts and statistics; returns the number of rows touched."""
        with self._lock:
            uses, self._pending_uses = self._pending_uses, {}
            counts, self._pending_counts = self._pending_counts, Counter()
            self._pending_hits = 0
            self._last_flush = time.monotonic()
        if not uses and not counts:
            return 0
        try:
            with transaction.atomic():
                touched = write_usage(uses)
                write_counts(+counts)
        except DatabaseError:
            logger.exception("model cache: usage flush failed; keeping %d rows for the next flush", len(uses))
            with self._lock:
                merge_pending(self._pending_uses, uses)
                self._pending_counts.update(counts)
            return 0
        return touched


_default_cache: ModelCache | None = None
_default_lock = threading.Lock()


def default_cache() -> ModelCache:
    """This process's cache, bounded by ``settings.MODEL_CACHE_LRU_MAX_BYTES``."""
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            _default_cache = ModelCache(max_bytes=settings.MODEL_CACHE_LRU_MAX_BYTES)
        return _default_cache


def reset_model_cache(*, max_bytes: int | None = None) -> ModelCache:
    """Replace this process's cache with an empty one (tests, benchmarks); writes nothing."""
    global _default_cache
    with _default_lock:
        _default_cache = ModelCache(max_bytes=max_bytes or settings.MODEL_CACHE_LRU_MAX_BYTES)
        return _default_cache
