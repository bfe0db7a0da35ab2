"""Portfolio-wide peer evidence, an explicit input of the engine (Django-free).

A line's peer evidence must not depend on which other documents happen to be scored with it
(a batch chunk, a group of properties): it is computed once over the *whole portfolio* (the
latest version of every document) and passed to :func:`~.engine.detect_anomalies` as a
:class:`PeerStats`.  Per (document_type, account_code, period) it holds:

* ``n_reporting``: properties whose document of that type and month carries the account;
* ``n_posting``: those of them with a non-zero amount (an early snowfall would show at the
  neighbouring properties too: a month in which nobody posts snow removal is off-season);
* the median and MAD, over those properties, of the amount divided by the property's own usual
  magnitude on that account (``typical``: the median of its non-zero |amounts|), a scale-free
  level that says whether a movement is portfolio-wide (a cold winter) or one property's own.

The property itself is part of the aggregate; the engine subtracts its own contribution from
the counts.  :func:`peer_stats_from_columns` is the one implementation, used by the database
selector (one query over the portfolio's non-total lines) and by :meth:`PeerStats.from_table`
(when the table *is* the portfolio: benchmarks, tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .table import FloatArray, IntArray, LineTable

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class PeerStats:
    """Per (document_type, account_code) group and absolute period: counts and level quantiles."""

    groups: Mapping[tuple[str, str], int]
    period0: int
    n_reporting: IntArray  # (G, T)
    n_posting: IntArray  # (G, T)
    level_median: FloatArray  # (G, T) median of amount / typical over reporting properties
    level_mad: FloatArray  # (G, T) MAD (scaled to a sigma) of the same
    aliases: Mapping[str, str] = field(default_factory=dict)  # account code seen by the engine -> code here

    @property
    def n_periods(self) -> int:
        return int(self.n_reporting.shape[1]) if self.n_reporting.ndim == 2 else 0

    def with_aliases(self, aliases: Mapping[str, str]) -> PeerStats:
        """The same statistics, also found under other account codes (a series cut in segments)."""
        merged = {**self.aliases, **aliases}
        return PeerStats(
            self.groups, self.period0, self.n_reporting, self.n_posting, self.level_median, self.level_mad, merged
        )

    def group_of(self, document_types: Iterable[str], account_codes: Iterable[str]) -> IntArray:
        """Group index per (document_type, account_code) pair, -1 when the portfolio has none."""
        return np.asarray(
            [
                self.groups.get((str(d), str(self.aliases.get(str(a), a))), -1)
                for d, a in zip(document_types, account_codes, strict=True)
            ],
            dtype=np.int64,
        )

    def cells(self, groups: IntArray, period0: int, n_periods: int, values: np.ndarray, fill: float) -> np.ndarray:
        """``values`` (G, T) laid out on a panel's (series, period) grid; ``fill`` where unknown."""
        out = np.full((len(groups), n_periods), fill, dtype=np.float64)
        if self.n_periods == 0 or len(groups) == 0:
            return out
        lo = max(period0, self.period0)
        hi = min(period0 + n_periods, self.period0 + self.n_periods)
        if hi <= lo:
            return out
        known = groups >= 0
        out[np.ix_(known, np.arange(lo - period0, hi - period0))] = values[
            np.ix_(groups[known], np.arange(lo - self.period0, hi - self.period0))
        ]
        return out

    @classmethod
    def from_table(cls, table: LineTable) -> PeerStats:
        """The statistics of a table that holds the whole portfolio (its non-total rows)."""
        detail = ~table.is_total
        return peer_stats_from_columns(
            property_ids=table.property_ids[detail],
            document_types=table.document_types[detail],
            account_codes=table.account_codes[detail],
            periods=table.periods[detail],
            amounts=table.amounts[detail],
        )


def empty_peer_stats() -> PeerStats:
    z = np.zeros((0, 0))
    return PeerStats({}, 0, z.astype(np.int64), z.astype(np.int64), z, z)


