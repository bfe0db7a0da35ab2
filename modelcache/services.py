"""Writes of the model cache: look up, train on a miss, store, invalidate, flush usage, clean up.

Two tiers sit in front of training:

1. an in-process LRU (``ModelCache``) of deserialised models, bounded by
   ``settings.MODEL_CACHE_LRU_SIZE`` entries;
2. the ``anomaly_model_cache`` table, whose blobs are signed envelopes (``modelcache.envelope``).

*Usage without a write per hit.* A hit only increments counters in memory. ``flush_usage()``
writes them in one transaction: one ``UPDATE ... SET use_count = use_count + CASE id ...`` per
slice of ``USAGE_FLUSH_SLICE`` rows, plus the daily statistics rows. It runs by itself every
``flush_every`` hits or ``flush_seconds`` seconds (checked on the next hit), and the detection
run calls it when it ends (``CachedModelProvider.flush()``).

*Staleness of LRU copies when another process invalidates a row.* Each row carries a
``generation`` bumped on every invalidation or retraining. An LRU copy remembers the generation
it was loaded with and is revalidated lazily with a light query (generation, is_active,
expires_at; never the blob): on its first hit of each detection run (a new
``CachedModelProvider`` starts a run), and otherwise when it was last checked more than
``revalidate_seconds`` ago. ``prefetch()`` revalidates all LRU copies of a chunk in the same
single light query. Invalidation inside this process evicts the copy at once; ``expires_at`` is
checked on every hit without a query.

*Concurrency.* Training happens outside any transaction. Storing inserts inside a savepoint; a
concurrent worker that inserted the same key first makes ours fail with IntegrityError, and we
read and use the winner's model, so every worker scores with the same model and one row is left.
A row that exists but is inactive is replaced in place with an optimistic
``UPDATE ... WHERE generation = seen`` (the loser of that race reads the winner too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.fields import BigIntegerField, DateTimeField, PositiveIntegerField
from django.utils import timezone

from kernel.exceptions import ApplicationError, ConflictError
from kernel.flags import FeatureFlags
from modelcache import envelope
from modelcache.models import AnomalyModelCache, ModelCacheStats, StatsCounter

logger = logging.getLogger(__name__)

FLAG = "MODEL_CACHE_ENABLED"
# The training sample kept in model_metadata for the drift test (values of the main column).
DRIFT_SAMPLE_MAX = 256
# Below this many finite values on either side a two-sample KS test says nothing useful.
DRIFT_MIN_SAMPLES = 8
DRIFT_P_VALUE = 0.05
# The main feature the drift test watches: column 0 of the engine's feature matrix (the amount).
DRIFT_COLUMN = 0
USAGE_FLUSH_EVERY = 1000
USAGE_FLUSH_SECONDS = 30.0
USAGE_FLUSH_SLICE = 500
LRU_REVALIDATE_SECONDS = 30.0
CLEANUP_SLICE = 500
REASON_MAX = 200
STORE_ATTEMPTS = 3


# What a lookup reads of a row (the rules, the blob, the LRU bookkeeping): not the statistics.
_LOOKUP_FIELDS = (
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


# --- Keys ---------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def generate_model_key(property_id: int | None, account_code: str, model_type: str, config: Mapping[str, Any]) -> str:
    """sha256 hex of the sorted JSON of the four parts (seed Task 1.4)."""
    payload = {"property_id": property_id, "account_code": account_code, "model_type": model_type, "config": config}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=_json_default).encode()).hexdigest()


def _key_config(config: Mapping[str, Any], document_type: str | None) -> dict[str, Any]:
    # The same account code can appear on two document types: keep their models apart.
    key_config = dict(config)
    if document_type:
        key_config.setdefault("document_type", document_type)
    return key_config


def series_model_key(
    *, property_id: int | None, account_code: str, model_type: str, config: Mapping[str, Any], document_type: str | None
) -> str:
    return generate_model_key(property_id, account_code, model_type, _key_config(config, document_type))


def _series_parts(key: Any) -> tuple[int | None, str | None, str]:
    """(property_id, document_type, account_code) of an engine SeriesModelKey or a plain tuple."""
    if hasattr(key, "account_code"):
        return getattr(key, "property_id", None), getattr(key, "document_type", None), key.account_code
    property_id, document_type, account_code = key
    return property_id, document_type, account_code


# --- Invalidation rules ---------------------------------------------------------------------------


def _main_column(x: Any, column: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] <= column:
        return np.empty(0)
    col = arr[:, column]
    return col[np.isfinite(col)]


def training_sample(x: Any, *, column: int = DRIFT_COLUMN) -> list[float]:
    """At most DRIFT_SAMPLE_MAX finite values of the main column, evenly spread."""
    values = _main_column(x, column)
    if len(values) > DRIFT_SAMPLE_MAX:
        values = values[np.linspace(0, len(values) - 1, DRIFT_SAMPLE_MAX).round().astype(int)]
    return [float(v) for v in values]


def data_fingerprint(x: Any) -> str:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def drift_reason(sample: list[float] | None, x_new: Any, *, column: int = DRIFT_COLUMN) -> str | None:
    """'drift: ...' when the new main column differs from the training sample (KS p < 0.05)."""
    if not sample or x_new is None:
        return None
    new = _main_column(x_new, column)
    if len(sample) < DRIFT_MIN_SAMPLES or len(new) < DRIFT_MIN_SAMPLES:
        return None
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(sample, dtype=np.float64), new)
    if result.pvalue < DRIFT_P_VALUE:
        return f"drift: KS statistic {result.statistic:.3f}, p={result.pvalue:.4f} on column {column}"
    return None


def _expiry_reason(expires_at: datetime | None, now: datetime) -> str | None:
    if expires_at is not None and expires_at <= now:
        return f"expired: older than {settings.MODEL_CACHE_TTL_DAYS} days"
    return None


def _n_features(x: Any) -> int:
    arr = np.asarray(x)
    return int(arr.shape[1]) if arr.ndim == 2 else 1


def _shape_reason(n_features: int | None, x_new: Any) -> str | None:
    # A model fitted on another feature set cannot score this data at all.
    if n_features is not None and x_new is not None and _n_features(x_new) != n_features:
        return f"feature count changed: {n_features} -> {_n_features(x_new)}"
    return None


def should_invalidate(entry: AnomalyModelCache, *, X_new: Any = None, now: datetime | None = None) -> str | None:  # noqa: N803
    """Why ``entry`` must not be used any more, or None. Cheapest rules first, the KS test last."""
    now = now or timezone.now()
    if not entry.is_active:
        return f"inactive: {entry.invalidated_reason or 'invalidated'}"
    reason = _expiry_reason(entry.expires_at, now)
    if reason:
        return reason
    recorded = (entry.model_metadata or {}).get("library_versions") or {}
    changes = envelope.changed_libraries(recorded)
    if changes:
        return "library changed: " + ", ".join(changes)
    minimum = settings.MODEL_CACHE_MIN_VALIDATION_ACCURACY
    if entry.validation_accuracy is not None and entry.validation_accuracy < minimum:
        return f"validation accuracy {entry.validation_accuracy:.3f} below {minimum:.3f}"
    if X_new is not None:
        metadata = entry.model_metadata or {}
        reason = _shape_reason(metadata.get("n_features"), X_new)
        if reason:
            return reason
        if metadata.get("training_fingerprint") == data_fingerprint(X_new):
            return None
        return drift_reason(metadata.get("training_sample"), X_new, column=int(metadata.get("drift_column", DRIFT_COLUMN)))
    return None


# --- The in-process tier --------------------------------------------------------------------------


@dataclass
class _LruEntry:
    model: Any
    pk: int
    generation: int
    expires_at: datetime | None
    fingerprint: str
    sample: list[float] | None
    drift_column: int
    n_features: int | None
    checked_at: float
    checked_run: int
    from_db: bool = False  # loaded by prefetch: its first use is a database-tier hit


@dataclass
class CacheCounters:
    """Process-local counters since start (or the last reset)."""

    values: Counter = field(default_factory=Counter)

    def snapshot(self) -> dict[str, int]:
        return {c.value: int(self.values.get(c.value, 0)) for c in StatsCounter}


def hit_rates(counts: Mapping[str, int]) -> dict[str, Any]:
    """Per tier and overall hit rates from lru/db hit/miss counts (None when nothing was asked)."""

    def rate(hits: int, misses: int) -> float | None:
        return round(hits / (hits + misses), 4) if hits + misses else None

    lru_hit, lru_miss = counts.get("lru_hit", 0), counts.get("lru_miss", 0)
    db_hit, db_miss = counts.get("db_hit", 0), counts.get("db_miss", 0)
    lookups = lru_hit + lru_miss
    return {
        "lookups": lookups,
        "lru": {"hits": lru_hit, "misses": lru_miss, "hit_rate": rate(lru_hit, lru_miss)},
        "db": {"hits": db_hit, "misses": db_miss, "hit_rate": rate(db_hit, db_miss)},
        "overall_hit_rate": round((lru_hit + db_hit) / lookups, 4) if lookups else None,
        "trained": counts.get("trained", 0),
        "stale": counts.get("stale", 0),
        "refused": counts.get("refused", 0),
    }


class ModelCache:
    """The LRU tier, the pending usage counts and the statistics of one process."""

    def __init__(
        self,
        *,
        lru_size: int,
        revalidate_seconds: float = LRU_REVALIDATE_SECONDS,
        flush_every: int = USAGE_FLUSH_EVERY,
        flush_seconds: float = USAGE_FLUSH_SECONDS,
    ) -> None:
        if lru_size <= 0:
            raise ValueError("lru_size must be positive")
        self.lru_size = lru_size
        self.revalidate_seconds = revalidate_seconds
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._lock = threading.RLock()
        self._lru: OrderedDict[str, _LruEntry] = OrderedDict()
        self._run = 0
        self._pending_uses: dict[int, list] = {}  # pk -> [uses, last used at]
        self._pending_hits = 0
        self._pending_counts: Counter = Counter()
        self._last_flush = time.monotonic()
        self.counters = CacheCounters()

    # LRU primitives --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, model_key: str) -> bool:
        return model_key in self._lru

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._lru)

    def _get(self, model_key: str) -> _LruEntry | None:
        with self._lock:
            entry = self._lru.get(model_key)
            if entry is not None:
                self._lru.move_to_end(model_key)
            return entry

    def _put(self, model_key: str, entry: _LruEntry) -> None:
        with self._lock:
            self._lru[model_key] = entry
            self._lru.move_to_end(model_key)
            while len(self._lru) > self.lru_size:
                self._lru.popitem(last=False)

    def evict(self, model_keys: Iterable[str]) -> None:
        with self._lock:
            for key in model_keys:
                self._lru.pop(key, None)

    def clear(self) -> None:
        """Forget everything in memory (LRU, pending usage, counters); writes nothing."""
        with self._lock:
            self._lru.clear()
            self._pending_uses.clear()
            self._pending_counts.clear()
            self._pending_hits = 0
            self.counters = CacheCounters()

    def begin_run(self) -> None:
        """A new detection run: every LRU copy is revalidated against its row before its next use."""
        with self._lock:
            self._run += 1

    def _entry_from_row(self, row: AnomalyModelCache, model: Any, *, from_db: bool) -> _LruEntry:
        metadata = row.model_metadata or {}
        return _LruEntry(
            model=model,
            pk=row.pk,
            generation=row.generation,
            expires_at=row.expires_at,
            fingerprint=metadata.get("training_fingerprint", ""),
            sample=metadata.get("training_sample"),
            drift_column=int(metadata.get("drift_column", DRIFT_COLUMN)),
            n_features=metadata.get("n_features"),
            checked_at=time.monotonic(),
            checked_run=self._run,
            from_db=from_db,
        )

    def _needs_check(self, entry: _LruEntry) -> bool:
        return entry.checked_run != self._run or time.monotonic() - entry.checked_at > self.revalidate_seconds

    def _mark_checked(self, entry: _LruEntry) -> None:
        entry.checked_at = time.monotonic()
        entry.checked_run = self._run

    # Counting ------------------------------------------------------------------------------------
    def count(self, counter: StatsCounter | str, n: int = 1) -> None:
        name = StatsCounter(counter).value
        with self._lock:
            self.counters.values[name] += n
            self._pending_counts[name] += n

    def _record_use(self, pk: int) -> None:
        now = timezone.now()
        with self._lock:
            slot = self._pending_uses.get(pk)
            if slot is None:
                self._pending_uses[pk] = [1, now]
            else:
                slot[0] += 1
                slot[1] = now
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
                touched = _write_usage(uses)
                _write_counts(+counts)
        except DatabaseError:
            logger.exception("model cache: usage flush failed; keeping %d rows for the next flush", len(uses))
            with self._lock:
                for pk, (n, at) in uses.items():
                    slot = self._pending_uses.setdefault(pk, [0, at])
                    slot[0] += n
                    slot[1] = max(slot[1], at)
                self._pending_counts.update(counts)
            return 0
        return touched

    # Lookups ---------------------------------------------------------------------------------------
    def _revalidate(self, entries: dict[str, _LruEntry]) -> None:
        """One light query for these LRU copies; drop the ones whose row changed or went away."""
        if not entries:
            return
        rows = {
            key: (generation, is_active, expires_at)
            for key, generation, is_active, expires_at in AnomalyModelCache.objects.filter(
                model_key__in=list(entries)
            ).values_list("model_key", "generation", "is_active", "expires_at")
        }
        stale = []
        for key, entry in entries.items():
            row = rows.get(key)
            if row is None or not row[1] or row[0] != entry.generation:
                stale.append(key)
            else:
                entry.expires_at = row[2]
                self._mark_checked(entry)
        self.evict(stale)

    def lookup_lru(self, model_key: str, x_new: Any, now: datetime) -> tuple[_LruEntry | None, str | None]:
        """(entry, None) on a usable LRU copy; (None, reason) when the copy failed a rule (its row is
        then deactivated); (None, None) when there is no current copy."""
        entry = self._get(model_key)
        if entry is None:
            return None, None
        if self._needs_check(entry):
            self._revalidate({model_key: entry})
            if model_key not in self._lru:
                return None, None
        reason = _expiry_reason(entry.expires_at, now) or _shape_reason(entry.n_features, x_new)
        if reason is None and x_new is not None and entry.fingerprint != data_fingerprint(x_new):
            reason = drift_reason(entry.sample, x_new, column=entry.drift_column)
        if reason:
            self.evict([model_key])
            AnomalyModelCache.objects.filter(pk=entry.pk, generation=entry.generation).update(
                is_active=False, invalidated_reason=reason[:REASON_MAX], generation=F("generation") + 1
            )
            return None, reason
        return entry, None

    def get_many(self, model_keys: Iterable[str]) -> dict[str, Any]:
        """Models for these keys, from the LRU or from ONE query on the table (then kept in the LRU).

        LRU copies due for revalidation are checked in one more light query. Rows failing an
        invalidation rule or their signature check are deactivated and left out.
        """
        if not FeatureFlags.is_enabled(FLAG):
            return {}
        keys = list(dict.fromkeys(model_keys))
        with self._lock:
            resident = {k: self._lru[k] for k in keys if k in self._lru}
        self._revalidate({k: e for k, e in resident.items() if self._needs_check(e)})
        found: dict[str, Any] = {k: e.model for k, e in resident.items() if k in self._lru}
        found.update(self._load_keys([k for k in keys if k not in found]))
        return found

    def _load_keys(self, keys: list[str]) -> dict[str, Any]:
        """One query for the full rows of ``keys``; valid ones are deserialised into the LRU."""
        found: dict[str, Any] = {}
        if not keys:
            return found
        for row in AnomalyModelCache.objects.filter(model_key__in=keys, is_active=True).only(*_LOOKUP_FIELDS):
            model, _failure = self._load_row(row, x_new=None)
            if model is not None:
                self._put(row.model_key, self._entry_from_row(row, model, from_db=True))
                found[row.model_key] = model
        return found

    def prefetch_series(self, series: Iterable[Any]) -> int:
        """Load the models of these (property, document type, account) series: one light query
        that also revalidates the LRU copies, plus one query for the rows not in memory."""
        if not FeatureFlags.is_enabled(FLAG):
            return 0
        wanted = {_series_parts(s) for s in series}
        if not wanted:
            return 0
        property_ids = {p for p, _, _ in wanted}
        ids = [p for p in property_ids if p is not None]
        # (property, account) cover the series; the document type is checked in Python.
        filters = Q(account_code__in={a for _, _, a in wanted})
        filters &= (Q(property_id__in=ids) | Q(property__isnull=True)) if None in property_ids else Q(property_id__in=ids)
        light = list(
            AnomalyModelCache.objects.filter(filters).values_list(
                "model_key", "property_id", "account_code", "document_type", "generation", "is_active", "expires_at"
            )
        )
        found = 0
        to_load: list[str] = []
        stale: list[str] = []
        with self._lock:
            for key, property_id, account_code, document_type, generation, is_active, expires_at in light:
                exact = (property_id, document_type or None, account_code)
                if exact not in wanted and (property_id, None, account_code) not in wanted:
                    continue
                entry = self._lru.get(key)
                if entry is not None and (not is_active or entry.generation != generation):
                    stale.append(key)
                    entry = None
                if entry is not None:
                    entry.expires_at = expires_at
                    self._mark_checked(entry)
                    found += 1
                elif is_active:
                    to_load.append(key)
        self.evict(stale)
        return found + len(self._load_keys(to_load))

    def _load_row(self, row: AnomalyModelCache, *, x_new: Any) -> tuple[Any | None, CacheOutcome | None]:
        """(model, None) when the row passes every rule and its signature check; otherwise the row
        is deactivated and (None, STALE or REFUSED) returned."""
        reason = should_invalidate(row, X_new=x_new)
        if reason:
            self.count(StatsCounter.STALE)
            _deactivate(row, reason)
            self.evict([row.model_key])
            return None, CacheOutcome.STALE
        try:
            model, _header = envelope.open_envelope(row.model_binary, key=settings.MODEL_CACHE_SIGNING_KEY)
        except envelope.EnvelopeError as exc:
            logger.error("model cache: refused blob of entry %s (%s): %s", row.pk, row.model_key[:12], exc)
            self.count(StatsCounter.REFUSED)
            _deactivate(row, f"refused: {exc}")
            self.evict([row.model_key])
            return None, CacheOutcome.REFUSED
        return model, None


def _write_usage(uses: dict[int, list]) -> int:
    touched = 0
    items = sorted(uses.items())  # a consistent lock order between concurrent flushes
    for start in range(0, len(items), USAGE_FLUSH_SLICE):
        part = items[start : start + USAGE_FLUSH_SLICE]
        touched += AnomalyModelCache.objects.filter(pk__in=[pk for pk, _ in part]).update(
            use_count=F("use_count")
            + Case(
                *[When(pk=pk, then=Value(n)) for pk, (n, _) in part], default=Value(0), output_field=PositiveIntegerField()
            ),
            last_used_at=Case(*[When(pk=pk, then=Value(at)) for pk, (_, at) in part], output_field=DateTimeField()),
        )
    return touched


def _write_counts(counts: Counter) -> None:
    if not counts:
        return
    today = timezone.localdate()
    names = sorted(counts)
    ModelCacheStats.objects.bulk_create(
        [ModelCacheStats(day=today, counter=name, value=0) for name in names], ignore_conflicts=True
    )
    ModelCacheStats.objects.filter(day=today, counter__in=names).update(
        value=F("value")
        + Case(*[When(counter=n, then=Value(counts[n])) for n in names], default=Value(0), output_field=BigIntegerField()),
        updated_at=timezone.now(),
    )


def _deactivate(row: AnomalyModelCache, reason: str) -> None:
    AnomalyModelCache.objects.filter(pk=row.pk, generation=row.generation).update(
        is_active=False, invalidated_reason=reason[:REASON_MAX], generation=F("generation") + 1
    )


_default_cache: ModelCache | None = None
_default_lock = threading.Lock()


def default_cache() -> ModelCache:
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            _default_cache = ModelCache(lru_size=settings.MODEL_CACHE_LRU_SIZE)
        return _default_cache


def reset_model_cache(*, lru_size: int | None = None) -> ModelCache:
    """Replace this process's cache with an empty one (tests, benchmarks); writes nothing."""
    global _default_cache
    with _default_lock:
        _default_cache = ModelCache(lru_size=lru_size or settings.MODEL_CACHE_LRU_SIZE)
        return _default_cache


