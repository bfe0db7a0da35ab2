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

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kernel.vocabulary import ERROR_SIGNATURES as PATTERN_FACTORS
from kernel.vocabulary import PATTERN_MISSING, PATTERN_NONE

from .peers import PeerStats
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
    """Panel-wide context predictions, residual scales, behaviour and point evidence."""

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
    use_neighbour: BoolArray = None  # type: ignore[assignment]  # (S,) judged on its changes (a stock)
    use_sizes: BoolArray = None  # type: ignore[assignment]  # (S,) intermittent: judged on non-zero sizes
    behaviour: npt.NDArray[np.object_] = None  # type: ignore[assignment]  # (S,) behaviour class name
    pattern: npt.NDArray[np.int8] = None  # type: ignore[assignment]  # (S,T) PATTERN_* code of an error signature
    expected_scale: FloatArray = None  # type: ignore[assignment]  # (S,T) scale of expected_y (asinh units)
    peers: PeerStats | None = None  # portfolio-wide peer evidence (None: none)

    def to_amount(self, y: FloatArray) -> FloatArray:
        return self.unit[:, None] * np.sinh(y)


LOCAL_PREDICTORS = ("left", "right", "centre")
SEASONAL_PREDICTORS = ("season_left", "season_right", "season_centre")
NEIGHBOUR_PREDICTORS = ("prev", "next")
SIZE_PREDICTORS = ("sizes",)
FAMILIES = {
    "local": LOCAL_PREDICTORS,
    "seasonal": SEASONAL_PREDICTORS,
    "neighbour": NEIGHBOUR_PREDICTORS,
    "sizes": SIZE_PREDICTORS,
}
# A line that is zero in at least this share of its months is intermittent (instalments, annual
# items, capital works): its non-zero months are judged against the sizes of the others.
INTERMITTENT_ZERO_SHARE = 0.3
# The neighbour family (previous / next month) is for persistent series (stocks, step series):
# on a series with independent monthly noise its residual scale is sqrt(2) times the local one,
# so it is kept only when it is not clearly worse than the best other family.
NEIGHBOUR_DOMINANCE = 1.3
# Error signatures (kernel.vocabulary): the amount, with the error undone, fits its context again.
PATTERN_FIT_Z = 2.0  # the corrected amount must sit within 2 scales of the context


def _month_spread(r: FloatArray) -> FloatArray:
    """Spread of the same calendar month's residual in the other years (leave-one-year-out).

    An annual true-up or reconciliation makes one month irregular every year; that month is then
    judged with its own spread.  The residual of the month itself is left out, so an error is never
    part of its own yardstick.  Half the range of 2-3 values times 1.2 estimates a sigma.
    """
    stack = _window(r, [12 * k for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1) if k])
    ok = np.isfinite(stack)
    count = ok.sum(axis=-1)
    hi = np.where(ok, stack, -np.inf).max(axis=-1)
    lo = np.where(ok, stack, np.inf).min(axis=-1)
    with np.errstate(invalid="ignore"):
        spread = 0.6 * (hi - lo)
    return np.where(count >= 2, spread, np.nan)


IRREGULAR_MONTH = 3.0
IRREGULAR_FACTOR = 2.0


def _month_spread_size(r: FloatArray) -> FloatArray:
    """Smallest |residual| of the same calendar month in the other years (NaN below two years)."""
    stack = np.abs(_window(r, [12 * k for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1) if k]))
    ok = np.isfinite(stack)
    low = np.where(ok, stack, np.inf).min(axis=-1)
    return np.where(ok.sum(axis=-1) >= 2, low, np.nan)


