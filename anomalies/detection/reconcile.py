"""Cross-statement reconciliation: accounting identities discovered from the data.

A property's documents are prepared from one ledger, so some quantities agree to the cent in
every month: the mortgage payable and the lender's principal balance, the change in a balance-
sheet account and its cash-flow line, net income on the income statement and on the cash flow,
a management fee that is a fixed share of revenue.  Which quantities agree is *discovered* per
property from its own history (no account list is hard-coded):

* quantities: every line's amount and its month-over-month change, every total's amount and
  change, and the signed combinations of a document's top-level blocks of lines (revenue minus
  expenses, ...), as learned by :mod:`.structure` (no account code is read);
* an identity is ``a = c * b`` (c constant per pair, usually +-1) that holds to the cent (plus a
  1e-4 relative rounding allowance) in at least 75 % of the informative months (months where
  one side is non-zero), over quantities that take at least four distinct values, between
  quantities that share no line (a total and its own lines agree by construction and prove
  nothing);
* the identities learned between a statement's totals (assets = liabilities + equity) are added.

A keying error hits one document, so it *breaks* each identity its line is part of, by exactly
its size ``D``.  The break is attributed to the line whose correction ``x - D / w`` either undoes
a keying signature exactly (x10, x100, /100, sign, x2, 0) or makes the line fit its own series
again.  Conversely, a line in a direct identity that holds in its month is *confirmed* by an
independently prepared document: an unusual amount there is a real event, not an error.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from kernel.vocabulary import ERROR_SIGNATURES as SIGNATURES
from kernel.vocabulary import PATTERN_MISSING, PATTERN_NONE

from .features import SeriesContext
from .structure import LearnedStatement, coverage
from .table import BoolArray, FloatArray

ABS_TOL = 0.03  # cents of rounding per side
REL_TOL = 1e-4
MIN_INFORMATIVE = 6
# Point-in-time documents: their lines are balances, whose monthly change is what the period
# statements (income statement, cash flow) report.
STOCK_DOCUMENTS = ("balance_sheet", "mortgage_statement", "rent_roll")
MIN_INFORMATIVE_LASTING = 12  # an identity that later breaks for good must first hold a year
MIN_HOLD_SHARE = 0.75
# A proportion other than +-1 (a fee that is a share of revenue) is a weaker a-priori link than
# an equality, so it must hold more often before it is believed.
MIN_HOLD_SHARE_RATIO = 0.9
MIN_DISTINCT = 4
MAX_TOP_TOTALS = 6  # signed combinations of at most 2^5 = 32 per document
FIT_Z = 2.5  # the corrected amount sits within 2.5 scales of its series' expectation ...
FIT_GAIN = 2.0  # ... and at least 2 scales closer than the amount as posted,
FIT_NOW_Z = 3.0  # which must itself be unusual for its series
LASTING_GAIN = 1.5
RESCALE_TOL = 2e-3  # cents of rounding on amounts of a few hundred dollars and more
NO_EXPLANATION = -1
PATTERN_LEVEL = -2  # internal: blamed as the first month of a lasting break (a level shift)


@dataclass(frozen=True)
class Reconciliation:
    """Per panel cell: confirmed by a holding identity, or blamed for a broken one."""

    confirmed: BoolArray  # (S,T)
    blamed: BoolArray  # (S,T) a broken identity is explained by this cell
    signature: np.ndarray  # (S,T) int8 PATTERN_* code of the exact correction (NONE if by fit)
    corrected: FloatArray  # (S,T) the amount that restores the identity (NaN elsewhere)
    n_identities: int
    level: BoolArray  # (S,T) blamed as the first month of a lasting break
    rank: FloatArray  # (S,T) strength of the blame: -300 rescaled line, -200 signature, -100 refilled, else fit


@dataclass
class _Quantity:
    values: FloatArray  # (T,)
    terms: list[tuple[int, int, float]]  # (series, lag, weight)
    lines: frozenset[int]  # series covered (for the disjointness test)
    direct: bool  # a single line's amount or change (confirmable)


def reconcile(ctx: SeriesContext, learned: dict[tuple[int, str], LearnedStatement] | None = None) -> Reconciliation:
    """Identities discovered per property; ``learned`` gives its statements' learned totals."""
    panel = ctx.panel
    shape = panel.values.shape
    confirmed = np.zeros(shape, dtype=bool)
    blamed = np.zeros(shape, dtype=bool)
    signature = np.zeros(shape, dtype=np.int8)
    corrected = np.full(shape, np.nan)
    level = np.zeros(shape, dtype=bool)
    if panel.n_series == 0:
        return Reconciliation(confirmed, blamed, signature, corrected, 0, level, np.full(shape, np.inf))
    # An absent line in a delivered document is an amount of 0 in that document's sums.
    filled = np.where(np.isfinite(panel.values), panel.values, np.where(panel.document_present, 0.0, np.nan))
    by_property: dict[int, list[LearnedStatement]] = defaultdict(list)
    for (pid, _), statement in (learned or {}).items():
        by_property[pid].append(statement)
    n_found = 0
    best_fit = np.full(shape, np.inf)
    work = []
    for pid in np.unique(panel.property_ids):
        members = np.flatnonzero(panel.property_ids == pid)
        quantities = _quantities(panel, filled, members, by_property[int(pid)])
        identities = _discover(quantities)
        n_found += len(identities)
        for i, j, c, holds, informative in identities:
            _confirm(quantities[i], quantities[j], holds, informative, confirmed)
            work.append((quantities[i], quantities[j], c, holds, informative))
        for q_a, q_b in _learned_identities(panel, filled, members, by_property[int(pid)]):
            holds, informative = _holds(q_a.values, q_b.values, 1.0)
            work.append((q_a, q_b, 1.0, holds, informative))
    # Triangulation: a cell that another identity confirms is not the one that broke this one.
    for q_a, q_b, c, holds, informative in work:
        _attribute(q_a, q_b, c, holds, informative, filled, ctx, confirmed, blamed, signature, corrected, best_fit, level)
    return Reconciliation(confirmed, blamed, signature, corrected, n_found, level, best_fit)