def flush_usage() -> int:
    """Write this process's pending use counts and statistics (call at the end of a detection run)."""
    return default_cache().flush_usage()


# --- Store ---------------------------------------------------------------------------------------


def _stat(model: Any, name: str) -> Any:
    stats = getattr(model, "training_stats", None)
    if isinstance(stats, Mapping) and name in stats:
        return stats[name]
    return getattr(model, name, None)


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _row_fields(
    *,
    model: Any,
    blob: bytes,
    header: envelope.EnvelopeHeader,
    model_type: str,
    config: Mapping[str, Any],
    document_type: str | None,
    x_train: Any,
    now: datetime,
) -> dict[str, Any]:
    x = np.asarray(x_train, dtype=np.float64) if x_train is not None else np.empty((0, 0))
    n_train = _stat(model, "n_train")
    metadata = {
        "requested_model_type": model_type,
        "config": json.loads(json.dumps(dict(config), default=_json_default)),
        "library_versions": header.library_versions,
        "envelope": header.to_dict(),
        "model_class": header.model_class,
        "threshold": _float_or_none(_stat(model, "threshold")),
        "feature_names": list(getattr(model, "feature_names", ()) or ()),
        "n_features": _n_features(x) if x.size else None,
        "drift_column": DRIFT_COLUMN,
        "training_sample": training_sample(x),
        "training_fingerprint": data_fingerprint(x),
    }
    date_range = _stat(model, "training_date_range") or config.get("training_date_range") or {}
    return {
        "document_type": document_type or "",
        # The key holds the requested type ("auto" lets the engine select); the row shows the fitted one.
        "model_type": str(getattr(model, "model_type", "") or model_type)[:60],
        "model_binary": blob,
        "model_metadata": metadata,
        "model_version": str(getattr(model, "model_version", "") or "")[:100],
        "training_accuracy": _float_or_none(_stat(model, "training_accuracy")),
        "validation_accuracy": _float_or_none(_stat(model, "validation_accuracy")),
        "precision": _float_or_none(_stat(model, "precision")),
        "recall": _float_or_none(_stat(model, "recall")),
        "f1": _float_or_none(_stat(model, "f1")),
        "training_data_size": int(n_train) if n_train is not None else int(len(x)),
        "training_date_range": date_range if isinstance(date_range, dict) else {"value": str(date_range)},
        "size_bytes": len(blob),
        "trained_at": now,
        "last_used_at": None,
        "use_count": 0,
        "is_active": True,
        "invalidated_reason": "",
        "expires_at": now + timedelta(days=settings.MODEL_CACHE_TTL_DAYS),
    }


