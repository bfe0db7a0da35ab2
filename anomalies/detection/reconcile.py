"""Cross-statement reconciliation: accounting identities discovered from the data.

A property's documents are prepared from one ledger, so some quantities agree to the cent in
every month: the mortgage payable and the lender's principal balance, the change in a balance-
sheet account and its cash-flow line, net income on the income statement and on the cash flow,
a management fee that is a fixed share of revenue.  Which quantities agree is *discovered* per
property from its own history (no account list is hard-coded):

* quantities: every line's amount and its month-over-month change, every total's amount and
  change, and the signed combinations of a document's top-level class totals (revenue minus
  expense classes, ...);
* an identity is ``a = c * b`` (c constant per pair, usually +-1) that holds to the cent (plus a
  1e-4 relative rounding allowance) in at least 75 % of the informative months (months where
  one side is non-zero), over quantities that take at least four distinct values, between
  quantities that share no line (a total and its own lines agree by construction and prove
  nothing);
* the balance sheet identity assets = liabilities + equity is added as a known identity.

A keying error hits one document, so it *breaks* each identity its line is part of, by exactly
its size ``D``.  The break is attributed to the line whose correction ``x - D / w`` either undoes
a keying signature exactly (x10, x100, /100, sign, x2, 0) or makes the line fit its own series
again.  Conversely, a line in a direct identity that holds in its month is *confirmed* by an
independently prepared document: an unusual amount there is a real event, not an error.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

from .features import PATTERN_DECIMAL, PATTERN_DUPLICATE, PATTERN_MISSING, PATTERN_NONE, PATTERN_SIGN, SeriesContext
from .table import BoolArray, FloatArray, LineTable

TOTAL_CODE = re.compile(r"^(\d{4})-\d{4}$")
ABS_TOL = 0.03  # cents of rounding per side
REL_TOL = 1e-4
MIN_INFORMATIVE = 6
MIN_HOLD_SHARE = 0.75
# A proportion other than +-1 (a fee that is a share of revenue) is a weaker a-priori link than
# an equality, so it must hold more often before it is believed.
MIN_HOLD_SHARE_RATIO = 0.9
MIN_DISTINCT = 4
MAX_TOP_TOTALS = 6  # signed combinations of at most 2^5 = 32 per document
SIGNATURES = (
    (10.0, PATTERN_DECIMAL),
    (100.0, PATTERN_DECIMAL),
    (1000.0, PATTERN_DECIMAL),
    (0.1, PATTERN_DECIMAL),
    (0.01, PATTERN_DECIMAL),
    (-1.0, PATTERN_SIGN),
    (2.0, PATTERN_DUPLICATE),
)
FIT_Z = 2.5  # the corrected amount sits within 2.5 scales of its series' expectation ...
FIT_GAIN = 2.0  # ... and at least 2 scales closer than the amount as posted,
FIT_NOW_Z = 3.0  # which must itself be unusual for its series


@dataclass(frozen=True)
class Reconciliation:
    """Per panel cell: confirmed by a holding identity, or blamed for a broken one."""

    confirmed: BoolArray  # (S,T)
    blamed: BoolArray  # (S,T) a broken identity is explained by this cell
    signature: np.ndarray  # (S,T) int8 PATTERN_* code of the exact correction (NONE if by fit)
    corrected: FloatArray  # (S,T) the amount that restores the identity (NaN elsewhere)
    n_identities: int


@dataclass
class _Quantity:
    values: FloatArray  # (T,)
    terms: list[tuple[int, int, float]]  # (series, lag, weight)
    lines: frozenset[int]  # series covered (for the disjointness test)
    direct: bool  # a single line's amount or change (confirmable)


def reconcile(table: LineTable, ctx: SeriesContext) -> Reconciliation:
    panel = ctx.panel
    shape = panel.values.shape
    confirmed = np.zeros(shape, dtype=bool)
    blamed = np.zeros(shape, dtype=bool)
    signature = np.zeros(shape, dtype=np.int8)
    corrected = np.full(shape, np.nan)
    if panel.n_series == 0:
        return Reconciliation(confirmed, blamed, signature, corrected, 0)
    # An absent line in a delivered document is an amount of 0 in that document's sums.
    filled = np.where(np.isfinite(panel.values), panel.values, np.where(panel.document_present, 0.0, np.nan))
    totals = _totals(table, panel)
    n_found = 0
    best_fit = np.full(shape, np.inf)
    work = []
    for pid in np.unique(panel.property_ids):
        members = np.flatnonzero(panel.property_ids == pid)
        quantities = _quantities(panel, filled, members, totals.get(int(pid), []))
        identities = _discover(quantities)
        n_found += len(identities)
        for i, j, c, holds, informative in identities:
            _confirm(quantities[i], quantities[j], holds, informative, confirmed)
            work.append((quantities[i], quantities[j], c, holds, informative))
        for q_a, q_b in _balance_identities(panel, filled, members):
            holds, informative = _holds(q_a.values, q_b.values, 1.0)
            work.append((q_a, q_b, 1.0, holds, informative))
    # Triangulation: a cell that another identity confirms is not the one that broke this one.
    for q_a, q_b, c, holds, informative in work:
        _attribute(q_a, q_b, c, holds, informative, filled, ctx, confirmed, blamed, signature, corrected, best_fit)
    return Reconciliation(confirmed, blamed, signature, corrected, n_found)


def _totals(table: LineTable, panel) -> dict[int, list[tuple[str, str, FloatArray]]]:
    """Per property: (document_type, account_code, amounts over the panel's periods) of totals."""
    out: dict[int, dict[tuple[str, str], FloatArray]] = {}
    for r in np.flatnonzero(table.is_total):
        code = str(table.account_codes[r])
        if not TOTAL_CODE.match(code.strip()):
            continue
        t = int(table.periods[r]) - panel.period0
        if not 0 <= t < panel.n_periods or not np.isfinite(table.amounts[r]):
            continue
        by_doc = out.setdefault(int(table.property_ids[r]), {})
        key = (str(table.document_types[r]), code)
        if key not in by_doc:
            by_doc[key] = np.full(panel.n_periods, np.nan)
        by_doc[key][t] = float(table.amounts[r])
    return {p: [(d, c, v) for (d, c), v in docs.items()] for p, docs in out.items()}


def _prefix(code: str) -> str:
    return TOTAL_CODE.match(code.strip()).group(1).rstrip("9")  # type: ignore[union-attr]


def _quantities(panel, filled: FloatArray, members: np.ndarray, totals) -> list[_Quantity]:
    out: list[_Quantity] = []

    def add(values: FloatArray, terms: list[tuple[int, float]], direct: bool) -> None:
        lines = frozenset(s for s, _ in terms)
        out.append(_Quantity(values, [(s, 0, w) for s, w in terms], lines, direct))
        change = values - np.concatenate([[np.nan], values[:-1]])
        out.append(_Quantity(change, [(s, 0, w) for s, w in terms] + [(s, 1, -w) for s, w in terms], lines, direct))

    for s in members:
        add(filled[s], [(int(s), 1.0)], True)
    codes = {int(s): str(panel.account_codes[s]) for s in members}
    docs = {int(s): str(panel.document_types[s]) for s in members}
    top: dict[str, list[tuple[list[tuple[int, float]], FloatArray]]] = {}
    for doc, code, values in totals:
        prefix = _prefix(code)
        covered = [(s, 1.0) for s in codes if docs[s] == doc and codes[s].startswith(prefix)]
        if not covered:
            continue
        add(values, covered, False)
        if len(prefix) == 1:
            top.setdefault(doc, []).append((covered, values))
    # Signed combinations of a document's class totals (revenue - expenses = net income).
    for parts in top.values():
        if not 2 <= len(parts) <= MAX_TOP_TOTALS:
            continue
        for signs in itertools.product((1.0, -1.0), repeat=len(parts) - 1):
            signs = (1.0, *signs)
            values = sum(sg * v for sg, (_, v) in zip(signs, parts, strict=True))
            terms = [(s, sg * w) for sg, (cov, _) in zip(signs, parts, strict=True) for s, w in cov]
            out.append(_Quantity(values, [(s, 0, w) for s, w in terms], frozenset(s for s, _ in terms), False))
    return out


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
    q = np.stack([x.values for x in qs])
    # Candidate quantities vary (at least MIN_DISTINCT distinct non-zero values).
    rounded = np.where(np.isfinite(q) & (np.abs(q) > ABS_TOL), np.round(q, 2), np.nan)
    srt = np.sort(rounded, axis=1)
    distinct = np.sum(np.isfinite(srt[:, 1:]) & (np.diff(srt, axis=1) > 0), axis=1) + np.isfinite(srt[:, 0])
    keep = np.flatnonzero(distinct >= MIN_DISTINCT)
    if len(keep) < 2:
        return []
    qk = q[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = qk[:, None, :] / qk[None, :, :]
        ratio = np.where(np.isfinite(ratio) & (ratio != 0), ratio, np.nan)
    srt_ratio = np.sort(ratio, axis=-1)
    count = np.sum(np.isfinite(ratio), axis=-1)
    mid = np.take_along_axis(srt_ratio, np.clip((count - 1) // 2, 0, None)[..., None], axis=-1)[..., 0]
    c = np.where(count >= MIN_INFORMATIVE, mid, np.nan)
    # Snap to +-1 when close: most identities are equalities, and rounding would otherwise leak.
    c = np.where(np.abs(np.abs(c) - 1.0) < 1e-6, np.sign(c), c)
    holds, informative = _holds(qk[:, None, :], qk[None, :, :], c[..., None])
    n_inf = informative.sum(axis=-1)
    share = holds.sum(axis=-1) / np.maximum(n_inf, 1)
    need = np.where(np.abs(c) == 1.0, MIN_HOLD_SHARE, MIN_HOLD_SHARE_RATIO)
    ok = (n_inf >= MIN_INFORMATIVE) & (share >= need) & np.isfinite(c) & (np.abs(c) >= 1e-3)
    ok &= np.triu(np.ones_like(ok), 1).astype(bool)
    out = []
    for a, b in np.argwhere(ok):
        i, j = int(keep[a]), int(keep[b])
        if qs[i].lines & qs[j].lines:
            continue  # a total and its own lines agree by construction
        out.append((i, j, float(c[a, b]), holds[a, b], informative[a, b]))
    return _deduplicate(out, qs)


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


def _attribute(
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
) -> None:
    """Blame each break of ``a = c b`` on the cell whose correction restores it best."""
    breaks = np.flatnonzero(informative & ~holds)
    if len(breaks) == 0:
        return
    diff = qa.values - c * qb.values
    terms = [(s, lag, w) for s, lag, w in qa.terms] + [(s, lag, -c * w) for s, lag, w in qb.terms]
    n_t = len(diff)
    for t in breaks:
        # A break that continues one of the previous month in the same direction is a lasting
        # difference (a level shift, a remapped account), blamed once at its first month.
        if t > 0 and informative[t - 1] and not holds[t - 1] and diff[t] * diff[t - 1] > 0:
            continue
        # A break that recurs in the same calendar month of other years is a calendar effect
        # (a true-up, a third pay run), not a keying error.
        if any(
            0 <= t + k < n_t and informative[t + k] and not holds[t + k] and diff[t] * diff[t + k] > 0
            for k in (-36, -24, -12, 12, 24, 36)
        ):
            continue
        d = float(diff[t])
        best: tuple[float, int, int, int, float] | None = None
        for s, lag, w in terms:
            tau = t - lag
            if not 0 <= tau < n_t or w == 0 or confirmed[s, tau]:
                continue
            x = filled[s, tau]
            if not np.isfinite(x):
                continue
            x_new = x - d / w
            code, fit = _judge(ctx, s, tau, x, x_new)
            if code < 0:
                continue
            # Exact keying signatures first, then an empty line that the break refills, then fit.
            rank = fit - (200.0 if code not in (PATTERN_NONE, PATTERN_MISSING) else 100.0 if code else 0.0)
            if best is None or rank < best[0]:
                best = (rank, s, tau, code, x_new)
        if best is None:
            continue
        rank, s, tau, code, x_new = best
        if rank < best_fit[s, tau]:
            best_fit[s, tau] = rank
            blamed[s, tau] = True
            signature[s, tau] = code
            corrected[s, tau] = x_new


def _judge(ctx: SeriesContext, s: int, t: int, x: float, x_new: float) -> tuple[int, float]:
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
        and np.isfinite(expected)
        and abs(expected) >= 0.25 * float(ctx.typical[s])
        and x_new * expected > 0
        and fit <= FIT_Z
    ):
        return PATTERN_MISSING, fit
    if fit <= FIT_Z and now >= max(fit + FIT_GAIN, FIT_NOW_Z):
        return PATTERN_NONE, fit
    return -1, np.inf


def _balance_identities(panel, filled: FloatArray, members: np.ndarray):
    """Assets = liabilities + equity on each balance sheet, over its detail lines."""
    bs = [int(s) for s in members if str(panel.document_types[s]) == "balance_sheet"]
    assets = [s for s in bs if str(panel.account_codes[s]).startswith("1")]
    claims = [s for s in bs if str(panel.account_codes[s])[:1] in ("2", "3")]
    if not assets or not claims:
        return []

    def q(lines: list[int]) -> _Quantity:
        values = np.sum(filled[lines], axis=0)
        return _Quantity(values, [(s, 0, 1.0) for s in lines], frozenset(lines), False)

    return [(q(assets), q(claims))]
