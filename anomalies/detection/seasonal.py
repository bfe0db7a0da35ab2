"""Off-season postings: a material amount in a calendar month that is empty in every other year."""

from __future__ import annotations

import numpy as np

from .arrays import SEASONAL_YEARS, shift
from .peers import PeerStats
from .table import BoolArray, FloatArray, SeriesPanel

MIN_QUIET_PEERS = 3


def peers_quiet(panel: SeriesPanel, peers: PeerStats | None) -> BoolArray | None:
    """(S,T): at least MIN_QUIET_PEERS other properties of the portfolio report the same account
    that month and none of them posts anything: the month is off-season portfolio-wide (an early
    snowfall would show at the neighbouring properties too).  None without peer statistics."""
    if peers is None or panel.n_series == 0:
        return None
    v = panel.values
    groups = peers.group_of(panel.document_types, panel.account_codes)
    reporting = peers.cells(groups, panel.period0, panel.n_periods, peers.n_reporting, 0.0)
    posting = peers.cells(groups, panel.period0, panel.n_periods, peers.n_posting, 0.0)
    observed = np.isfinite(v)
    posted = observed & (np.abs(np.nan_to_num(v)) > 1e-9)
    # The portfolio counts include the series' own property: take its contribution out.
    return (reporting - observed >= MIN_QUIET_PEERS) & (posting - posted <= 0)


def off_season_postings(v: FloatArray, typical: FloatArray, peers_quiet: BoolArray | None = None) -> BoolArray:
    """A material amount in a month that is empty in every other year, as are its two
    neighbouring calendar months: snow removal in July.  A November snow bill, next to a
    December that usually has one, is not flagged."""
    finite = np.isfinite(v)
    empty = finite & (np.abs(v) < 1e-9)
    filled = finite & ~empty
    material = filled & (np.abs(v) >= 0.25 * typical[:, None])
    # Only for lines with a calendar: most postings recur in the same month of other years
    # (snow removal every winter), not lumpy lines posted in random months (capital works).
    recurs = np.zeros_like(filled)
    for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1):
        if k:
            recurs |= shift(filled.astype(np.float64), 12 * k) == 1
    n_filled = filled.sum(axis=1)
    # A calendar line: every posting but at most one in ten (the misplaced ones) recurs in the same
    # month of another year.
    stray = (filled & ~recurs).sum(axis=1)
    calendar_line = (n_filled >= 6) & (stray <= np.maximum(2, 0.25 * n_filled))
    out = material & calendar_line[:, None]
    for month_offset in (-1, 0, 1):
        others_empty = np.zeros_like(empty, dtype=np.int64)
        others_filled = np.zeros_like(empty, dtype=np.int64)
        for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1):
            if k == 0:
                continue
            offset = 12 * k + month_offset
            others_empty += shift(empty.astype(np.float64), offset) == 1
            others_filled += shift(filled.astype(np.float64), offset) == 1
        # The month itself must be empty in every other year (one is enough: a line with a single
        # earlier season); its neighbours in most other years (so that two misplaced postings in
        # adjacent months do not hide each other, and a late invoice just after the season, in a
        # month that is filled in the other year, is not flagged).
        ok = (others_empty >= 1) & (others_filled == 0) if month_offset == 0 else others_filled < others_empty
        # A month at the edge of the season is off-season only when the portfolio's other
        # properties are quiet that month as well (no early snowfall anywhere).
        if month_offset and peers_quiet is not None:
            ok |= peers_quiet
        out &= ok
    # ... and the line has a season: the calendar months it is posted in (in the other years) form
    # one contiguous block (snow removal December-March), not a quarterly or scattered pattern.
    n_s, n_t = v.shape
    month = np.arange(n_t) % 12
    this_month = month[None, :, None] == np.arange(12)
    by_month = np.zeros((n_s, 12))
    np.add.at(by_month.T, month, filled.T.astype(np.float64))
    others = by_month[:, None, :] - (filled[:, :, None] & this_month)
    present = np.zeros((n_s, 12))
    np.add.at(present.T, month, finite.T.astype(np.float64))
    others_present = present[:, None, :] - (finite[:, :, None] & this_month)
    # Regular months only (filled in most of the other years): one stray posting makes no season.
    posted = 2 * others > others_present
    starts = (posted & ~np.roll(posted, 1, axis=-1)).sum(axis=-1)
    out &= (starts == 1) & (posted.sum(axis=-1) <= 9)
    return out


def posted_every_year(v: FloatArray) -> BoolArray:
    """(S,T): the same calendar month holds a posting in every other year the line reports (at
    least one): a posting that is missing there is missing, not a quiet month."""
    finite = np.isfinite(v)
    filled = finite & (np.abs(np.nan_to_num(v)) > 1e-9)
    reported = np.zeros(v.shape, dtype=np.int64)
    posted = np.zeros(v.shape, dtype=np.int64)
    for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1):
        if k:
            reported += shift(finite.astype(np.float64), 12 * k) == 1
            posted += shift(filled.astype(np.float64), 12 * k) == 1
    return (reported >= 1) & (posted == reported)