@dataclass(frozen=True)
class StoreResult:
    entry: AnomalyModelCache
    stored: bool  # False: another worker stored this key first; ``entry`` is the winner's


def _store(
    *,
    model_key: str,
    property_id: int | None,
    account_code: str,
    model_type: str,
    config: Mapping[str, Any],
    model: Any,
    x_train: Any,
    document_type: str | None,
) -> StoreResult:
    now = timezone.now()
    blob = envelope.seal(model, key=settings.MODEL_CACHE_SIGNING_KEY, created_at=now)
    header = envelope.read_header(blob, key=settings.MODEL_CACHE_SIGNING_KEY)
    fields = _row_fields(
        model=model,
        blob=blob,
        header=header,
        model_type=model_type,
        config=config,
        document_type=document_type,
        x_train=x_train,
        now=now,
    )
    for _attempt in range(STORE_ATTEMPTS):
        try:
            with transaction.atomic():
                row = AnomalyModelCache.objects.create(
                    model_key=model_key, property_id=property_id, account_code=account_code, generation=1, **fields
                )
            return StoreResult(row, True)
        except IntegrityError:
            pass  # the key exists (another worker, or an invalidated row): look at it
        existing = AnomalyModelCache.objects.filter(model_key=model_key).first()
        if existing is None:
            continue  # deleted meanwhile (cleanup): insert again
        if existing.is_active and _expiry_reason(existing.expires_at, now) is None:
            return StoreResult(existing, False)
        # An inactive or expired row: replace it in place unless someone else does it first.
        updated = AnomalyModelCache.objects.filter(pk=existing.pk, generation=existing.generation).update(
            property_id=property_id, account_code=account_code, generation=existing.generation + 1, **fields
        )
        if updated:
            return StoreResult(AnomalyModelCache.objects.get(pk=existing.pk), True)
    raise DatabaseError(f"model cache: could not store {model_key[:12]} after {STORE_ATTEMPTS} attempts")