def peer_stats_from_columns(
    *,
    property_ids: Iterable[int],
    document_types: Iterable[str],
    account_codes: Iterable[str],
    periods: Iterable[int],
    amounts: Iterable[float | None],
) -> PeerStats:
    """Aggregate non-total lines (one per property, document type, account, period) to PeerStats.

    Vectorised: a few sorts over the rows, whatever the number of properties.
    """
    pid = np.asarray(list(property_ids), dtype=np.int64)
    docs = np.asarray([str(d) for d in document_types], dtype=object)
    accts = np.asarray([str(a) for a in account_codes], dtype=object)
    per = np.asarray(list(periods), dtype=np.int64)
    amt = np.asarray([np.nan if a is None else float(a) for a in amounts], dtype=np.float64)
    ok = np.isfinite(amt)
    pid, docs, accts, per, amt = pid[ok], docs[ok], accts[ok], per[ok], amt[ok]
    if len(amt) == 0:
        return empty_peer_stats()
    group_names = np.char.add(np.char.add(docs.astype(str), "\x1f"), accts.astype(str))
    uniq, group = np.unique(group_names, return_inverse=True)
    group = group.reshape(-1)
    groups = {_group_key(u): i for i, u in enumerate(uniq)}
    period0 = int(per.min())
    n_t = int(per.max()) - period0 + 1
    t = per - period0
    n_g = len(uniq)

    # One line per (property, group, period): the last one wins (should not repeat).
    cell = (group * n_t + t) * (int(pid.max()) + 1) + pid if len(pid) else pid
    _, first = np.unique(cell[::-1], return_index=True)
    keep = len(cell) - 1 - first
    pid, group, t, amt = pid[keep], group[keep], t[keep], amt[keep]

    n_reporting = np.zeros((n_g, n_t), dtype=np.int64)
    n_posting = np.zeros((n_g, n_t), dtype=np.int64)
    np.add.at(n_reporting, (group, t), 1)
    posted = np.abs(amt) > 1e-9
    np.add.at(n_posting, (group[posted], t[posted]), 1)

    # Typical magnitude of each property's series: median of its non-zero |amounts|.
    series = group * (int(pid.max()) + 1) + pid
    typical = _segment_median(series, np.where(posted, np.abs(amt), np.nan))
    level = amt / np.where(typical > 0, typical, np.nan)
    key = group * n_t + t
    med = _segment_median(key, level)
    mad = MAD_TO_SIGMA * _segment_median(key, np.abs(level - med))
    level_median = np.full((n_g, n_t), np.nan)
    level_mad = np.full((n_g, n_t), np.nan)
    level_median[group, t] = med
    level_mad[group, t] = mad
    return PeerStats(groups, period0, n_reporting, n_posting, level_median, level_mad)


def _group_key(name: object) -> tuple[str, str]:
    """(document type, account code) of a group name joined with the unit separator."""
    document_type, account_code = str(name).split("\x1f", 1)
    return document_type, account_code


def _segment_median(segment: IntArray, values: FloatArray) -> FloatArray:
    """Per element: the median of the finite ``values`` of its segment (NaN when it has none)."""
    finite = np.isfinite(values)
    order = np.lexsort((np.where(finite, values, np.inf), segment))
    seg_sorted = segment[order]
    val_sorted = values[order]
    fin_sorted = finite[order]
    uniq, start = np.unique(seg_sorted, return_index=True)
    count = np.add.reduceat(fin_sorted.astype(np.int64), start) if len(start) else np.zeros(0, dtype=np.int64)
    last = len(val_sorted) - 1
    lo = np.minimum(start + np.maximum(count - 1, 0) // 2, last)
    hi = np.minimum(start + count // 2, last)
    med = np.where(count > 0, 0.5 * (val_sorted[lo] + val_sorted[hi]), np.nan)
    idx = np.searchsorted(uniq, segment)
    return med[idx]
