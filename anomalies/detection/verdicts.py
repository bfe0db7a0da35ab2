"""What analysts' verdicts teach a later pass (Django-free, over typed arrays).

A verdict says of one line (property, document type, period, account) whether the evidence the
model saw there was an error (confirmed) or normal for this portfolio (dismissed / false
positive).  A later pass generalises it to other lines that carry *the same kind of evidence, no
stronger*:

* on the same series (property, document type, account): full weight;
* on the same account and document type at other properties of the portfolio: half weight (a
  convention of the portfolio's books, e.g. occupancy re-measured every spring);
* for one-month kinds (spike, x10, duplicate, seasonal), in another calendar month: half again.

A dismissal covers a flagged line when the line's kind (level shift, zero month, sign flip, ...)
is the dismissed one and its raw evidence is at most ``COVER_RATIO`` times the dismissed line's
evidence: a decimal shift far stronger than anything dismissed still alarms.  A confirmation of
the same kind in the same scope counts against (a kind of error that keeps being confirmed on an
account keeps alarming there).  The learned confidence that the line is normal is

    c = dismissed_weight / (dismissed_weight + confirmed_weight + PRIOR)

so one dismissal on the series gives 0.5, two give 0.67, four give 0.8.  From c = 0.5 on, the
line's evidence is re-read against the dismissed evidence: at the dismissed strength it becomes
``Z_HALF * (1 - c) / c`` (the flag line with one dismissal, half of it with two), weaker lines
less, and lines more than ``COVER_RATIO`` times stronger are not covered at all.  With auto-suppression, a flagged line with
``c >= threshold`` is kept visible with status "suppressed" and the reason.

Verdicts only count when (a) they were given within the lookback window, (b) the line they were
given on still exists in this pass with the amount the analyst saw (a line that reprocessing
removed or changed keeps its verdict, unapplied), and (c) they are the latest verdict on their
line (two analysts disagreeing: the later one wins; both rows are kept by the caller).
Arithmetic findings (footing, balance) are never discounted or suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scoring import FLAG_SCORE, Z_HALF, score_from_z, z_from_score
from .table import FloatArray, IntArray

SAME_SERIES_WEIGHT = 1.0
PEER_PROPERTY_WEIGHT = 0.5
# A lump dismissed in April (an annual invoice) says little about the same lump in February: for
# one-month kinds a verdict in another calendar month counts half.  A zero month, a new level or
# a sign convention is a habit of the account, whatever the month.
OTHER_MONTH_FACTOR = 0.5
MONTH_BOUND_KINDS = frozenset({"spike", "drop", "decimal_shift", "duplicate", "seasonal", "outlier", "peer_outlier"})
COVER_RATIO = 1.5  # a line up to 1.5x as strong as a dismissed one is "the same evidence"
PRIOR = 1.0  # pseudo-count of "this may be an error" before any verdict
LEARN_MIN_CONFIDENCE = 0.5  # below: the verdicts disagree too much to change the score
NEVER_LEARNED = frozenset({"footing", "balance_mismatch"})

SeriesKey = tuple[int, str, str]  # (property, document type, account)


@dataclass(frozen=True)
class VerdictArrays:
    """Verdicts, one entry per (line, analyst), oldest first."""

    ids: IntArray
    property_ids: IntArray
    document_types: np.ndarray  # object
    account_codes: np.ndarray  # object
    periods: IntArray
    amounts: FloatArray  # NaN: an absent line
    is_anomaly: np.ndarray  # bool: confirmed (True) or dismissed (False)
    kinds: np.ndarray  # object: the anomaly type the analyst saw
    scores: FloatArray  # the model's raw score (0-100) the analyst saw
    age_days: FloatArray
    still_seen: np.ndarray  # bool: the verdict's detection still exists with the amount the analyst saw

    @property
    def n(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> VerdictArrays:
        return cls.from_rows([])

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> VerdictArrays:
        """From (id, property, doc type, account, period, amount|None, is_anomaly, kind, score, age_days[, still_seen])."""
        rows = [tuple(r) + (True,) * (11 - len(r)) for r in rows]
        cols = list(zip(*rows, strict=True)) if rows else [()] * 11
        return cls(
            ids=np.asarray(cols[0], dtype=np.int64),
            property_ids=np.asarray(cols[1], dtype=np.int64),
            document_types=np.asarray(cols[2], dtype=object),
            account_codes=np.asarray(cols[3], dtype=object),
            periods=np.asarray(cols[4], dtype=np.int64),
            amounts=np.asarray([np.nan if a is None else float(a) for a in cols[5]], dtype=np.float64),
            is_anomaly=np.asarray(cols[6], dtype=bool),
            kinds=np.asarray(cols[7], dtype=object),
            scores=np.asarray([0.0 if s is None else float(s) for s in cols[8]], dtype=np.float64),
            age_days=np.asarray(cols[9], dtype=np.float64),
            still_seen=np.asarray(cols[10], dtype=bool),
        )


@dataclass(frozen=True)
class Candidates:
    """Lines the model flagged in this pass (one entry each)."""

    property_ids: IntArray
    document_types: np.ndarray
    account_codes: np.ndarray
    kinds: np.ndarray
    scores: FloatArray
    periods: IntArray | None = None  # period ordinals (month-aware weights); None: months ignored

    @property
    def n(self) -> int:
        return len(self.scores)


@dataclass
class Learned:
    """Per candidate: the learned confidence that its evidence is normal, and what follows."""

    confidence: FloatArray
    scores: FloatArray  # the score after learning
    flagged: np.ndarray  # still flagged after learning
    suppressed: np.ndarray  # flagged, but suppressed (auto-suppression on and confidence >= threshold)
    reasons: list[str]
    verdict_ids: list[tuple[int, ...]]  # the verdicts that taught each candidate (dismissals and confirmations)
    applicable_verdicts: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def applicable(
    verdicts: VerdictArrays,
    present: dict[tuple[int, str, str, int], float],
    lookback_days: float,
    context_properties: set[int] | None = None,
) -> np.ndarray:
    """Mask of the verdicts that may teach: recent, latest on their line, on a line still as seen.

    ``present`` maps each line of this pass's context (property, document type, account, period)
    to its amount (NaN for a posting the model reported absent).  A verdict on a property outside
    the context (``context_properties``; None: every property is in it) is judged by
    ``still_seen`` instead.
    """
    mask = verdicts.age_days <= lookback_days
    latest: dict[tuple[int, str, str, int], int] = {}
    for i in range(verdicts.n):  # oldest first: a later verdict on the line replaces an earlier one
        latest[_line(verdicts, i)] = i
    keep = np.zeros(verdicts.n, dtype=bool)
    keep[list(latest.values())] = True
    mask &= keep
    for i in np.flatnonzero(mask):
        if context_properties is not None and int(verdicts.property_ids[i]) not in context_properties:
            mask[i] = bool(verdicts.still_seen[i])
            continue
        seen = verdicts.amounts[i]
        now = present.get(_line(verdicts, int(i)))
        if now is None:
            mask[i] = False  # the line was removed by reprocessing: kept, not applied
        elif not (np.isnan(seen) and np.isnan(now)) and not np.isclose(seen, now, rtol=0.0, atol=0.005):
            mask[i] = False  # the amount changed since the verdict: a new fact
    return mask


def _line(v: VerdictArrays, i: int) -> tuple[int, str, str, int]:
    return (int(v.property_ids[i]), str(v.document_types[i]), str(v.account_codes[i]), int(v.periods[i]))


def learn(
    verdicts: VerdictArrays,
    candidates: Candidates,
    *,
    usable: np.ndarray | None = None,
    suppression_threshold: float | None = None,
) -> Learned:
    """Learned confidence, score and status of each candidate from the usable verdicts.

    ``suppression_threshold`` None: auto-suppression off (learning lowers scores only).
    """
    usable = np.ones(verdicts.n, dtype=bool) if usable is None else usable
    idx = np.flatnonzero(usable)
    # Index the usable verdicts by (document type, account, kind): candidates look up one bucket.
    buckets: dict[tuple[str, str, str], list[int]] = {}
    for i in idx:
        buckets.setdefault(
            (str(verdicts.document_types[i]), str(verdicts.account_codes[i]), str(verdicts.kinds[i])), []
        ).append(int(i))
    n = candidates.n
    confidence = np.zeros(n)
    normal_z = np.ones(n)  # the strongest dismissed evidence covering each candidate
    reasons = [""] * n
    taught: list[tuple[int, ...]] = [()] * n
    z = np.array([z_from_score(float(s)) for s in candidates.scores]) if n else np.zeros(0)
    for c in range(n):
        kind = str(candidates.kinds[c])
        if kind in NEVER_LEARNED:
            continue
        bucket = buckets.get((str(candidates.document_types[c]), str(candidates.account_codes[c]), kind))
        if not bucket:
            continue
        month = int(candidates.periods[c]) % 12 if candidates.periods is not None else None
        w = _weigh(verdicts, bucket, prop=int(candidates.property_ids[c]), month=month, kind=kind, z=float(z[c]))
        taught[c] = tuple(w.used)
        if w.dismissed == 0.0:
            if w.confirmed:
                reasons[c] = f"kept: {kind.replace('_', ' ')} confirmed before on {candidates.account_codes[c]}"
            continue
        confidence[c] = w.dismissed / (w.dismissed + w.confirmed + PRIOR)
        normal_z[c] = w.normal_z
        reasons[c] = _reason(w.own_dismissed, len(w.peer_properties), str(candidates.account_codes[c]), kind)
    # Evidence is re-read against what was dismissed as normal: at the dismissed strength it is
    # Z_HALF (the flag line) with the verdicts even (c = 0.5), half that with two to one.
    learning = confidence >= LEARN_MIN_CONFIDENCE
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(learning, (1.0 - confidence) / np.maximum(confidence, 1e-9), 1.0)
        new_z = np.where(learning, np.minimum(z, z / normal_z * Z_HALF * odds), z)
    scores = np.where(learning, score_from_z(new_z), candidates.scores) if n else np.zeros(0)
    flagged = scores >= FLAG_SCORE
    suppressed = np.zeros(n, dtype=bool)
    if suppression_threshold is not None:
        # A suppressed line keeps its model score and stays in the list, with its reason.
        suppressed = confidence >= suppression_threshold
        scores = np.where(suppressed, candidates.scores, scores)
        flagged = flagged | suppressed
    return Learned(
        confidence=confidence,
        scores=scores,
        flagged=flagged,
        suppressed=suppressed,
        reasons=reasons,
        verdict_ids=taught,
        applicable_verdicts=verdicts.ids[usable],
    )


@dataclass
class _Weighed:
    dismissed: float = 0.0
    confirmed: float = 0.0
    normal_z: float = 1.0  # the strongest dismissed evidence covering the candidate
    own_dismissed: int = 0
    peer_properties: set[int] = field(default_factory=set)
    used: list[int] = field(default_factory=list)


def _weigh(verdicts: VerdictArrays, bucket: list[int], *, prop: int, month: int | None, kind: str, z: float) -> _Weighed:
    """The weight of the dismissals covering a candidate and of the confirmations against it."""
    w = _Weighed()
    for i in bucket:
        own = int(verdicts.property_ids[i]) == prop
        weight = SAME_SERIES_WEIGHT if own else PEER_PROPERTY_WEIGHT
        if month is not None and kind in MONTH_BOUND_KINDS and int(verdicts.periods[i]) % 12 != month:
            weight *= OTHER_MONTH_FACTOR
        dismissed_z = z_from_score(float(verdicts.scores[i]))
        if verdicts.is_anomaly[i]:
            w.confirmed += weight
        elif z <= COVER_RATIO * dismissed_z:
            w.dismissed += weight
            w.normal_z = max(w.normal_z, dismissed_z)
            if own:
                w.own_dismissed += 1
            else:
                w.peer_properties.add(int(verdicts.property_ids[i]))
        else:
            continue
        w.used.append(int(verdicts.ids[i]))
    return w


def _reason(own: int, peers: int, account: str, kind: str) -> str:
    what = kind.replace("_", " ")
    parts = []
    if own:
        parts.append(f"{own} dismissed false positive{'s' if own != 1 else ''} on {account} at this property")
    if peers:
        parts.append(
            f"{'the same' if own else 'dismissed'} on {account} at {peers} other propert{'ies' if peers != 1 else 'y'}"
        )
    return f"like {' and '.join(parts)} ({what})"