def _cache_model(
    *,
    cache: ModelCache,
    model_key: str,
    property_id: int | None,
    account_code: str,
    model_type: str,
    config: Mapping[str, Any],
    model: Any,
    x_train: Any,
    document_type: str | None,
) -> tuple[AnomalyModelCache, Any]:
    """Store, put in the LRU, and return (row, the model every worker should score with)."""
    result = _store(
        model_key=model_key,
        property_id=property_id,
        account_code=account_code,
        model_type=model_type,
        config=config,
        model=model,
        x_train=x_train,
        document_type=document_type,
    )
    kept = model
    if not result.stored:
        # Another worker stored this key first: use its model, so that both score alike.
        try:
            kept, _ = envelope.open_envelope(result.entry.model_binary, key=settings.MODEL_CACHE_SIGNING_KEY)
        except envelope.EnvelopeError:
            logger.exception("model cache: the concurrent winner's blob for %s does not open", model_key[:12])
    cache._put(model_key, cache._entry_from_row(result.entry, kept, from_db=False))
    return result.entry, kept


def cache_model(
    *,
    property_id: int | None,
    account_code: str,
    model_type: str,
    config: Mapping[str, Any],
    model: Any,
    X_train: Any = None,
    document_type: str | None = None,
    cache: ModelCache | None = None,  # noqa: N803
) -> AnomalyModelCache:
    """Store a trained model (or replace its inactive row) and keep it in the LRU; returns the row.

    When another worker stored the same key first, its row is returned and the LRU holds its model.
    """
    model_key = series_model_key(
        property_id=property_id,
        account_code=account_code,
        model_type=model_type,
        config=config,
        document_type=document_type,
    )
    row, _kept = _cache_model(
        cache=cache if cache is not None else default_cache(),
        model_key=model_key,
        property_id=property_id,
        account_code=account_code,
        model_type=model_type,
        config=config,
        model=model,
        x_train=X_train,
        document_type=document_type,
    )
    return row


