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

from .arrays import (
    LOCAL_WINDOW,
    MAD_TO_SIGMA,
    SEASONAL_YEARS,
    SIGMA_FLOOR,
    first_finite,
    nanmedian_last,
    robust_scale,
    row_nanmedian,
    shift,
    window,
)
from .levels import (
    LEVEL_SHIFT_MIN_CHANGE,
    LEVEL_SHIFT_USUAL,
    MIN_PRIOR,
    change_points,
    level_steps,
    persistent_jumps,
    recurring_steps,
)
from .peers import PeerStats
from .seasonal import off_season_postings, peers_quiet, posted_every_year
from .table import BoolArray, FloatArray, SeriesPanel

# A context family whose standardised residual exceeds FAIL_Z on more than FAMILY_FAIL_RATE of
# the history is dropped for that series when the other family fails less than
# FAMILY_DOMINANCE times as often; otherwise a point must disagree with both families.
FAIL_Z = 4.0
LOG_UNIT_SHARE = 0.02
FAMILY_FAIL_RATE = 0.05
FAMILY_DOMINANCE = 0.5
SCALE_DOMINANCE = 2.0


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
    quiet_empty: BoolArray = None  # type: ignore[assignment]  # (S,T) an empty month that is no news

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


def month_spread(r: FloatArray) -> FloatArray:
    """Spread of the same calendar month's residual in the other years (leave-one-year-out).

    An annual true-up or reconciliation makes one month irregular every year; that month is then
    judged with its own spread.  The residual of the month itself is left out, so an error is never
    part of its own yardstick.  Half the range of 2-3 values times 1.2 estimates a sigma.
    """
    stack = window(r, [12 * k for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1) if k])
    ok = np.isfinite(stack)
    count = ok.sum(axis=-1)
    hi = np.where(ok, stack, -np.inf).max(axis=-1)
    lo = np.where(ok, stack, np.inf).min(axis=-1)
    with np.errstate(invalid="ignore"):
        spread = 0.6 * (hi - lo)
    return np.where(count >= 2, spread, np.nan)


IRREGULAR_MONTH = 3.0
IRREGULAR_FACTOR = 2.0