def _quantities(panel, filled: FloatArray, members: np.ndarray, learned: list[LearnedStatement]) -> list[_Quantity]:
    out: list[_Quantity] = []

    def add(values: FloatArray, terms: list[tuple[int, float]], direct: bool, stock: bool) -> None:
        lines = frozenset(s for s, _ in terms)
        out.append(_Quantity(values, [(s, 0, w) for s, w in terms], lines, direct))
        if not stock:
            return  # a flow's month-over-month change has no accounting meaning
        change = values - np.concatenate([[np.nan], values[:-1]])
        out.append(_Quantity(change, [(s, 0, w) for s, w in terms] + [(s, 1, -w) for s, w in terms], lines, direct))

    for s in members:
        add(filled[s], [(int(s), 1.0)], True, str(panel.document_types[s]) in STOCK_DOCUMENTS)
    for statement in learned:
        doc = statement.statement.document_type
        series = {str(panel.account_codes[s]): int(s) for s in members if str(panel.document_types[s]) == doc}
        totals, _ = coverage(statement)
        top: list[tuple[list[tuple[int, float]], FloatArray]] = []
        blocks = [frozenset(t.lines) for t in totals if t.is_block]
        for total in totals:
            covered = [(series[c], w) for c, w in total.lines.items() if c in series]
            if not covered:
                continue
            values = _on_panel(panel, total.periods, total.amounts)
            add(values, covered, False, doc in STOCK_DOCUMENTS)
            # Top-level blocks (no other block contains their lines) combine into signed sums
            # (revenue - expenses = net income) when the statement has no total for them.
            if total.is_block and not any(frozenset(total.lines) < other for other in blocks):
                top.append((covered, values))
        if not 2 <= len(top) <= MAX_TOP_TOTALS:
            continue
        for signs in itertools.product((1.0, -1.0), repeat=len(top) - 1):
            signs = (1.0, *signs)
            values = sum(sg * v for sg, (_, v) in zip(signs, top, strict=True))
            terms = [(s, sg * w) for sg, (cov, _) in zip(signs, top, strict=True) for s, w in cov]
            out.append(_Quantity(values, [(s, 0, w) for s, w in terms], frozenset(s for s, _ in terms), False))
    return out


def _on_panel(panel, periods: np.ndarray, amounts: FloatArray) -> FloatArray:
    values = np.full(panel.n_periods, np.nan)
    t = periods - panel.period0
    inside = (t >= 0) & (t < panel.n_periods)
    values[t[inside]] = amounts[inside]
    return values