# --- Look up or train -----------------------------------------------------------------------------


def get_or_train_model(
    *,
    property_id: int | None,
    account_code: str,
    model_type: str,
    config: Mapping[str, Any],
    X_train: Any,  # noqa: N803
    train: Callable[[], Any],
    document_type: str | None = None,
    cache: ModelCache | None = None,
) -> tuple[Any, CacheOutcome]:
    """The cached model of this series and configuration, or a freshly trained (and stored) one.

    With MODEL_CACHE_ENABLED off this is ``train()``: nothing is read, written or counted.
    """
    if not FeatureFlags.is_enabled(FLAG):
        return train(), CacheOutcome.BYPASS
    cache = cache if cache is not None else default_cache()
    model_key = series_model_key(
        property_id=property_id,
        account_code=account_code,
        model_type=model_type,
        config=config,
        document_type=document_type,
    )
    outcome = CacheOutcome.MISS
    entry, lru_reason = cache.lookup_lru(model_key, X_train, timezone.now())
    if entry is not None:
        if entry.from_db:
            # Loaded by prefetch() for this use: it is the database tier that served it.
            entry.from_db = False
            cache.count(StatsCounter.LRU_MISS)
            cache.count(StatsCounter.DB_HIT)
            outcome = CacheOutcome.DB_HIT
        else:
            cache.count(StatsCounter.LRU_HIT)
            outcome = CacheOutcome.LRU_HIT
        cache._record_use(entry.pk)
        return entry.model, outcome
    cache.count(StatsCounter.LRU_MISS)
    if lru_reason:
        cache.count(StatsCounter.STALE)
        outcome = CacheOutcome.STALE
    else:
        row = AnomalyModelCache.objects.filter(model_key=model_key).only(*_LOOKUP_FIELDS).order_by().first()
        if row is not None:
            model, failure = cache._load_row(row, x_new=X_train)
            if model is not None:
                cache.count(StatsCounter.DB_HIT)
                cache._put(model_key, cache._entry_from_row(row, model, from_db=False))
                cache._record_use(row.pk)
                return model, CacheOutcome.DB_HIT
            outcome = failure or CacheOutcome.STALE
    cache.count(StatsCounter.DB_MISS)

    model = train()
    try:
        _row, kept = _cache_model(
            cache=cache,
            model_key=model_key,
            property_id=property_id,
            account_code=account_code,
            model_type=model_type,
            config=config,
            model=model,
            x_train=X_train,
            document_type=document_type,
        )
    except DatabaseError:
        # Caching is an optimisation: a failed store must not fail the detection that trained.
        logger.exception("model cache: could not store %s; using the trained model uncached", model_key[:12])
        return model, outcome
    cache.count(StatsCounter.TRAINED)
    return kept, outcome