def compute_context(panel: SeriesPanel, peers: PeerStats | None = None) -> SeriesContext:
    """Behaviour, context predictions, standardised residuals and error signatures per cell.

    Everything is computed per series from its own history, except the peer evidence, which
    comes from ``peers`` (portfolio-wide, see :mod:`.peers`) and never from the other series
    of the panel: a series' result does not depend on what else the panel holds.
    """
    v = panel.values
    n_series, n_periods = v.shape
    finite = np.isfinite(v)
    nonzero = finite & (v != 0)
    absval = np.where(nonzero, np.abs(v), np.nan)
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
    n_nonzero = nonzero.sum(axis=1)
    zero_share = 1.0 - n_nonzero / np.maximum(n_observed, 1.0)
    intermittent = (zero_share >= INTERMITTENT_ZERO_SHARE) & (n_nonzero >= 4)

    preds: dict[str, FloatArray] = {}
    preds["left"] = nanmedian_last(_window(y, range(1, LOCAL_WINDOW + 1)), 2)
    preds["right"] = nanmedian_last(_window(y, range(-1, -LOCAL_WINDOW - 1, -1)), 2)
    preds["centre"] = 0.5 * (preds["left"] + preds["right"])
    preds["season_left"] = nanmedian_last(_window(y, [12 * k for k in range(1, SEASONAL_YEARS + 1)]), 1)
    preds["season_right"] = nanmedian_last(_window(y, [-12 * k for k in range(1, SEASONAL_YEARS + 1)]), 1)
    preds["season_centre"] = 0.5 * (preds["season_left"] + preds["season_right"])
    preds["prev"] = _shift(y, 1)
    preds["next"] = _shift(y, -1)
    size_level = _row_nanmedian(np.where(nonzero, np.abs(y), np.nan))
    preds["sizes"] = np.where(nonzero & intermittent[:, None], np.sign(y) * size_level[:, None], np.nan)

    # Cells where both the amount and its prediction are ~0 (a snow-removal line in July) say
    # nothing about the scale of real movements and would collapse the MAD to zero.
    resid = {k: y - p for k, p in preds.items()}
    sigmas: dict[str, FloatArray] = {}
    for k, p in preds.items():
        active = np.isfinite(resid[k]) & ((np.abs(y) > 0.05) | (np.abs(p) > 0.05))
        sigmas[k] = _robust_scale(resid[k], active)

    # Each calendar month may carry its own spread (family-specific base residuals that never
    # include the month's own value, see _month_spread).
    local_base = _first_finite(preds, ("centre", "left", "right"))
    spread_local = _month_spread(y - local_base)
    spread_neighbour = _month_spread(resid["prev"])
    family_spread = {
        "local": spread_local,
        "seasonal": spread_local,
        "neighbour": spread_neighbour,
        "sizes": np.full_like(y, np.nan),
    }

    def cell_scale(k: str, fam: str) -> FloatArray:
        return np.fmax(sigmas[k][:, None], family_spread[fam])

    # Which context families describe this series?  A family that "fails" (z > FAIL_Z) on a
    # sizeable share of the history is systematically wrong for it: the local family on an
    # annual insurance line, the seasonal family on a line whose level moves, the local family
    # on a random-walking cash balance.  Real errors are rare, so a failure rate of a few percent
    # is a property of the series, not of its anomalies.
    absent = (panel.rows < 0) & panel.document_present
    y_eval = np.where(absent, 0.0, y)
    fit_z: dict[str, FloatArray] = {}
    errstate = np.errstate(divide="ignore", invalid="ignore")
    errstate.__enter__()
    eval_z: dict[str, FloatArray] = {}
    scales: dict[str, FloatArray] = {}
    for fam, names in FAMILIES.items():
        zf = np.full((n_series, n_periods), np.inf)
        ze = np.full((n_series, n_periods), np.inf)
        for k in names:
            sc = cell_scale(k, fam)
            scales[k] = sc
            zk = np.abs(resid[k]) / sc
            zf = np.where(np.isfinite(zk), np.minimum(zf, zk), zf)
            zk = np.abs(y_eval - preds[k]) / sc
            ze = np.where(np.isfinite(zk), np.minimum(ze, zk), ze)
        fit_z[fam] = np.where(np.isfinite(zf), zf, np.nan)
        eval_z[fam] = np.where(np.isfinite(ze), ze, np.nan)
    errstate.__exit__(None, None, None)
    fams = list(FAMILIES)
    fail = np.stack([_failure_rate(fit_z[f])[0] for f in fams], axis=1)
    count = np.stack([_failure_rate(fit_z[f])[1] for f in fams], axis=1)
    fam_scale = np.stack(
        [
            sigmas["centre"],
            np.fmin(sigmas["season_centre"], np.fmax(sigmas["season_left"], sigmas["season_right"])),
            sigmas["prev"],
            sigmas["sizes"],
        ],
        axis=1,
    )
    valid = (count >= 6) & np.isfinite(fam_scale)
    fail_v = np.where(valid, fail, np.inf)
    best_fail = fail_v.min(axis=1, keepdims=True)
    good = valid & ~((fail > FAMILY_FAIL_RATE) & (best_fail < FAMILY_DOMINANCE * fail))
    scale_g = np.where(good, fam_scale, np.inf)
    best_scale = scale_g.min(axis=1, keepdims=True)
    use = good & (fam_scale <= SCALE_DOMINANCE * best_scale)
    nb = fams.index("neighbour")
    others_best = np.delete(scale_g, nb, axis=1).min(axis=1)
    use[:, nb] &= fam_scale[:, nb] <= NEIGHBOUR_DOMINANCE * others_best
    # A series with no usable family yet falls back to the local one when it exists.
    none = ~use.any(axis=1)
    use[:, 0] |= none & valid[:, 0]
    use_local, use_seasonal, use_neighbour, use_sizes = (use[:, i] for i in range(4))
    strength = np.where(valid[:, 0] & valid[:, 1], (fail[:, 0] - fail[:, 1]) / np.maximum(fail[:, 0], 1e-9), 0.0)
    seasonal_strength = np.clip(np.nan_to_num(strength), 0.0, 1.0)
    behaviour = np.full(n_series, "flow", dtype=object)
    behaviour[use_seasonal & ~use_local] = "seasonal"
    behaviour[use_neighbour] = "stock"
    behaviour[use_sizes] = "intermittent"
    lo = np.min(np.where(finite, v, np.inf), axis=1, initial=np.inf)
    hi = np.max(np.where(finite, v, -np.inf), axis=1, initial=-np.inf)
    behaviour[(lo >= 0) & (hi <= 100) & (typical > 1) & use_neighbour] = "ratio"

    point_z = np.full((n_series, n_periods), np.inf)
    any_pred = np.zeros((n_series, n_periods), dtype=bool)
    for i, fam in enumerate(fams):
        z = eval_z[fam]
        ok = np.isfinite(z) & use[:, i][:, None]
        point_z = np.where(ok, np.minimum(point_z, z), point_z)
        any_pred |= ok
    point_z = np.where(any_pred & np.isfinite(y_eval), point_z, np.nan)
    off_season = _off_season_postings(v, typical, _peers_quiet(panel, peers))

    expected_y, expected_scale = _expected(preds, scales, use_local, use_seasonal, use_neighbour, use_sizes, fam_scale)
    expected = unit[:, None] * np.sinh(expected_y)
    point_z = _isolated(point_z, y_eval - expected_y)
    # A month that is irregular every year (an annual true-up, billed or refunded) varies by an
    # additive amount: judge it in amount units against the other years' deviations in that month.
    local_amount = unit[:, None] * np.sinh(local_base)
    v_eval = np.where(absent, 0.0, v)
    dev_lin = v_eval - local_amount
    dev_other = np.where(finite, v - local_amount, np.nan)
    spread_lin = _month_spread(dev_other)
    # A month that departs from its local level in every other year is irregular: its deviations
    # themselves (few, so doubled) are the yardstick, not only their spread.
    size_other = _month_spread_size(dev_other)
    sigma_lin = MAD_TO_SIGMA * _row_nanmedian(np.abs(dev_other))
    irregular = size_other > IRREGULAR_MONTH * np.maximum(sigma_lin, SIGMA_FLOOR * typical)[:, None]
    spread_lin = np.where(irregular, np.fmax(spread_lin, IRREGULAR_FACTOR * size_other), spread_lin)
    floor_lin = SIGMA_FLOOR * typical[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        z_lin = np.abs(dev_lin) / np.fmax(spread_lin, floor_lin)
    point_z = np.where(np.isfinite(z_lin) & np.isfinite(point_z), np.minimum(point_z, z_lin), point_z)
    # A month is judged once its series has MIN_PRIOR earlier observations: the opening months
    # are what the history starts from (opening balances, first changes), not deviations from it.
    prior = np.cumsum(finite, axis=1) - finite
    point_z = np.where(prior >= MIN_PRIOR, point_z, np.nan)
    pattern = _patterns(v, unit, absent, preds, scales, use, point_z, expected_y, usual_sign, typical)

    flow_steps = use_local & ~use_neighbour & ~use_sizes
    step_local, ratio_local = _level_steps(y, sigmas["centre"], flow_steps)
    # Seasonal lines: look for the step in the year-over-year residual (against earlier years,
    # and against later years for shifts in the first year).
    season_steps = use_seasonal & ~use_local & ~use_sizes
    step_sl, ratio_sl = _level_steps(y - preds["season_left"], sigmas["season_left"], season_steps)
    step_sr, ratio_sr = _level_steps(y - preds["season_right"], sigmas["season_right"], season_steps)
    step_nb, ratio_nb = _persistent_jumps(y, scales["prev"], use_neighbour & ~use_sizes, usual_sign != 0)
    step_z = np.maximum(np.maximum(step_local, step_nb), np.maximum(step_sl, step_sr))
    # Lines that only move by discrete postings (a fixed-asset balance, a contractual amount) are
    # left to the step logic above: the change-point test is for lines that move every month,
    # where a lasting shift hides in the noise.
    d_all = np.abs(y - _shift(y, 1))
    moves = np.isfinite(d_all) & (d_all > 1e-9)
    noisy = moves.sum(axis=1) >= 0.5 * np.maximum(np.isfinite(d_all).sum(axis=1), 1)
    cp_z, cp_step = _change_points(y, ~use_sizes & noisy & (n_observed >= 2 * MIN_PRIOR), use_seasonal)
    cp_material = np.abs(np.nan_to_num(cp_step)) >= np.log1p(LEVEL_SHIFT_MIN_CHANGE)
    usual_move = np.where(moves.sum(axis=1) >= 3, _row_nanmedian(np.where(moves, d_all, np.nan)), 0.0)
    cp_material &= np.abs(np.nan_to_num(cp_step)) >= LEVEL_SHIFT_USUAL * np.nan_to_num(usual_move)[:, None]
    cp_z = np.where(cp_material & (usual_sign != 0)[:, None], cp_z, 0.0)
    new_cp = cp_z > step_z
    step_z = np.maximum(step_z, cp_z)
    step_z = np.where(prior >= MIN_PRIOR, step_z, 0.0)
    step_ratio = np.where(step_local > 0, ratio_local, np.where(step_sl >= step_sr, ratio_sl, ratio_sr))
    step_ratio = np.where(step_nb > 0, ratio_nb, step_ratio)
    step_ratio = np.where(new_cp, np.exp(np.nan_to_num(cp_step)), step_ratio)
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
        use_neighbour=use_neighbour,
        use_sizes=use_sizes,
        behaviour=behaviour,
        pattern=pattern,
        expected_scale=expected_scale,
        peers=peers,
    )