def _holds(a: FloatArray, b: FloatArray, c: float | FloatArray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        tol = ABS_TOL * (1.0 + np.abs(c)) + REL_TOL * (np.abs(a) + np.abs(c * b))
        informative = np.isfinite(a) & np.isfinite(b) & ((np.abs(a) > ABS_TOL) | (np.abs(b) > ABS_TOL))
        holds = informative & (np.abs(a - c * b) <= tol)
    return holds, informative


def _discover(qs: list[_Quantity]) -> list[tuple[int, int, float, np.ndarray, np.ndarray]]:
    """Pairs (i, j, c) with a = c * b in most informative months, over disjoint line sets."""
    if len(qs) < 2:
        return []
    q_all = np.stack([x.values for x in qs])
    # Work on the property's own span of months: the panel may be wider (other properties), and
    # the first-half screen below must not depend on that.
    cols = np.flatnonzero(np.isfinite(q_all).any(axis=0))
    if len(cols) == 0:
        return []
    lo, hi = int(cols[0]), int(cols[-1]) + 1
    found = _discover_span(qs, q_all[:, lo:hi])
    width = q_all.shape[1]
    out = []
    for i, j, c, holds, informative in found:
        h = np.zeros(width, dtype=bool)
        f = np.zeros(width, dtype=bool)
        h[lo:hi], f[lo:hi] = holds, informative
        out.append((i, j, c, h, f))
    return out


def _discover_span(qs: list[_Quantity], q: FloatArray) -> list[tuple[int, int, float, np.ndarray, np.ndarray]]:
    # Candidate quantities vary (at least MIN_DISTINCT distinct non-zero values).
    rounded = np.where(np.isfinite(q) & (np.abs(q) > ABS_TOL), np.round(q, 2), np.nan)
    srt = np.sort(rounded, axis=1)
    distinct = np.sum(np.isfinite(srt[:, 1:]) & (np.diff(srt, axis=1) > 0), axis=1) + np.isfinite(srt[:, 0])
    keep = np.flatnonzero(distinct >= MIN_DISTINCT)
    if len(keep) < 2:
        return []
    qk = q[keep]
    n_t = qk.shape[1]
    iu, ju = np.triu_indices(len(keep), 1)
    c_full, pass_full = _screen(qk, iu, ju, slice(0, n_t))
    # An identity that held for the first half and then broke for good (a level shift, a line
    # remapped) is still an identity: screen the first half on its own as well.
    if n_t >= 24:
        c_half, pass_half = _screen(qk, iu, ju, slice(0, n_t // 2))
    else:
        c_half, pass_half = c_full, np.zeros_like(pass_full)
    sel = np.flatnonzero(pass_full | pass_half)
    if len(sel) == 0:
        return []
    pairs = np.stack([iu[sel], ju[sel]], axis=1)
    c = np.where(pass_full[sel], c_full[sel], c_half[sel])
    # Snap to +-1 when close: most identities are equalities, and rounding would otherwise leak.
    c = np.where(np.abs(np.abs(c) - 1.0) < 1e-6, np.sign(c), c)
    holds, informative = _holds(qk[pairs[:, 0]], qk[pairs[:, 1]], c[:, None])
    # Months up to the last one that holds; a trailing run of breaks (at least 3) is one lasting
    # event and does not count against the identity.
    idx = np.arange(n_t)
    last_hold = np.max(np.where(holds, idx, -1), axis=1)
    trailing = np.sum(informative & ~holds & (idx > last_hold[:, None]), axis=1)
    span = np.where(trailing >= 3, last_hold, n_t - 1)
    in_span = idx <= span[:, None]
    n_inf = (informative & in_span).sum(axis=-1)
    share = (holds & in_span).sum(axis=-1) / np.maximum(n_inf, 1)
    need = np.where(np.abs(c) == 1.0, MIN_HOLD_SHARE, MIN_HOLD_SHARE_RATIO)
    min_inf = np.where(trailing >= 3, MIN_INFORMATIVE_LASTING, MIN_INFORMATIVE)
    ok = (n_inf >= min_inf) & (share >= need)
    out = []
    for k in np.flatnonzero(ok):
        i, j = int(keep[pairs[k, 0]]), int(keep[pairs[k, 1]])
        if qs[i].lines & qs[j].lines:
            continue  # a total and its own lines agree by construction
        out.append((i, j, float(c[k]), holds[k], informative[k]))
    return _deduplicate(out, qs)


def _screen(qk: FloatArray, iu: np.ndarray, ju: np.ndarray, months: slice) -> tuple[FloatArray, np.ndarray]:
    """Median ratio c per pair and a cheap test: when a = c b in 75 % of the months, the sorted
    ratios from the first to the third quartile all equal c (float32 is plenty for a screen)."""
    a = qk[iu, months].astype(np.float32)
    b = qk[ju, months].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = a / b
    ratio[~np.isfinite(ratio) | (ratio == 0)] = np.nan
    srt = np.sort(ratio, axis=-1)
    count = np.sum(np.isfinite(ratio), axis=-1)

    def at(pos: np.ndarray) -> FloatArray:
        return np.take_along_axis(srt, np.clip(pos, 0, srt.shape[1] - 1)[:, None], axis=-1)[:, 0].astype(np.float64)

    mid, q1, q3 = at((count - 1) // 2), at(count // 4), at((3 * count) // 4 - 1)
    with np.errstate(invalid="ignore"):
        ok = (count >= MIN_INFORMATIVE) & (np.abs(q3 - q1) <= 1e-2 * np.abs(mid)) & (np.abs(mid) >= 1e-3)
    return mid, ok


def _deduplicate(found, qs):
    """Keep one identity per pair of line sets (a line's amount and its change may both match)."""
    seen: set[tuple[frozenset[int], frozenset[int], bool, bool]] = set()
    out = []
    for i, j, c, holds, informative in found:
        key = (qs[i].lines, qs[j].lines, len(qs[i].terms) > len(qs[i].lines), len(qs[j].terms) > len(qs[j].lines))
        if key in seen:
            continue
        seen.add(key)
        out.append((i, j, c, holds, informative))
    return out


def _confirm(qa: _Quantity, qb: _Quantity, holds: np.ndarray, informative: np.ndarray, confirmed: BoolArray) -> None:
    """A single line whose identity holds in a month is confirmed in that month.

    For a change (x_t - x_{t-1}) the amount x_t is confirmed only when the identity holds at t
    and at t+1: a point error on a stock breaks both changes it enters.
    """
    n_t = len(holds)
    ok_or_quiet = holds | ~informative
    for q in (qa, qb):
        if not q.direct:
            continue
        s = q.terms[0][0]
        if len(q.terms) == 1:
            confirmed[s] |= holds
        else:
            nxt = np.concatenate([ok_or_quiet[1:], [True]])
            confirmed[s] |= holds & nxt
    del n_t


def _attribute(  # noqa: C901, PLR0913 -- one identity break attributed in place; to split (see report)
    qa: _Quantity,
    qb: _Quantity,
    c: float,
    holds: np.ndarray,
    informative: np.ndarray,
    filled: FloatArray,
    ctx: SeriesContext,
    confirmed: BoolArray,
    blamed: BoolArray,
    signature: np.ndarray,
    corrected: FloatArray,
    best_fit: FloatArray,
    level: BoolArray,
) -> None:
    """Blame each break of ``a = c b`` on the cell whose correction restores it best."""
    breaks = np.flatnonzero(informative & ~holds)
    if len(breaks) == 0:
        return
    diff = qa.values - c * qb.values
    terms = [(s, lag, w) for s, lag, w in qa.terms] + [(s, lag, -c * w) for s, lag, w in qb.terms]
    n_t = len(diff)
    in_lasting, last_start = False, -1  # inside the run of an identity that broke for good (until it holds again)
    for t in breaks:
        if in_lasting and not np.any(holds[breaks[0] : t] & (np.arange(breaks[0], t) > last_start)):
            continue
        in_lasting = False
        # A break that continues one of the previous month in the same direction is a lasting
        # difference (a level shift, a remapped account), blamed once at its first month.
        if t > 0 and informative[t - 1] and not holds[t - 1] and diff[t] * diff[t - 1] > 0:
            continue
        d = float(diff[t])
        # A lasting break (the next two informative months break the same way) is a new level.
        later = [k for k in range(t + 1, n_t) if informative[k]][:2]
        lasting = len(later) == 2 and all(not holds[k] and diff[k] * d > 0 for k in later)
        # A (short) break that recurs in the same calendar month of other years is a calendar
        # effect (a true-up, a third pay run), not a keying error.
        if not lasting and any(
            0 <= t + k < n_t and informative[t + k] and not holds[t + k] and d * diff[t + k] > 0
            for k in (-36, -24, -12, 12, 24, 36)
        ):
            continue
        run = [t]
        if lasting:
            in_lasting, last_start = True, t
            # The run lasts until the identity holds again; other errors inside it are tolerated.
            for k in range(t + 1, n_t):
                if holds[k]:
                    break
                if informative[k]:
                    run.append(k)
        best: tuple[float, int, int, int, float] | None = None
        for s, lag, w in terms:
            tau = t - lag
            if not 0 <= tau < n_t or w == 0 or confirmed[s, tau]:
                continue
            x = filled[s, tau]
            if not np.isfinite(x):
                continue
            x_new = x - d / w
            code, fit = _judge(ctx, s, tau, x, x_new, lasting)
            if lasting and lag == 0 and _rescaled(diff, filled[s], w, run):
                code, fit = PATTERN_LEVEL, -300.0
            if code == NO_EXPLANATION:
                continue
            # Exact keying signatures first, then an empty line that the break refills, then fit.
            rank = (
                fit
                if code == PATTERN_LEVEL
                else fit - (200.0 if code > PATTERN_NONE and code != PATTERN_MISSING else 100.0 if code > 0 else 0.0)
            )
            if best is None or rank < best[0]:
                best = (rank, s, tau, code, x_new)
        if best is None:
            continue
        rank, s, tau, code, x_new = best
        if rank < best_fit[s, tau]:
            best_fit[s, tau] = rank
            blamed[s, tau] = True
            level[s, tau] = code == PATTERN_LEVEL
            signature[s, tau] = max(code, PATTERN_NONE)
            corrected[s, tau] = x_new


def _rescaled(diff: FloatArray, x: FloatArray, w: float, run: list[int]) -> bool:
    """The lasting break is a constant share of the line's amount in every month of the run:
    the line was rescaled (x f) from the first month on while the other side kept the old basis."""
    if len(run) < 3:
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        share = diff[run] / (w * x[run])
    share = np.where(np.isfinite(share), share, np.nan)
    mid = share[0]
    if not np.isfinite(mid) or abs(mid) < 0.05:
        return False
    same = np.abs(share - mid) <= RESCALE_TOL * abs(mid)
    # The first month and at least three quarters of the run (other errors may sit inside it).
    return int(same.sum()) >= 3 and float(same.mean()) >= 0.75


def _judge(ctx: SeriesContext, s: int, t: int, x: float, x_new: float, lasting: bool = False) -> tuple[int, float]:
    """(signature code or NONE, fit z of the corrected amount); code -1 when it does not explain.

    The fit is the corrected amount's distance to the closest of its context predictions (the
    best expectation, the trailing local level, the same month of earlier years), each on its
    own scale, so the first month of a level shift is judged against the level it left.
    """
    unit = float(ctx.unit[s])
    y_new = float(np.arcsinh(x_new / unit))
    y_now = float(np.arcsinh(x / unit))
    fit, now = np.inf, np.inf
    for pred, scale in (
        (ctx.expected_y[s, t], ctx.expected_scale[s, t]),
        (ctx.predictions["left"][s, t], ctx.sigmas["left"][s]),
        (ctx.predictions["season_left"][s, t], ctx.sigmas["season_left"][s]),
    ):
        if np.isfinite(pred) and np.isfinite(scale) and scale > 0:
            fit = min(fit, abs(y_new - float(pred)) / float(scale))
            now = min(now, abs(y_now - float(pred)) / float(scale))
    for factor, code in SIGNATURES:
        if abs(x_new) > ABS_TOL and abs(x - factor * x_new) <= ABS_TOL * (1 + abs(factor)) + REL_TOL * abs(x):
            return code, fit if np.isfinite(fit) else 0.0
    expected = float(ctx.expected[s, t])
    # Missing: nothing posted where the series expects a material amount of this sign.
    if (
        abs(x) <= ABS_TOL
        and not ctx.quiet_empty[s, t]
        and np.isfinite(expected)
        and abs(expected) >= 0.25 * float(ctx.typical[s])
        and x_new * expected > 0
        and fit <= FIT_Z
    ):
        return PATTERN_MISSING, fit
    if fit <= FIT_Z and now >= max(fit + FIT_GAIN, FIT_NOW_Z):
        return PATTERN_NONE, fit
    # The first month of a lasting break: the corrected amount continues the level the line
    # left; the gain, not the size of the step, tells which line moved.
    if lasting and fit <= FIT_Z and now >= fit + LASTING_GAIN:
        return PATTERN_LEVEL, fit - now
    return NO_EXPLANATION, np.inf


def _learned_identities(panel, filled: FloatArray, members: np.ndarray, learned: list[LearnedStatement]):
    """The identities learned between a statement's totals (assets = liabilities + equity), over
    their detail lines."""
    out = []
    for statement in learned:
        doc = statement.statement.document_type
        series = {str(panel.account_codes[s]): int(s) for s in members if str(panel.document_types[s]) == doc}
        for left, right in coverage(statement)[1]:
            sides = [[(series[c], w) for c, w in side.items() if c in series] for side in (left, right)]
            if all(sides) and len(sides[0]) == len(left) and len(sides[1]) == len(right):
                out.append(tuple(_weighted(filled, side) for side in sides))
    return out


def _weighted(filled: FloatArray, terms: list[tuple[int, float]]) -> _Quantity:
    values = np.sum([w * filled[s] for s, w in terms], axis=0)
    return _Quantity(values, [(s, 0, w) for s, w in terms], frozenset(s for s, _ in terms), False)
