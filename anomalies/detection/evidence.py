"""Evidence per cell: the statistics, reconciliation blame and the kind of each deviation.

A misclassification (amount moved to the neighbouring account of the same document) shows up
as two opposite deviations; they are paired and reported once per line, each naming the other.
"""

from __future__ import annotations

import numpy as np

from .features import PATTERN_MISSING, PATTERN_NAMES, PATTERN_NONE, SeriesContext
from .reconcile import Reconciliation
from .table import FloatArray, IntArray, SeriesPanel

OFF_SEASON_Z = 8.0  # evidence of a material posting in a month that is always empty
# An error signature adds PATTERN_BONUS to a deviation of at least PATTERN_GATE_Z scales.
PATTERN_GATE_Z = 3.0
PATTERN_BONUS = 2.5
PAIR_MATCH = 0.10  # misclassification: the two deviations cancel to within 10 %
PAIR_MAX_DISTANCE = 2.0  # lines at most two positions apart in the document
PAIR_PARTNER_Z = 1.5


def statistical_evidence(ctx: SeriesContext) -> FloatArray:
    z = np.nan_to_num(ctx.point_z, nan=0.0, posinf=0.0)
    # An error signature (the amount fits its context once a keying error is undone) is evidence
    # beyond distance: a moderate deviation with a signature outranks a larger one without.
    signed = (ctx.pattern != PATTERN_NONE) & (z >= PATTERN_GATE_Z)
    z = np.where(signed, z + PATTERN_BONUS, z)
    z = np.maximum(z, ctx.step_z)
    z = np.where(ctx.off_season, np.maximum(z, OFF_SEASON_Z), z)
    return z


# A broken identity explained exactly by a keying signature of one line is near-certain; one
# explained by the line fitting its history once corrected is strong.  A line confirmed by an
# independently prepared document (its identity holds that month) is at most mildly unusual.
BLAME_SIGNATURE_Z = 10.0
BLAME_FIT_Z = 6.0
CONFIRMED_MAX_Z = 2.5


def apply_reconciliation(z: FloatArray, ctx: SeriesContext, rec: Reconciliation) -> FloatArray:
    # A lasting break that is an exact constant share of one line (that line was rescaled) is as
    # certain as a keying signature.
    by_signature = rec.blamed & ((rec.signature != PATTERN_NONE) | (rec.level & (rec.rank <= -300.0)))
    z = np.where(by_signature, np.maximum(z, BLAME_SIGNATURE_Z), z)
    z = np.where(rec.blamed & ~by_signature, np.maximum(z, BLAME_FIT_Z), z)
    z = np.where(rec.confirmed, np.minimum(z, CONFIRMED_MAX_Z), z)
    # The exact correction names the error better than the series' own context can.
    ctx.pattern[by_signature] = rec.signature[by_signature]
    return z


def classify(ctx: SeriesContext, evidence: FloatArray, level_blamed: np.ndarray | None = None) -> np.ndarray:
    """Anomaly type per cell, from the error signature or the shape of the deviation."""
    v = ctx.panel.values
    out = np.full(v.shape, "spike", dtype=object)
    absent = (ctx.panel.rows < 0) & ctx.panel.document_present
    level = (ctx.step_z >= np.nan_to_num(ctx.point_z)) & (ctx.step_z > 0)
    out[level] = "level_shift"
    for code, name in PATTERN_NAMES.items():
        out[ctx.pattern == code] = name
    out[ctx.off_season] = "seasonal"
    if level_blamed is not None:
        out[level_blamed] = "level_shift"
    out[absent | ((v == 0) & (ctx.pattern == PATTERN_MISSING))] = "missing"
    del evidence
    return out