# --- Invalidation and cleanup -------------------------------------------------------------------


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
            is_active=False, invalidated_reason=reason[:REASON_MAX], generation=F("generation") + 1
        )
        if keys
        else 0
    )
    (cache if cache is not None else default_cache()).evict(keys)
    logger.info("model cache: invalidated %d entries (%s)", count, reason)
    return count


@transaction.atomic
def model_cache_entry_invalidate(*, entry_id: int, reason: str, cache: ModelCache | None = None) -> AnomalyModelCache:
    """Deactivate one entry; ConflictError (409) when already inactive, DoesNotExist when unknown."""
    entry = AnomalyModelCache.objects.select_for_update().defer("model_binary").get(pk=entry_id)
    if not entry.is_active:
        raise ConflictError(f"Cached model {entry_id} is already inactive ({entry.invalidated_reason or 'invalidated'})")
    entry.is_active = False
    entry.invalidated_reason = reason[:REASON_MAX]
    entry.generation += 1
    entry.save(update_fields=["is_active", "invalidated_reason", "generation"])
    (cache if cache is not None else default_cache()).evict([entry.model_key])
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


# --- The engine's ModelProvider ------------------------------------------------------------------


class CachedModelProvider:
    """The detection engine's ``ModelProvider`` backed by the two-tier cache.

    One provider per detection run: creating it starts a run (LRU copies are revalidated before
    their first use); call ``prefetch(keys)`` once per chunk and ``flush()`` at the end.
    """

    def __init__(self, *, cache: ModelCache | None = None) -> None:
        self.cache = cache if cache is not None else default_cache()
        self.cache.begin_run()
        self.outcomes: Counter = Counter()

    def get_or_train(
        self,
        key: Any,
        model_type: str,
        config: Mapping[str, Any],
        x_train: Any,
        train: Callable[[], Any],
    ) -> Any:
        """The engine's ModelProvider.get_or_train (SeriesModelKey, model_type, config, x_train, train)."""
        property_id, document_type, account_code = _series_parts(key)
        model, outcome = get_or_train_model(
            property_id=property_id,
            account_code=account_code,
            model_type=model_type,
            config=config,
            X_train=x_train,
            train=train,
            document_type=document_type,
            cache=self.cache,
        )
        self.outcomes[outcome.value] += 1
        return model

    def prefetch(self, keys: Iterable[Any]) -> int:
        """Load the cached models of a chunk in at most two queries; returns how many were found.

        ``keys`` are the engine's SeriesModelKey values (all models of those series are loaded),
        or ``(SeriesModelKey, model_type, config)`` triples (exactly those models).
        """
        series, exact = [], []
        for key in keys:
            if isinstance(key, tuple) and len(key) == 3 and isinstance(key[1], str) and isinstance(key[2], Mapping):
                property_id, document_type, account_code = _series_parts(key[0])
                exact.append(
                    series_model_key(
                        property_id=property_id,
                        account_code=account_code,
                        model_type=key[1],
                        config=key[2],
                        document_type=document_type,
                    )
                )
            else:
                series.append(key)
        found = 0
        if exact:
            found += len(self.cache.get_many(exact))
        if series:
            found += self.cache.prefetch_series(series)
        return found

    def flush(self) -> int:
        return self.cache.flush_usage()

    def __enter__(self) -> CachedModelProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
