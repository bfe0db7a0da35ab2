"""Per series and period features, computed for every series of the portfolio at once.

Everything works on the dense ``(series, period)`` panel of :mod:`.table`:

* amounts are moved to a signed-log scale ``asinh(x / u)`` with ``u`` a low quantile of the
  series' own magnitudes: relative (multiplicative) for ordinary amounts, linear near zero, so
  that zeros, sign flips and mixed-sign cash-flow lines stay finite;
* each cell gets *context predictions* from its own series, excluding itself: the previous six
  months (left), the next six months (right), their midpoint, and the same calendar month in
  earlier / later years (seasonal).  Using both sides is deliberate: detection runs over the
  history (backfill), and a step (rent escalation, new level) agrees with one of its sides while a
  point error agrees with none;
* residuals are standardised by the series' own robust residual scale (MAD), so a z of 5 means
  the same on a rent line and on a heavy-tailed repairs line.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .table import BoolArray, FloatArray, LineTable, SeriesPanel, build_panel

LOCAL_WINDOW = 6  # months each side for the local level
TRAILING_WINDOW = 12  # months for the trailing median/MAD distance
SEASONAL_YEARS = 3  # same calendar month up to three years away
MAD_TO_SIGMA = 1.4826
# Smallest residual scale on the asinh scale, ~1.5 % of the level: a perfectly constant series
# still needs a material change to look abnormal (an interest rate that resets is not a 100-sigma
# event).
SIGMA_FLOOR = 0.015
# A context family whose standardised residual exceeds FAIL_Z on more than FAMILY_FAIL_RATE of
# the history is dropped for that series when the other family fails less than
# FAMILY_DOMINANCE times as often; otherwise a point must disagree with both families.
FAIL_Z = 4.0
LOG_UNIT_SHARE = 0.02
FAMILY_FAIL_RATE = 0.05
FAMILY_DOMINANCE = 0.5
SCALE_DOMINANCE = 2.0


def _shift(a: FloatArray, k: int) -> FloatArray:
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


def _window(a: FloatArray, offsets: range | list[int]) -> FloatArray:
    return np.stack([_shift(a, k) for k in offsets], axis=-1)


def _row_nanmedian(a: FloatArray) -> FloatArray:
    return nanmedian_last(a, 1)


def _robust_scale(resid: FloatArray, active: BoolArray, floor: float = SIGMA_FLOOR) -> FloatArray:
    """Per-series MAD scale of residuals over active cells, floored."""
    r = np.where(active, np.abs(resid), np.nan)
    scale = MAD_TO_SIGMA * _row_nanmedian(r)
    return np.where(np.isfinite(scale), np.maximum(scale, floor), np.nan)


@dataclass(frozen=True)
class SeriesContext:
    """Panel-wide context predictions, residual scales and point evidence."""

    panel: SeriesPanel
    unit: FloatArray  # (S,) asinh unit u
    typical: FloatArray  # (S,) median |x| of nonzero values
    usual_sign: FloatArray  # (S,) +1 / -1 when >= 90 % of nonzero values share it, else 0
    n_observed: FloatArray  # (S,) number of finite amounts
    y: FloatArray  # (S,T) asinh(x/u)
    predictions: dict[str, FloatArray]  # name -> (S,T) prediction on the asinh scale
    sigmas: dict[str, FloatArray]  # name -> (S,) residual scale
    use_local: BoolArray  # (S,)
    use_seasonal: BoolArray  # (S,)
    seasonal_strength: FloatArray  # (S,) 1 - q_seasonal / q_local, clipped to [0, 1]
    point_z: FloatArray  # (S,T) min standardised residual over the series' context predictors
    expected_y: FloatArray  # (S,T) best context prediction (asinh scale)
    expected: FloatArray  # (S,T) the same in amount units
    step_z: FloatArray  # (S,T) evidence that a new level starts at t (0 elsewhere)
    off_season: BoolArray  # (S,T) a material posting where this calendar month is always empty
    step_ratio: FloatArray  # (S,T) new level / old level in amount units at a step

    def to_amount(self, y: FloatArray) -> FloatArray:
        return self.unit[:, None] * np.sinh(y)


LOCAL_PREDICTORS = ("left", "right", "centre")
SEASONAL_PREDICTORS = ("season_left", "season_right", "season_centre")


def compute_context(panel: SeriesPanel) -> SeriesContext:
    """Context predictions and standardised residuals for every cell of the panel."""
    v = panel.values
    n_series, n_periods = v.shape
    finite = np.isfinite(v)
    absval = np.where(finite & (v != 0), np.abs(v), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = _row_nanmedian(absval)
    typical = np.where(np.isfinite(typical), typical, 1.0)
    pos = np.sum(finite & (v > 0), axis=1)
    neg = np.sum(finite & (v < 0), axis=1)
    nz = np.maximum(pos + neg, 1)
    usual_sign = np.where(pos >= 0.9 * nz, 1.0, np.where(neg >= 0.9 * nz, -1.0, 0.0))
    usual_sign[(pos + neg) < 6] = 0.0
    # One-signed lines (rent, an expense) move multiplicatively: a unit of 2 % of the usual
    # magnitude makes the scale logarithmic over the whole range that matters, so /100, x10, 0
    # and a sign flip are all far away.  Lines that swing around zero (changes in receivables,
    # net cash flow) are compared nearly linearly up to their usual magnitude.
    unit = np.where(usual_sign != 0, LOG_UNIT_SHARE * typical, typical)
    unit = np.maximum(unit, 1e-9)
    y = np.arcsinh(v / unit[:, None])
    n_observed = finite.sum(axis=1).astype(np.float64)

    preds: dict[str, FloatArray] = {}
    preds["left"] = nanmedian_last(_window(y, range(1, LOCAL_WINDOW + 1)), 2)
    preds["right"] = nanmedian_last(_window(y, range(-1, -LOCAL_WINDOW - 1, -1)), 2)
    preds["centre"] = 0.5 * (preds["left"] + preds["right"])
    preds["season_left"] = nanmedian_last(_window(y, [12 * k for k in range(1, SEASONAL_YEARS + 1)]), 1)
    preds["season_right"] = nanmedian_last(_window(y, [-12 * k for k in range(1, SEASONAL_YEARS + 1)]), 1)
    preds["season_centre"] = 0.5 * (preds["season_left"] + preds["season_right"])

    # Cells where both the amount and its prediction are ~0 (a snow-removal line in July) say
    # nothing about the scale of real movements and would collapse the MAD to zero.
    resid = {k: y - p for k, p in preds.items()}
    sigmas: dict[str, FloatArray] = {}
    for k, p in preds.items():
        active = np.isfinite(resid[k]) & ((np.abs(y) > 0.05) | (np.abs(p) > 0.05))
        sigmas[k] = _robust_scale(resid[k], active)

    # Which context family describes this series?  A family that "fails" (z > FAIL_Z) on a
    # sizeable share of the history is systematically wrong for it: the local family on an
    # annual insurance line or on payroll with three pay runs twice a year, the seasonal family
    # on a line whose level moves.  Real errors are rare, so a failure rate of a few percent
    # is a property of the series, not of its anomalies.
    family_z: dict[str, FloatArray] = {}
    for fam, names in (("local", LOCAL_PREDICTORS), ("seasonal", SEASONAL_PREDICTORS)):
        z = np.full((n_series, n_periods), np.inf)
        for k in names:
            zk = np.abs(resid[k]) / sigmas[k][:, None]
            z = np.where(np.isfinite(zk), np.minimum(z, zk), z)
        family_z[fam] = np.where(np.isfinite(z), z, np.nan)
    fail_local, n_local = _failure_rate(family_z["local"])
    fail_season, n_season = _failure_rate(family_z["seasonal"])
    has_local = n_local >= 6
    has_season = n_season >= 6
    local_bad = has_local & (fail_local > FAMILY_FAIL_RATE)
    season_bad = has_season & (fail_season > FAMILY_FAIL_RATE)
    # ... and a family whose residual scale is several times the other's adds only noise.
    sig_local = sigmas["centre"]
    sig_season = np.fmin(sigmas["season_centre"], np.fmax(sigmas["season_left"], sigmas["season_right"]))
    season_worse = np.nan_to_num(sig_season) > SCALE_DOMINANCE * np.nan_to_num(sig_local, nan=np.inf)
    local_worse = np.nan_to_num(sig_local) > SCALE_DOMINANCE * np.nan_to_num(sig_season, nan=np.inf)
    # Failure rates decide first (a family that is systematically wrong goes), then scales.
    drop_local = has_season & local_bad & (fail_season < FAMILY_DOMINANCE * fail_local)
    drop_season = has_local & season_bad & (fail_local < FAMILY_DOMINANCE * fail_season)
    undecided = ~drop_local & ~drop_season & has_local & has_season
    drop_local |= undecided & local_worse
    drop_season |= undecided & season_worse
    use_seasonal = has_season & ~drop_season
    use_local = has_local & ~(drop_local & use_seasonal)
    strength = np.where(has_season & has_local, (fail_local - fail_season) / np.maximum(fail_local, 1e-9), 0.0)
    seasonal_strength = np.clip(np.nan_to_num(strength), 0.0, 1.0)

    # An absent line in a delivered document is evaluated as a zero posting.
    absent = (panel.rows < 0) & panel.document_present
    y_eval = np.where(absent, 0.0, y)
    point_z = np.full((n_series, n_periods), np.inf)
    any_pred = np.zeros((n_series, n_periods), dtype=bool)
    for names, use in ((LOCAL_PREDICTORS, use_local), (SEASONAL_PREDICTORS, use_seasonal)):
        for k in names:
            z = np.abs(y_eval - preds[k]) / sigmas[k][:, None]
            ok = np.isfinite(z) & use[:, None]
            point_z = np.where(ok, np.minimum(point_z, z), point_z)
            any_pred |= ok
    point_z = np.where(any_pred & np.isfinite(y_eval), point_z, np.nan)
    off_season = _off_season_postings(v, typical)

    expected_y = _expected(preds, use_local, use_seasonal)
    expected = unit[:, None] * np.sinh(expected_y)
    step_local, ratio_local = _level_steps(y, sigmas["centre"], use_local)
    # Seasonal lines: look for the step in the year-over-year residual (against earlier years,
    # and against later years for shifts in the first year).
    step_sl, ratio_sl = _level_steps(y - preds["season_left"], sigmas["season_left"], use_seasonal & ~use_local)
    step_sr, ratio_sr = _level_steps(y - preds["season_right"], sigmas["season_right"], use_seasonal & ~use_local)
    step_z = np.maximum(step_local, np.maximum(step_sl, step_sr))
    step_ratio = np.where(step_local > 0, ratio_local, np.where(step_sl >= step_sr, ratio_sl, ratio_sr))
    return SeriesContext(
        panel=panel,
        unit=unit,
        typical=typical,
        usual_sign=usual_sign,
        n_observed=n_observed,
        y=y,
        predictions=preds,
        sigmas=sigmas,
        use_local=use_local,
        use_seasonal=use_seasonal,
        seasonal_strength=seasonal_strength,
        point_z=point_z,
        expected_y=expected_y,
        expected=expected,
        step_z=step_z,
        off_season=off_season,
        step_ratio=step_ratio,
    )


def _off_season_postings(v: FloatArray, typical: FloatArray) -> BoolArray:
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
            recurs |= _shift(filled.astype(np.float64), 12 * k) == 1
    n_filled = filled.sum(axis=1)
    calendar_line = (n_filled >= 6) & ((filled & recurs).sum(axis=1) >= 0.7 * np.maximum(n_filled, 1))
    out = material & calendar_line[:, None]
    for month_offset in (-1, 0, 1):
        others_empty = np.zeros_like(empty, dtype=np.int64)
        others_filled = np.zeros_like(empty, dtype=np.int64)
        for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1):
            if k == 0:
                continue
            shift = 12 * k + month_offset
            others_empty += _shift(empty.astype(np.float64), shift) == 1
            others_filled += _shift(filled.astype(np.float64), shift) == 1
        # The month itself must be empty in every other year; its neighbours in all but one
        # (so that two misplaced postings in adjacent months do not hide each other).
        allowed_filled = 0 if month_offset == 0 else 1
        out &= (others_empty >= 2) & (others_filled <= allowed_filled)
    return out


def _failure_rate(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = np.sum(np.isfinite(z), axis=1).astype(np.float64)
    fails = np.sum(np.nan_to_num(z) > FAIL_Z, axis=1)
    return fails / np.maximum(n, 1.0), n


def _family_quality(
    resid: dict[str, FloatArray], preds: dict[str, FloatArray], names: tuple[str, ...], y: FloatArray
) -> FloatArray:
    """Median |residual| of the first predictor of the family that exists at each cell.

    Cells where the amount and the prediction are both ~0 are left out: a winter-only line is
    trivially "predicted" by its zero neighbours all summer, which says nothing.
    """
    r = np.full_like(y, np.nan)
    for k in reversed(names):
        active = (np.abs(y) > 0.05) | (np.abs(preds[k]) > 0.05)
        r = np.where(np.isfinite(resid[k]), np.where(active, np.abs(resid[k]), np.nan), r)
    out = _row_nanmedian(r)
    # Fewer than 6 residuals is no basis for choosing a family.
    out[np.sum(np.isfinite(r), axis=1) < 6] = np.nan
    return np.where(np.isfinite(out), np.maximum(out, SIGMA_FLOOR / 2), np.nan)


def _expected(preds: dict[str, FloatArray], use_local: BoolArray, use_seasonal: BoolArray) -> FloatArray:
    """Best single expectation: centred beats one-sided; seasonal when the series is seasonal."""
    loc = preds["centre"]
    loc = np.where(np.isfinite(loc), loc, preds["left"])
    loc = np.where(np.isfinite(loc), loc, preds["right"])
    sea = preds["season_centre"]
    sea = np.where(np.isfinite(sea), sea, preds["season_left"])
    sea = np.where(np.isfinite(sea), sea, preds["season_right"])
    prefer_season = (use_seasonal & ~use_local)[:, None]
    first = np.where(prefer_season, sea, loc)
    second = np.where(prefer_season, loc, sea)
    return np.where(np.isfinite(first), first, second)


# A new level must differ from the old one by at least this share to count as a level shift:
# annual rent escalations (2-5 %) and CPI steps are normal business.
LEVEL_SHIFT_MIN_CHANGE = 0.10
LEVEL_SHIFT_MIN_AFTER = 2  # points at the new level (including the first) to call it a level


def _level_steps(y: FloatArray, sigma: FloatArray, use: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Evidence that a sustained new level starts exactly at t (the first period at it).

    Works on the series with its usual monthly drift removed (an amortising balance or a growing
    cash line moves every month; that is a trend, not a level shift).  The step between the
    robust levels before and from t must be large against the noise *inside* both windows, t must
    sit at the new level and t-1 at the old one, so a single step gives a single finding.
    """
    # Long-run slope from the medians of the two halves: robust to a saw-tooth (retained
    # earnings that grow monthly and drop at each quarterly distribution).
    half = max(y.shape[1] // 2, 1)
    t_idx = np.arange(y.shape[1], dtype=np.float64)
    first, second = y[:, :half], y[:, half:]
    with np.errstate(invalid="ignore"):
        t_first = np.where(np.isfinite(first), t_idx[None, :half], np.nan)
        t_second = np.where(np.isfinite(second), t_idx[None, half:], np.nan)
        dt = nanmedian_last(t_second, 3) - nanmedian_last(t_first, 3)
        slope = (nanmedian_last(second, 3) - nanmedian_last(first, 3)) / dt
    slope = np.where(np.isfinite(slope), slope, 0.0)
    yd = y - slope[:, None] * np.arange(y.shape[1])[None, :]
    win_before = _window(yd, range(1, LOCAL_WINDOW + 1))
    win_after = _window(yd, range(0, -LOCAL_WINDOW, -1))
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
    prev = _shift(yd, 1)
    at_new = np.abs(yd - after) < np.abs(yd - before)
    prev_old = np.abs(prev - before) < np.abs(prev - after)
    # On the asinh scale a step of 0.1 is ~10 % for ordinary amounts.
    material = np.abs(step) >= np.log1p(LEVEL_SHIFT_MIN_CHANGE)
    ok = at_new & prev_old & material & np.isfinite(z) & use[:, None]
    ratio = np.exp(step)
    return np.where(ok, z, 0.0), np.where(ok, ratio, np.nan)


@dataclass(frozen=True)
class FeatureSet:
    """A (series, period, feature) tensor with its feature names."""

    values: FloatArray
    names: tuple[str, ...]

    def series_matrix(self, s: int, mask: BoolArray | None = None) -> FloatArray:
        x = self.values[s]
        return x if mask is None else x[mask]


FEATURE_NAMES = (
    "level",
    "log_magnitude",
    "change",
    "pct_change",
    "yoy_ratio",
    "trailing_robust_z",
    "seasonal_residual_z",
    "local_residual_z",
    "decimal_shift",
    "sign_mismatch",
    "revenue_share",
    "peer_z",
)


class AnomalyFeatureEngineer:
    """Computes the feature tensor of DESIGN.md §1 for every series of a table at once."""

    feature_names: tuple[str, ...] = FEATURE_NAMES

    def transform_table(self, table: LineTable) -> tuple[SeriesContext, FeatureSet]:
        panel = build_panel(table)
        ctx = compute_context(panel)
        return ctx, self.transform(ctx)

    def transform(self, ctx: SeriesContext) -> FeatureSet:
        panel = ctx.panel
        v = panel.values
        y = ctx.y
        n_s, n_t = v.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            prev = _shift(v, 1)
            change = v - prev
            pct = np.where(np.abs(prev) > 0, change / np.abs(prev), 0.0)
            yoy_base = _shift(v, 12)
            yoy = np.where(np.abs(yoy_base) > 0, v / yoy_base, 1.0)
            log_mag = np.sign(v) * np.log1p(np.abs(v))

            trail = _window(v, range(1, TRAILING_WINDOW + 1))
            t_med = nanmedian_last(trail, 3)
            t_mad = MAD_TO_SIGMA * nanmedian_last(np.abs(trail - t_med[..., None]), 3)
            t_scale = np.maximum(t_mad, 0.01 * np.abs(t_med) + 1e-9)
            trailing_z = (v - t_med) / t_scale

            seas_z = (y - _first_finite(ctx.predictions, SEASONAL_PREDICTORS)) / ctx.sigmas["season_centre"][:, None]
            loc_z = (y - _first_finite(ctx.predictions, LOCAL_PREDICTORS)) / ctx.sigmas["centre"][:, None]

            decimal = decimal_shift_closeness(v, ctx.expected)
            sign_mismatch = ((np.sign(v) * ctx.usual_sign[:, None]) < 0).astype(np.float64)
            share = revenue_share(panel)
            peer = peer_robust_z(panel, ctx, share)
        feats = np.stack(
            [y, log_mag, change, pct, yoy, trailing_z, seas_z, loc_z, decimal, sign_mismatch, share, peer],
            axis=-1,
        )
        feats = np.nan_to_num(feats, nan=0.0, posinf=1e6, neginf=-1e6)
        feats = np.clip(feats, -1e6, 1e6)
        assert feats.shape == (n_s, n_t, len(FEATURE_NAMES))
        return FeatureSet(values=feats, names=FEATURE_NAMES)


def _first_finite(preds: dict[str, FloatArray], names: tuple[str, ...]) -> FloatArray:
    out = preds[names[-1]]
    for k in reversed(names[:-1]):
        out = np.where(np.isfinite(preds[k]), preds[k], out)
    return out


def decimal_shift_closeness(v: FloatArray, expected: FloatArray) -> FloatArray:
    """How close |x / expected| is to a power of ten >= 10 (or <= 0.1): 1 exact, 0 far.

    log10 of the ratio near a nonzero integer is the signature of a misplaced decimal point.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log10(np.abs(v) / np.abs(expected))
        k = np.round(lr)
        dist = np.abs(lr - k)
    close = np.clip(1.0 - dist / 0.25, 0.0, 1.0)
    return np.where(np.isfinite(lr) & (np.abs(k) >= 1), close, 0.0)


def revenue_share(panel: SeriesPanel) -> FloatArray:
    """Amount / its document's revenue (non-total income lines coded 4xxx), 0 elsewhere."""
    v = np.nan_to_num(panel.values)
    is_income = panel.document_types == "income_statement"
    is_rev = is_income & np.array([str(c).startswith("4") for c in panel.account_codes], dtype=bool)
    n_docs = int(panel.document_ids.max()) + 1 if panel.n_series else 0
    revenue = np.zeros((n_docs, panel.n_periods))
    np.add.at(revenue, panel.document_ids[is_rev], v[is_rev])
    doc_rev = revenue[panel.document_ids]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(np.abs(doc_rev) > 0, panel.values / doc_rev, 0.0)
    return np.where(is_income[:, None], share, 0.0)


def peer_robust_z(panel: SeriesPanel, ctx: SeriesContext, share: FloatArray) -> FloatArray:
    """Robust z of a cell against the same account and period at the other properties.

    Properties differ in size, so the compared quantity is scale-free: the deviation from the
    series' own usual level (asinh scale).  This also tells a portfolio-wide movement (a cold
    winter raises every utilities line) from a single property's error.
    """
    del share  # kept in the signature: the share is the peer quantity on income lines later
    dev = ctx.y - ctx.expected_y
    keys, inverse = np.unique(panel.account_codes.astype(str), return_inverse=True)
    out = np.zeros_like(dev)
    for g in range(len(keys)):
        members = np.flatnonzero(inverse == g)
        if len(members) < 4:
            continue
        block = dev[members]
        med = nanmedian_last(block.T, 3)
        mad = MAD_TO_SIGMA * nanmedian_last(np.abs(block - med).T, 3)
        out[members] = (block - med) / np.maximum(mad, SIGMA_FLOOR)
    return np.nan_to_num(out)