# A point deviation that its neighbour month shares (same direction, similar size) is a level
# that lasted, not a one-off: it is left to the level-shift logic.
RUN_SIMILARITY = 0.5
RUN_Z = 3.0


def _isolated(point_z: FloatArray, dev: FloatArray) -> FloatArray:
    """Point evidence only for deviations that revert: cap cells that form a run with a neighbour."""
    z = np.nan_to_num(point_z)
    d = np.nan_to_num(dev)
    out = point_z.copy()
    for k in (1, -1):
        zn = _shift(z, k)
        dn = np.nan_to_num(_shift(d, k))
        run = (zn >= RUN_Z) & (d * dn > 0) & (np.abs(d - dn) < RUN_SIMILARITY * np.abs(d))
        out = np.where(run, np.minimum(out, RUN_Z), out)
    return out


# A persistent series (judged on its changes) has a level shift where one change is several times
# its usual non-zero change and the following months stay at the new level.
JUMP_MIN_AFTER = 2
MIN_PRIOR = 3


def _persistent_jumps(
    y: FloatArray, scale_prev: FloatArray, use: BoolArray, one_signed: BoolArray
) -> tuple[FloatArray, FloatArray]:
    d = y - _shift(y, 1)
    absd = np.abs(d)
    moving = np.isfinite(d) & (absd > 1e-9)
    usual = _row_nanmedian(np.where(moving, absd, np.nan))
    usual = np.where(moving.sum(axis=1) >= 3, usual, 0.0)  # a single move is the jump itself
    scale = np.fmax(scale_prev, np.nan_to_num(usual, nan=0.0)[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = absd / scale
    # The new level holds: the next JUMP_MIN_AFTER months stay closer to it than to the old one.
    holds = np.ones_like(moving)
    for k in range(1, JUMP_MIN_AFTER + 1):
        after = _shift(y, -k)
        holds &= np.isfinite(after) & (np.abs(after - y) < 0.5 * absd)
    before = _shift(d, 1)
    quiet_before = ~(np.abs(np.nan_to_num(before)) > 0.5 * absd)
    material = ~one_signed[:, None] | (absd >= np.log1p(LEVEL_SHIFT_MIN_CHANGE))
    ok = moving & holds & quiet_before & material & use[:, None] & np.isfinite(z)
    return np.where(ok, z, 0.0), np.where(ok, np.exp(d), np.nan)


def _patterns(
    v: FloatArray,
    unit: FloatArray,
    absent: BoolArray,
    preds: dict[str, FloatArray],
    scales: dict[str, FloatArray],
    use: BoolArray,
    point_z: FloatArray,
    expected_y: FloatArray,
    usual_sign: FloatArray,
    typical: FloatArray,
) -> npt.NDArray[np.int8]:
    """Error signature per cell: undoing a keying error (x10, x100, /100, sign, x2) makes the
    amount fit its context again, or the amount is 0 / absent where the context is not."""
    out = np.zeros(v.shape, dtype=np.int8)
    names = [(k, i) for i, fam in enumerate(FAMILIES) for k in FAMILIES[fam]]
    best = np.full(v.shape, np.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for factor, code in PATTERN_FACTORS:
            yf = np.arcsinh(v / factor / unit[:, None])
            zf = np.full(v.shape, np.inf)
            for k, i in names:
                z = np.abs(yf - preds[k]) / scales[k]
                ok = np.isfinite(z) & use[:, i][:, None]
                zf = np.where(ok, np.minimum(zf, z), zf)
            better = (zf <= PATTERN_FIT_Z) & (zf < best)
            out = np.where(better, np.int8(code), out)
            best = np.where(better, zf, best)
    zero = (absent | (np.isfinite(v) & (v == 0))) & (np.abs(np.nan_to_num(expected_y)) > 1.0)
    out = np.where(zero, np.int8(PATTERN_MISSING), out)
    # Only a real deviation can carry a signature.
    return np.where(np.nan_to_num(point_z) > 0, out, np.int8(PATTERN_NONE)).astype(np.int8)


MIN_QUIET_PEERS = 3


def _peers_quiet(panel: SeriesPanel, peers: PeerStats | None) -> BoolArray | None:
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


def _off_season_postings(v: FloatArray, typical: FloatArray, peers_quiet: BoolArray | None = None) -> BoolArray:
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
            shift = 12 * k + month_offset
            others_empty += _shift(empty.astype(np.float64), shift) == 1
            others_filled += _shift(filled.astype(np.float64), shift) == 1
        # The month itself must be empty in every other year; its neighbours in all but one
        # (so that two misplaced postings in adjacent months do not hide each other).
        allowed_filled = 0 if month_offset == 0 else 1
        ok = (others_empty >= 2) & (others_filled <= allowed_filled)
        # A month at the edge of the season is off-season only when the portfolio's other
        # properties are quiet that month as well (no early snowfall anywhere).
        if month_offset and peers_quiet is not None:
            ok |= peers_quiet
        out &= ok
    # ... and the line has a season: the calendar months it is posted in (in the other years) form
    # one contiguous block (snow removal December-March), not a quarterly or scattered pattern.
    n_s, n_t = v.shape
    month = np.arange(n_t) % 12
    by_month = np.zeros((n_s, 12))
    np.add.at(by_month.T, month, filled.T.astype(np.float64))
    others = by_month[:, None, :] - (filled[:, :, None] & (month[None, :, None] == np.arange(12)))
    posted = others >= 2  # regular months only: one stray posting does not make a season
    starts = (posted & ~np.roll(posted, 1, axis=-1)).sum(axis=-1)
    out &= (starts == 1) & (posted.sum(axis=-1) <= 9)
    return out


def _failure_rate(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = np.sum(np.isfinite(z), axis=1).astype(np.float64)
    fails = np.sum(np.nan_to_num(z) > FAIL_Z, axis=1)
    return fails / np.maximum(n, 1.0), n


def _expected(
    preds: dict[str, FloatArray],
    scales: dict[str, FloatArray],
    use_local: BoolArray,
    use_seasonal: BoolArray,
    use_neighbour: BoolArray,
    use_sizes: BoolArray,
    fam_scale: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Best single expectation and its scale: the centred prediction of the best used family."""
    cands = {
        "local": (_first_finite(preds, ("centre", "left", "right")), _first_finite(scales, ("centre", "left", "right"))),
        "seasonal": (
            _first_finite(preds, ("season_centre", "season_left", "season_right")),
            _first_finite(scales, ("season_centre", "season_left", "season_right")),
        ),
        "neighbour": (
            _first_finite(
                {"i": 0.5 * (preds["prev"] + preds["next"]), "p": preds["prev"], "n": preds["next"]}, ("i", "p", "n")
            ),
            _first_finite(scales, ("prev", "next")),
        ),
        "sizes": (preds["sizes"], scales["sizes"]),
    }
    uses = {"local": use_local, "seasonal": use_seasonal, "neighbour": use_neighbour, "sizes": use_sizes}
    # The neighbour interpolation is the last resort: an outlier next door would pull it.
    rank_scale = fam_scale * np.array([1.0, 1.0, 2.0 * NEIGHBOUR_DOMINANCE, 1.0])
    order = np.argsort(np.where(np.stack(list(uses.values()), axis=1), rank_scale, np.inf), axis=1, kind="stable")
    names = list(cands)
    exp = np.full(preds["centre"].shape, np.nan)
    scl = np.full(preds["centre"].shape, np.nan)
    # Fill from the worst-ranked family to the best so that the best available one wins.
    for rank in range(len(names) - 1, -1, -1):
        for i, name in enumerate(names):
            sel = (order[:, rank] == i)[:, None]
            p, s = cands[name]
            ok = sel & np.isfinite(p)
            exp = np.where(ok, p, exp)
            scl = np.where(ok, s, scl)
    # Cells no family predicts fall back to any prediction (local first).
    for name in ("local", "seasonal", "neighbour"):
        p, s = cands[name]
        miss = ~np.isfinite(exp) & np.isfinite(p)
        exp = np.where(miss, p, exp)
        scl = np.where(miss, s, scl)
    return exp, scl


# A new level must differ from the old one by at least this share to count as a level shift:
# annual rent escalations (2-5 %) and CPI steps are normal business.
LEVEL_SHIFT_MIN_CHANGE = 0.10
LEVEL_SHIFT_USUAL = 2.5
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
    # ... and several times the series' usual non-zero month-to-month change (occupancy moving
    # by a unit, a rent escalation): a step of the usual kind is business as usual.
    d = np.abs(y - _shift(y, 1))
    moves = np.isfinite(d) & (d > 1e-9)
    usual = _row_nanmedian(np.where(moves, d, np.nan))
    usual = np.where(moves.sum(axis=1) >= 3, usual, 0.0)  # a single move is the step itself
    material &= np.abs(step) >= LEVEL_SHIFT_USUAL * np.nan_to_num(usual, nan=0.0)[:, None]
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
# Part of every model cache key (detection.provider): bump it when a feature's formula changes, so
# that models fitted on the old features are no longer served.
FEATURE_VERSION = "1"


class AnomalyFeatureEngineer:
    """Computes the feature tensor of DESIGN.md §1 for every series of a table at once."""

    feature_names: tuple[str, ...] = FEATURE_NAMES

    def transform_table(self, table: LineTable, peers: PeerStats | None = None) -> tuple[SeriesContext, FeatureSet]:
        """Context and features of a table; ``peers`` default to the table's own (the table is the
        portfolio)."""
        panel = build_panel(table)
        ctx = compute_context(panel, peers if peers is not None else PeerStats.from_table(table))
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


# Smallest peer spread of the scale-free level (amount / the property's usual magnitude).
PEER_LEVEL_FLOOR = 0.05
MIN_PEERS = 4


def peer_robust_z(panel: SeriesPanel, ctx: SeriesContext, share: FloatArray) -> FloatArray:
    """Robust z of a cell against the same account and period across the portfolio.

    Properties differ in size, so the compared quantity is scale-free: the amount over the
    property's own usual magnitude on that account, against the portfolio's median and MAD of
    the same ratio that month (:class:`~.peers.PeerStats`).  This tells a portfolio-wide
    movement (a cold winter raises every utilities line) from a single property's error.
    """
    del share  # kept in the signature: the share is the peer quantity on income lines later
    peers = ctx.peers
    if peers is None or panel.n_series == 0:
        return np.zeros(panel.values.shape)
    groups = peers.group_of(panel.document_types, panel.account_codes)
    med = peers.cells(groups, panel.period0, panel.n_periods, peers.level_median, np.nan)
    mad = peers.cells(groups, panel.period0, panel.n_periods, peers.level_mad, np.nan)
    reporting = peers.cells(groups, panel.period0, panel.n_periods, peers.n_reporting, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = panel.values / ctx.typical[:, None]
        z = (level - med) / np.fmax(mad, PEER_LEVEL_FLOOR)
    return np.where((reporting >= MIN_PEERS) & np.isfinite(z), z, 0.0)


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


def _change_points(y: FloatArray, use: BoolArray, seasonal: BoolArray) -> tuple[FloatArray, FloatArray]:
    """(S,T) evidence (z of the step between the two segment levels) that a new level starts at
    t, and the abrupt step at t (asinh scale); 0 / NaN where t is not such a change point."""
    n_s, n_t = y.shape
    z_out = np.zeros((n_s, n_t))
    step_out = np.full((n_s, n_t), np.nan)
    eff_out = np.zeros((n_s, n_t))
    if n_s == 0 or n_t < CHANGE_POINT_MIN_BEFORE + CHANGE_POINT_MIN_AFTER:
        return z_out, step_out
    # Steady drift: the median monthly change (a single step is one change among many).
    d = y - _shift(y, 1)
    drift = np.where(seasonal, 0.0, np.nan_to_num(_row_nanmedian(d)))
    yd = y - drift[:, None] * np.arange(n_t)[None, :]
    years = [12 * k for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1) if k]
    finite = np.isfinite(yd)
    # Candidates: an abrupt move at t on the series with a rough (whole-history) calendar profile
    # removed; only they get the full two-segment test.
    rough = nanmedian_last(_window(yd - _row_nanmedian(yd)[:, None], years))
    r0 = np.where(seasonal[:, None], yd - np.nan_to_num(rough), yd)
    local0 = nanmedian_last(_window(r0, range(0, -3, -1))) - nanmedian_last(_window(r0, range(1, 4)))
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
        b = _row_nanmedian(np.where(before, r, np.nan))
        a = _row_nanmedian(np.where(before, np.nan, r))
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
        k_other = np.isfinite(_window(yd, years)).sum(axis=-1)
        counted = finite & (k_other > 0)
        k_mean = np.where(counted, k_other, 0).sum(axis=1) / np.maximum(counted.sum(axis=1), 1)
        inflation = np.where(sea, np.sqrt(1.0 + 0.5 * np.pi / np.fmax(k_mean[s_idx], 1.0)), 1.0)
        for _ in range(CHANGE_POINT_ITERATIONS):
            prof = nanmedian_last(_window(raw - lev, years))
            r = np.where(sea[:, None], raw - np.nan_to_num(prof), raw)
            b, a, lev = levels(r)
    dev = np.abs(r - lev)
    sb = MAD_TO_SIGMA * _row_nanmedian(np.where(before, dev, np.nan))
    sa = MAD_TO_SIGMA * _row_nanmedian(np.where(before, np.nan, dev))
    pooled = np.sqrt((nb * sb**2 + na * sa**2) / (nb + na))
    pooled = np.maximum(np.nan_to_num(pooled, nan=np.inf) / inflation, SIGMA_FLOOR)
    # The segments must be stationary levels: their spread is what the month-to-month noise
    # implies (a random walk or a drifting balance spreads far wider than its monthly moves).
    dr = np.abs(r - _shift(r, 1))
    sigma_d = MAD_TO_SIGMA * _row_nanmedian(np.where(month != t_col, dr, np.nan)) / np.sqrt(2.0)
    stationary = pooled <= CHANGE_POINT_STATIONARY * np.maximum(np.nan_to_num(sigma_d), SIGMA_FLOOR)
    step = a - b
    eff = np.abs(step) / pooled
    # The change is abrupt: the three months from t against the three before carry most of the
    # step (a drift or a run of small steps spreads it out).  Materiality is judged on it.
    local = _row_nanmedian(np.where(near_a, r, np.nan)) - _row_nanmedian(np.where(near_b, r, np.nan))
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
            best &= eff_out >= np.nan_to_num(_shift(eff_out, sgn), nan=0.0)
    z_out = np.where(best & (eff_out > 0), z_out, 0.0)
    return z_out, step_out
