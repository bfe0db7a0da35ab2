"""Level shifts: the first month of a lasting new level, by three tests.

* flow lines: the local level before and after t (:func:`level_steps`), on seasonal lines in the
  year-over-year residual;
* persistent lines (balances, stocks): one change several times the usual one that holds
  (:func:`persistent_jumps`);
* noisy lines: a two-segment change-point test (:func:`change_points`).
"""

from __future__ import annotations

import numpy as np

from .arrays import (
    LOCAL_WINDOW,
    MAD_TO_SIGMA,
    SEASONAL_YEARS,
    SIGMA_FLOOR,
    nanmedian_last,
    row_nanmedian,
    shift,
    window,
)
from .table import BoolArray, FloatArray

# A new level must differ from the old one by at least this share to count as a level shift:
# annual rent escalations (2-5 %) and CPI steps are normal business.
LEVEL_SHIFT_MIN_CHANGE = 0.10
LEVEL_SHIFT_USUAL = 2.5
LEVEL_SHIFT_MIN_AFTER = 2  # points at the new level (including the first) to call it a level

# A persistent series (judged on its changes) has a level shift where one change is several times
# its usual non-zero change and the following months stay at the new level.
JUMP_MIN_AFTER = 2
MIN_PRIOR = 3


def persistent_jumps(
    y: FloatArray, scale_prev: FloatArray, use: BoolArray, one_signed: BoolArray
) -> tuple[FloatArray, FloatArray]:
    d = y - shift(y, 1)
    absd = np.abs(d)
    moving = np.isfinite(d) & (absd > 1e-9)
    usual = usual_lasting_move(y)  # the two halves of a spike are not the usual move
    scale = np.fmax(scale_prev, np.nan_to_num(usual, nan=0.0)[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = absd / scale
    # The new level holds: the next JUMP_MIN_AFTER months stay closer to it than to the old one.
    holds = np.ones_like(moving)
    for k in range(1, JUMP_MIN_AFTER + 1):
        after = shift(y, -k)
        holds &= np.isfinite(after) & (np.abs(after - y) < 0.5 * absd)
    before = shift(d, 1)
    quiet_before = ~(np.abs(np.nan_to_num(before)) > 0.5 * absd)
    material = ~one_signed[:, None] | (absd >= np.log1p(LEVEL_SHIFT_MIN_CHANGE))
    ok = moving & holds & quiet_before & material & use[:, None] & np.isfinite(z)
    return np.where(ok, z, 0.0), np.where(ok, np.exp(d), np.nan)


def level_steps(y: FloatArray, sigma: FloatArray, use: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Evidence that a sustained new level starts exactly at t (the first period at it).

    Works on the series with its usual monthly drift removed (an amortising balance or a growing
    cash line moves every month; that is a trend, not a level shift).  The step between the
    robust levels before and from t must be large against the noise *inside* both windows, t must
    sit at the new level and t-1 at the old one, so a single step gives a single finding.
    """
    # Long-run slope from the medians of the two halves: robust to a saw-tooth (retained
    # earnings that grow monthly and drop at each quarterly distribution).
    # The halves are those of the series' own span (not of the panel, whose width depends on
    # what else it holds).
    t_idx = np.arange(y.shape[1], dtype=np.float64)
    finite = np.isfinite(y)
    has = finite.any(axis=1)
    lo = np.where(has, np.argmax(finite, axis=1), 0)
    hi = np.where(has, y.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1), -1)
    in_first = t_idx[None, :] < (lo + np.maximum((hi - lo + 1) // 2, 1))[:, None]
    first, second = np.where(in_first, y, np.nan), np.where(in_first, np.nan, y)
    with np.errstate(invalid="ignore"):
        t_first = np.where(np.isfinite(first), t_idx[None, :], np.nan)
        t_second = np.where(np.isfinite(second), t_idx[None, :], np.nan)
        dt = nanmedian_last(t_second, 3) - nanmedian_last(t_first, 3)
        slope = (nanmedian_last(second, 3) - nanmedian_last(first, 3)) / dt
    slope = np.where(np.isfinite(slope), slope, 0.0)
    yd = y - slope[:, None] * np.arange(y.shape[1])[None, :]
    win_before = window(yd, range(1, LOCAL_WINDOW + 1))
    win_after = window(yd, range(0, -LOCAL_WINDOW, -1))
    before = nanmedian_last(win_before, 2)
    after = nanmedian_last(win_after, LEVEL_SHIFT_MIN_AFTER)
    spread_before = MAD_TO_SIGMA * nanmedian_last(np.abs(win_before - before[..., None]), 2)
    spread_after = MAD_TO_SIGMA * nanmedian_last(np.abs(win_after - after[..., None]), LEVEL_SHIFT_MIN_AFTER)
    noise = np.fmax(np.fmax(spread_before, spread_after), sigma[:, None])
    noise = np.where(np.isfinite(noise), np.maximum(noise, SIGMA_FLOOR), np.nan)
    step = after - before
    # Noise of the difference of two window medians (1.25 = efficiency of the median).
    n_before = np.sum(np.isfinite(win_before), axis=-1)
    n_after = np.sum(np.isfinite(win_after), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        level_noise = 1.25 * noise * np.sqrt(1.0 / n_before + 1.0 / n_after)
        z = np.abs(step) / level_noise
    prev = shift(yd, 1)
    at_new = np.abs(yd - after) < np.abs(yd - before)
    prev_old = np.abs(prev - before) < np.abs(prev - after)
    # On the asinh scale a step of 0.1 is ~10 % for ordinary amounts.
    material = np.abs(step) >= np.log1p(LEVEL_SHIFT_MIN_CHANGE)
    # ... and several times the series' usual non-zero month-to-month change (occupancy moving
    # by a unit, a rent escalation): a step of the usual kind is business as usual.
    usual = usual_lasting_move(y)
    material &= np.abs(step) >= LEVEL_SHIFT_USUAL * np.nan_to_num(usual, nan=0.0)[:, None]
    ok = at_new & prev_old & material & np.isfinite(z) & use[:, None]
    ratio = np.exp(step)
    return np.where(ok, z, 0.0), np.where(ok, ratio, np.nan)


# Change-point test (all non-intermittent series, stocks included): for each candidate period t
# the history is split into the segment before t and the segment from t; each gets its own robust
# level (median) and the noise is the pooled robust spread *inside* the two segments, so a lasting
# shift does not inflate its own yardstick.  Seasonal lines are compared with their calendar
# profile removed (each month's from the other years, around their own segment's level); a steady
# monthly drift (an amortising balance) is removed first.  Only the first period of a material,
# abrupt step between two stationary levels qualifies: a random walk (a cash balance) or a drift
# spreads far wider inside its segments than its monthly moves imply and never passes.
CHANGE_POINT_EFFECT = 4.0  # step / pooled within-segment sigma
CHANGE_POINT_MIN_BEFORE = 3  # = MIN_PRIOR
CHANGE_POINT_MIN_AFTER = 3
# Spread inside the segments at most this multiple of the spread implied by the monthly moves
# (1 for independent noise around a level; ~3.5 for a random walk over two years).
CHANGE_POINT_STATIONARY = 2.0
CHANGE_POINT_ITERATIONS = 3


def change_points(y: FloatArray, use: BoolArray, seasonal: BoolArray) -> tuple[FloatArray, FloatArray]:
    """(S,T) evidence (z of the step between the two segment levels) that a new level starts at
    t, and the abrupt step at t (asinh scale); 0 / NaN where t is not such a change point."""
    n_s, n_t = y.shape
    z_out = np.zeros((n_s, n_t))
    step_out = np.full((n_s, n_t), np.nan)
    eff_out = np.zeros((n_s, n_t))
    if n_s == 0 or n_t < CHANGE_POINT_MIN_BEFORE + CHANGE_POINT_MIN_AFTER:
        return z_out, step_out
    # Steady drift: the median monthly change (a single step is one change among many).
    d = y - shift(y, 1)
    drift = np.where(seasonal, 0.0, np.nan_to_num(row_nanmedian(d)))
    yd = y - drift[:, None] * np.arange(n_t)[None, :]
    years = [12 * k for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1) if k]
    finite = np.isfinite(yd)
    # Candidates: an abrupt move at t on the series with a rough (whole-history) calendar profile
    # removed; only they get the full two-segment test.
    rough = nanmedian_last(window(yd - row_nanmedian(yd)[:, None], years))
    r0 = np.where(seasonal[:, None], yd - np.nan_to_num(rough), yd)
    local0 = nanmedian_last(window(r0, range(0, -3, -1))) - nanmedian_last(window(r0, range(1, 4)))
    nb_all = np.cumsum(finite, axis=1) - finite
    na_all = finite.sum(axis=1, keepdims=True) - nb_all
    cand = use[:, None] & finite & (nb_all >= CHANGE_POINT_MIN_BEFORE) & (na_all >= CHANGE_POINT_MIN_AFTER)
    cand &= np.abs(np.nan_to_num(local0)) >= 0.5 * np.log1p(LEVEL_SHIFT_MIN_CHANGE)
    s_idx, t_idx = np.nonzero(cand)
    if len(s_idx) == 0:
        return z_out, step_out
    # One row per (series, candidate t): the segment before t and the segment from t.
    month = np.arange(n_t)[None, :]
    t_col = t_idx[:, None]
    before = month < t_col
    near_b = before & (month >= t_col - 3)
    near_a = ~before & (month < t_col + 3)
    raw = yd[s_idx]
    nb = nb_all[s_idx, t_idx].astype(np.float64)
    na = na_all[s_idx, t_idx].astype(np.float64)

    def levels(r: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        b = row_nanmedian(np.where(before, r, np.nan))
        a = row_nanmedian(np.where(before, np.nan, r))
        return b, a, np.where(before, b[:, None], a[:, None])

    r = raw
    b, a, lev = levels(r)
    sea = seasonal[s_idx]
    inflation = np.ones(len(s_idx))
    if sea.any():
        # Calendar profile of each month from the *other* years only (leave-one-out), so a month's
        # own value never flattens its residual; levels and profile are refined in turn (segments
        # that are not whole years bias the first levels of a seasonal line).  The profile is a
        # median of k other years: it adds (pi / 2) / k of the noise variance to each residual,
        # which is taken back out of the spread below.
        k_other = np.isfinite(window(yd, years)).sum(axis=-1)
        counted = finite & (k_other > 0)
        k_mean = np.where(counted, k_other, 0).sum(axis=1) / np.maximum(counted.sum(axis=1), 1)
        inflation = np.where(sea, np.sqrt(1.0 + 0.5 * np.pi / np.fmax(k_mean[s_idx], 1.0)), 1.0)
        for _ in range(CHANGE_POINT_ITERATIONS):
            prof = nanmedian_last(window(raw - lev, years))
            r = np.where(sea[:, None], raw - np.nan_to_num(prof), raw)
            b, a, lev = levels(r)
    dev = np.abs(r - lev)
    sb = MAD_TO_SIGMA * row_nanmedian(np.where(before, dev, np.nan))
    sa = MAD_TO_SIGMA * row_nanmedian(np.where(before, np.nan, dev))
    pooled = np.sqrt((nb * sb**2 + na * sa**2) / (nb + na))
    pooled = np.maximum(np.nan_to_num(pooled, nan=np.inf) / inflation, SIGMA_FLOOR)
    # The segments must be stationary levels: their spread is what the month-to-month noise
    # implies (a random walk or a drifting balance spreads far wider than its monthly moves).
    dr = np.abs(r - shift(r, 1))
    sigma_d = MAD_TO_SIGMA * row_nanmedian(np.where(month != t_col, dr, np.nan)) / np.sqrt(2.0)
    stationary = pooled <= CHANGE_POINT_STATIONARY * np.maximum(np.nan_to_num(sigma_d), SIGMA_FLOOR)
    step = a - b
    eff = np.abs(step) / pooled
    # The change is abrupt: the three months from t against the three before carry most of the
    # step (a drift or a run of small steps spreads it out).  Materiality is judged on it.
    local = row_nanmedian(np.where(near_a, r, np.nan)) - row_nanmedian(np.where(near_b, r, np.nan))
    abrupt = (local * step > 0) & (np.abs(local) >= 0.5 * np.abs(step))
    z = np.abs(step) / (1.25 * pooled * np.sqrt(1.0 / nb + 1.0 / na))
    # t sits at the new level, t-1 at the old one: the first period of the new level.
    rows = np.arange(len(s_idx))
    rt = r[rows, t_idx]
    rp = r[rows, t_idx - 1]
    ok = (np.abs(rt - a) < np.abs(rt - b)) & ~(np.abs(rp - a) < np.abs(rp - b))
    ok &= (eff >= CHANGE_POINT_EFFECT) & stationary & abrupt & np.isfinite(z)
    z_out[s_idx, t_idx] = np.where(ok, z, 0.0)
    eff_out[s_idx, t_idx] = np.where(ok, eff, 0.0)
    step_out[s_idx, t_idx] = local
    # One change point: the best split of its neighbourhood.
    best = np.ones((n_s, n_t), dtype=bool)
    for k in range(1, LOCAL_WINDOW + 1):
        for sgn in (k, -k):
            best &= eff_out >= np.nan_to_num(shift(eff_out, sgn), nan=0.0)
    z_out = np.where(best & (eff_out > 0), z_out, 0.0)
    return z_out, step_out


# A step recurs when a change of the same direction and at least this share of its size happens
# within a month of the same calendar month in another year.
RECURRING_STEP_SHARE = 0.5


def recurring_steps(y: FloatArray) -> BoolArray:
    """(S,T): the month-over-month change at t recurs around the same calendar month of every
    other year of the series (a season that starts or ends), not only by chance in one of them."""
    d = y - shift(y, 1)
    every = np.ones(y.shape, dtype=bool)
    seen = np.zeros(y.shape, dtype=bool)
    for years in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1):
        if not years:
            continue
        matched = np.zeros(y.shape, dtype=bool)
        available = np.zeros(y.shape, dtype=bool)
        for month in (-1, 0, 1):
            other = shift(d, 12 * years + month)
            available |= np.isfinite(other)
            with np.errstate(invalid="ignore"):
                matched |= np.isfinite(other) & (other * d > 0) & (np.abs(other) >= RECURRING_STEP_SHARE * np.abs(d))
        every &= matched | ~available
        seen |= available
    return every & seen


def usual_lasting_move(y: FloatArray) -> FloatArray:
    """(S,) the series' usual month-over-month move that lasts (occupancy moving by a unit, an
    escalation); a move the next month takes back (a payroll month with a third pay run) is no
    level and does not count.  0 with fewer than three such moves (a single move is the step)."""
    d = y - shift(y, 1)
    with np.errstate(invalid="ignore"):
        # Taken back by the next move, or taking back the previous one: the two halves of a spike.
        reverted = np.zeros(d.shape, dtype=bool)
        for k in (-1, 1):
            other = shift(d, k)
            reverted |= np.isfinite(other) & (np.abs(d + other) < 0.5 * np.abs(d))
    lasting = np.isfinite(d) & (np.abs(d) > 1e-9) & ~reverted
    usual = row_nanmedian(np.where(lasting, np.abs(d), np.nan))
    return np.where(lasting.sum(axis=1) >= 3, usual, 0.0)
