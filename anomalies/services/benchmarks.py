"""Portfolio benchmarks (PORTFOLIO_BENCHMARKS_ENABLED): ``cross_property_benchmarks`` filled from
the latest statements, per account, month and property group.

A group is a property type, plus ``all`` (every property). For each (account, month, group) the
compared values (``anomalies.selectors.benchmarks.benchmark_value``: per square foot for
statement amounts, as reported for rent-roll and mortgage metrics) of the group's properties give
mean, median, standard deviation, p25/p75/p90/p95 and the count; a group of fewer than 3
properties is stored too, and the review page says it is too small to compare with. One property
counts once per account and month (its first statement by document type).

It runs as the beat task ``anomalies.tasks.refresh_portfolio_benchmarks`` (daily) and on demand
(``python manage.py refresh_benchmarks``); each run replaces the rows of the months it computes,
in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from anomalies.models import CrossPropertyBenchmark
from anomalies.selectors.benchmarks import ALL_PROPERTIES, benchmark_lines
from kernel.flags import FeatureFlags
from kernel.logging import log_event

FLAG = "PORTFOLIO_BENCHMARKS_ENABLED"
BATCH_SIZE = 2000


@dataclass(frozen=True)
class BenchmarkRefreshSummary:
    rows: int
    groups_under_three: int
    lines: int
    duration_ms: int


def _stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    p25, p75, p90, p95 = np.percentile(array, [25, 75, 90, 95])
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
        "p25": float(p25),
        "p75": float(p75),
        "p90": float(p90),
        "p95": float(p95),
    }


@transaction.atomic
def portfolio_benchmarks_refresh(*, period_ids: Iterable[int] | None = None) -> BenchmarkRefreshSummary:
    """Recompute the benchmarks of these months (every month when None) and replace their rows."""
    FeatureFlags.require(FLAG)
    started = time.perf_counter()
    periods = None if period_ids is None else sorted(set(period_ids))
    lines = benchmark_lines(period_ids=periods)
    groups: dict[tuple[str, int, str], dict[int, float]] = {}
    for line in lines:
        for group in {line.property_type or ALL_PROPERTIES, ALL_PROPERTIES}:
            per_property = groups.setdefault((line.account_code, line.period_id, group), {})
            per_property.setdefault(line.property_id, line.value)  # first statement by document type
    rows = [
        CrossPropertyBenchmark(
            account_code=code,
            benchmark_period_id=period_id,
            property_group=group,
            property_count=len(values),
            property_ids=sorted(values),
            **_stats(list(values.values())),
        )
        for (code, period_id, group), values in groups.items()
    ]
    stale = CrossPropertyBenchmark.objects.all()
    if periods is not None:
        stale = stale.filter(benchmark_period_id__in=periods)
    stale.delete()
    CrossPropertyBenchmark.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    summary = BenchmarkRefreshSummary(
        rows=len(rows),
        groups_under_three=sum(1 for row in rows if row.property_count < 3),
        lines=len(lines),
        duration_ms=round((time.perf_counter() - started) * 1000),
    )
    log_event("portfolio_benchmarks_refresh", rows=summary.rows, lines=summary.lines, duration_ms=summary.duration_ms)
    return summary
