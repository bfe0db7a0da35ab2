"""Usage without a write per hit: counters in memory, written in bulk by ``ModelCache.flush_usage``.

One ``UPDATE ... SET use_count = use_count + CASE id ...`` per slice of ``USAGE_FLUSH_SLICE``
rows, plus the day's statistics rows, in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Case, F, Value, When
from django.db.models.fields import BigIntegerField, DateTimeField, PositiveIntegerField
from django.utils import timezone

from modelcache.models import AnomalyModelCache, ModelCacheStats, StatsCounter

USAGE_FLUSH_SLICE = 500

# Pending uses of one row: [number of uses, last used at].
PendingUse = list[Any]


@dataclass
class CacheCounters:
    """Process-local counters since start (or the last reset)."""

    values: Counter[str] = field(default_factory=Counter)

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


def write_usage(uses: Mapping[int, PendingUse]) -> int:
    """Add the pending use counts to their rows; returns the number of rows touched."""
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


def write_counts(counts: Mapping[str, int]) -> None:
    """Add the counters to today's statistics rows."""
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


def merge_pending(into: dict[int, PendingUse], uses: Mapping[int, PendingUse]) -> None:
    """Put uses that could not be written back into the pending ones (for the next flush)."""
    for pk, (n, at) in uses.items():
        slot: PendingUse = into.setdefault(pk, [0, at])
        slot[0] += n
        slot[1] = max(slot[1], at)


def record(into: dict[int, PendingUse], pk: int, at: datetime) -> None:
    slot = into.get(pk)
    if slot is None:
        into[pk] = [1, at]
    else:
        slot[0] += 1
        slot[1] = at
