"""Vectorised operations on (series, period) panels shared by the context, level and season code.

Windows of a cell's own series (previous / next months, the same calendar month of other years)
are shifts of the whole panel, so every statistic is one array operation over the portfolio.
"""

from __future__ import annotations

import numpy as np

from .table import BoolArray, FloatArray

LOCAL_WINDOW = 6  # months each side for the local level
TRAILING_WINDOW = 12  # months for the trailing median/MAD distance
SEASONAL_YEARS = 3  # same calendar month up to three years away
MAD_TO_SIGMA = 1.4826
# Smallest residual scale on the asinh scale, ~1.5 % of the level: a perfectly constant series
# still needs a material change to look abnormal (an interest rate that resets is not a 100-sigma
# event).
SIGMA_FLOOR = 0.015


def shift(a: FloatArray, k: int) -> FloatArray:
    """out[:, t] = a[:, t - k] (NaN outside); k > 0 looks back, k < 0 looks ahead."""
    out = np.full_like(a, np.nan)
    if k == 0:
        return a.copy()
    if abs(k) >= a.shape[1]:
        return out
    if k > 0:
        out[:, k:] = a[:, :-k]
    else:
        out[:, :k] = a[:, -k:]
    return out


def nanmedian_last(stack: FloatArray, min_count: int = 1) -> FloatArray:
    """Median over the last axis ignoring NaN, NaN where fewer than ``min_count`` values.

    Sorting puts NaN last, so the median sits at the middle of the valid prefix; this avoids the
    all-NaN warnings and the per-slice overhead of np.nanmedian.
    """
    srt = np.sort(stack, axis=-1)
    count = np.sum(~np.isnan(stack), axis=-1)
    lo = np.clip((count - 1) // 2, 0, stack.shape[-1] - 1)
    hi = np.clip(count // 2, 0, stack.shape[-1] - 1)
    lo_v = np.take_along_axis(srt, lo[..., None], axis=-1)[..., 0]
    hi_v = np.take_along_axis(srt, hi[..., None], axis=-1)[..., 0]
    out = 0.5 * (lo_v + hi_v)
    out[count < max(min_count, 1)] = np.nan
    return out


def window(a: FloatArray, offsets: range | list[int]) -> FloatArray:
    return np.stack([shift(a, k) for k in offsets], axis=-1)


def row_nanmedian(a: FloatArray) -> FloatArray:
    return nanmedian_last(a, 1)


def robust_scale(resid: FloatArray, active: BoolArray, floor: float = SIGMA_FLOOR) -> FloatArray:
    """Per-series MAD scale of residuals over active cells, floored."""
    r = np.where(active, np.abs(resid), np.nan)
    scale = MAD_TO_SIGMA * row_nanmedian(r)
    return np.where(np.isfinite(scale), np.maximum(scale, floor), np.nan)


def first_finite(preds: dict[str, FloatArray], names: tuple[str, ...]) -> FloatArray:
    out = preds[names[-1]]
    for k in reversed(names[:-1]):
        out = np.where(np.isfinite(preds[k]), preds[k], out)
    return out