def _may_pair(
    panel: SeriesPanel, ctx: SeriesContext, anomaly_type: np.ndarray, section: IntArray, cell: tuple[int, int, int]
) -> bool:
    """Line ``o`` may be the other half of line ``s``'s misclassification in period ``t``."""
    s, o, t = cell
    if o == s or not np.isfinite(panel.values[o, t]):
        return False
    # The partner must deviate as well: noise on a volatile neighbour cancelling a deviation by
    # chance is no misclassification.
    if not np.nan_to_num(ctx.point_z[o, t]) >= PAIR_PARTNER_Z or anomaly_type[o, t] == "seasonal":
        return False
    if abs(panel.row_order[o] - panel.row_order[s]) > PAIR_MAX_DISTANCE:
        return False
    # A total line between them: different sections of the statement.
    return not (panel.rows[s, t] >= 0 and section[panel.rows[o, t]] != section[panel.rows[s, t]])


def pair_misclassifications(
    panel: SeriesPanel, ctx: SeriesContext, evidence: FloatArray, anomaly_type: np.ndarray, section: IntArray
) -> dict[tuple[int, int], int]:
    """Pair opposite, cancelling deviations of neighbouring lines of one section of a document
    (``section``: per table row, see :func:`.structure.sections_of_rows`).

    The pair is one event: the receiving line keeps the (maximum) evidence and the type
    'misclassification'; the emptied line's evidence is cleared so it is not reported again.
    Returns {(series, t): partner series} for the receiving lines.  Mutates evidence/types.
    """
    partners: dict[tuple[int, int], int] = {}
    v = np.nan_to_num(panel.values)
    dev = v - np.nan_to_num(ctx.expected)
    candidates = np.argwhere(evidence >= 5.0)
    family_sigma = np.nan_to_num(ctx.expected_scale, nan=0.1)
    # d(u sinh y)/dy = u cosh y = sqrt(u^2 + x^2): the asinh-scale sigma in amount units.
    amount_sigma = family_sigma * np.hypot(ctx.unit[:, None], np.nan_to_num(ctx.expected))
    if len(candidates) == 0:
        return partners
    # Series of the same document, by document id, sorted by position.
    by_doc: dict[int, IntArray] = {}
    for d in np.unique(panel.document_ids[candidates[:, 0]]):
        members = np.flatnonzero(panel.document_ids == d)
        by_doc[int(d)] = members[np.argsort(panel.row_order[members])]
    used: set[tuple[int, int]] = set()
    for s, t in sorted(map(tuple, candidates), key=lambda st: -evidence[st[0], st[1]]):
        if (s, t) in used or anomaly_type[s, t] in ("sign_flip", "seasonal"):
            continue
        members = by_doc[int(panel.document_ids[s])]
        best, best_err = -1, PAIR_MATCH
        for o in members:
            if (o, t) in used or not _may_pair(panel, ctx, anomaly_type, section, (int(s), int(o), int(t))):
                continue
            a, b = dev[s, t], dev[o, t]
            if a * b >= 0:
                continue
            # The deviations must cancel to within 10 % plus the uncertainty of both expected
            # values (each series' robust scale, in amount units).
            slack = 2.0 * float(np.hypot(amount_sigma[s, t], amount_sigma[o, t]))
            err = max(abs(a + b) - slack, 0.0) / max(abs(a), abs(b))
            if err < best_err and abs(a + b) < 0.5 * max(abs(a), abs(b)):
                best, best_err = int(o), err
        if best < 0:
            continue
        # The receiving line is the one whose magnitude grew: that is where the posting landed.
        grew = abs(v[s, t]) > abs(np.nan_to_num(ctx.expected[s, t]))
        receiver, giver = (s, best) if grew else (best, s)
        pair_z = max(evidence[s, t], evidence[best, t])
        # One event, two lines: both are reported (an accountant fixes the pair), each naming
        # the other, with the same evidence.
        evidence[receiver, t] = pair_z
        evidence[giver, t] = pair_z
        anomaly_type[receiver, t] = "misclassification"
        anomaly_type[giver, t] = "misclassification"
        partners[(receiver, t)] = giver
        partners[(giver, t)] = receiver
        used.update({(s, t), (best, t)})
    return partners