def month_spread_size(r: FloatArray) -> FloatArray:
    """Smallest |residual| of the same calendar month in the other years (NaN below two years)."""
    stack = np.abs(window(r, [12 * k for k in range(-SEASONAL_YEARS, SEASONAL_YEARS + 1) if k]))
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
    typical = row_nanmedian(absval)
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
    preds["left"] = nanmedian_last(window(y, range(1, LOCAL_WINDOW + 1)), 2)
    preds["right"] = nanmedian_last(window(y, range(-1, -LOCAL_WINDOW - 1, -1)), 2)
    preds["centre"] = 0.5 * (preds["left"] + preds["right"])
    preds["season_left"] = nanmedian_last(window(y, [12 * k for k in range(1, SEASONAL_YEARS + 1)]), 1)
    preds["season_right"] = nanmedian_last(window(y, [-12 * k for k in range(1, SEASONAL_YEARS + 1)]), 1)
    preds["season_centre"] = 0.5 * (preds["season_left"] + preds["season_right"])
    preds["prev"] = shift(y, 1)
    preds["next"] = shift(y, -1)
    size_level = row_nanmedian(np.where(nonzero, np.abs(y), np.nan))
    preds["sizes"] = np.where(nonzero & intermittent[:, None], np.sign(y) * size_level[:, None], np.nan)

    # Cells where both the amount and its prediction are ~0 (a snow-removal line in July) say
    # nothing about the scale of real movements and would collapse the MAD to zero.
    resid = {k: y - p for k, p in preds.items()}
    sigmas: dict[str, FloatArray] = {}
    for k, p in preds.items():
        active = np.isfinite(resid[k]) & ((np.abs(y) > 0.05) | (np.abs(p) > 0.05))
        sigmas[k] = robust_scale(resid[k], active)

    # Each calendar month may carry its own spread (family-specific base residuals that never
    # include the month's own value, see _month_spread).
    local_base = first_finite(preds, ("centre", "left", "right"))
    spread_local = month_spread(y - local_base)
    spread_neighbour = month_spread(resid["prev"])
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
    off_season = off_season_postings(v, typical, peers_quiet(panel, peers))

    expected_y, expected_scale = _expected(preds, scales, use_local, use_seasonal, use_neighbour, use_sizes, fam_scale)
    expected = unit[:, None] * np.sinh(expected_y)
    point_z = _isolated(point_z, y_eval - expected_y)
    # A month that is irregular every year (an annual true-up, billed or refunded) varies by an
    # additive amount: judge it in amount units against the other years' deviations in that month.
    local_amount = unit[:, None] * np.sinh(local_base)
    v_eval = np.where(absent, 0.0, v)
    dev_lin = v_eval - local_amount
    dev_other = np.where(finite, v - local_amount, np.nan)
    spread_lin = month_spread(dev_other)
    # A month that departs from its local level in every other year is irregular: its deviations
    # themselves (few, so doubled) are the yardstick, not only their spread.
    size_other = month_spread_size(dev_other)
    sigma_lin = MAD_TO_SIGMA * row_nanmedian(np.abs(dev_other))
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
    # An empty month of a line that is often empty (instalments, concessions, true-ups, large
    # repairs) is news only where the same month was posted in every other year of the line.
    often_empty = zero_share >= INTERMITTENT_ZERO_SHARE
    empty_cell = absent | (finite & (v == 0))
    quiet_empty = empty_cell & often_empty[:, None] & ~posted_every_year(v)
    point_z = np.where(quiet_empty, np.fmin(point_z, 0.0), point_z)
    pattern = _patterns(v, unit, absent, preds, scales, use, point_z, expected_y)

    # Seasonal lines are read on their own level too: with two years of history a lasting shift
    # fills half of the year-over-year residuals and hides in their spread (a step that is only
    # the season recurring is dropped below).
    flow_steps = (use_local | use_seasonal) & ~use_neighbour & ~use_sizes
    step_local, ratio_local = level_steps(y, sigmas["centre"], flow_steps)
    # Seasonal lines: look for the step in the year-over-year residual (against earlier years,
    # and against later years for shifts in the first year).
    season_steps = use_seasonal & ~use_local & ~use_sizes
    step_sl, ratio_sl = level_steps(y - preds["season_left"], sigmas["season_left"], season_steps)
    step_sr, ratio_sr = level_steps(y - preds["season_right"], sigmas["season_right"], season_steps)
    step_nb, ratio_nb = persistent_jumps(y, scales["prev"], use_neighbour & ~use_sizes, usual_sign != 0)
    step_z = np.maximum(np.maximum(step_local, step_nb), np.maximum(step_sl, step_sr))
    # Lines that only move by discrete postings (a fixed-asset balance, a contractual amount) are
    # left to the step logic above: the change-point test is for lines that move every month,
    # where a lasting shift hides in the noise.
    d_all = np.abs(y - shift(y, 1))
    moves = np.isfinite(d_all) & (d_all > 1e-9)
    noisy = moves.sum(axis=1) >= 0.5 * np.maximum(np.isfinite(d_all).sum(axis=1), 1)
    cp_z, cp_step = change_points(y, ~use_sizes & noisy & (n_observed >= 2 * MIN_PRIOR), use_seasonal)
    cp_material = np.abs(np.nan_to_num(cp_step)) >= np.log1p(LEVEL_SHIFT_MIN_CHANGE)
    usual_move = np.where(moves.sum(axis=1) >= 3, row_nanmedian(np.where(moves, d_all, np.nan)), 0.0)
    cp_material &= np.abs(np.nan_to_num(cp_step)) >= LEVEL_SHIFT_USUAL * np.nan_to_num(usual_move)[:, None]
    cp_z = np.where(cp_material & (usual_sign != 0)[:, None], cp_z, 0.0)
    new_cp = cp_z > step_z
    step_z = np.maximum(step_z, cp_z)
    step_z = np.where(prior >= MIN_PRIOR, step_z, 0.0)
    # A step that recurs at the same time of another year (a season that starts or ends) is the
    # line's calendar, not a lasting new level.
    stepped = np.flatnonzero((step_z > 0).any(axis=1))  # only series with a step to judge
    if len(stepped):
        step_z[stepped] = np.where(recurring_steps(y[stepped]), 0.0, step_z[stepped])
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
        quiet_empty=quiet_empty,
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
        zn = shift(z, k)
        dn = np.nan_to_num(shift(d, k))
        run = (zn >= RUN_Z) & (d * dn > 0) & (np.abs(d - dn) < RUN_SIMILARITY * np.abs(d))
        out = np.where(run, np.minimum(out, RUN_Z), out)
    return out


def _patterns(
    v: FloatArray,
    unit: FloatArray,
    absent: BoolArray,
    preds: dict[str, FloatArray],
    scales: dict[str, FloatArray],
    use: BoolArray,
    point_z: FloatArray,
    expected_y: FloatArray,
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
        "local": (first_finite(preds, ("centre", "left", "right")), first_finite(scales, ("centre", "left", "right"))),
        "seasonal": (
            first_finite(preds, ("season_centre", "season_left", "season_right")),
            first_finite(scales, ("season_centre", "season_left", "season_right")),
        ),
        "neighbour": (
            first_finite(
                {"i": 0.5 * (preds["prev"] + preds["next"]), "p": preds["prev"], "n": preds["next"]}, ("i", "p", "n")
            ),
            first_finite(scales, ("prev", "next")),
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
