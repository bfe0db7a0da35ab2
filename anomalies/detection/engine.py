"""detect_anomalies: the whole detection pass over a LineTable (Django-free).

Evidence per cell (every period of every modelled series, backfill over the history):

* statistical (``robust_z``): the amount against its context predictions (previous months, next
  months, same month in other years) standardised by the series' own robust scale; a sustained
  new level at its first month; a sign against the series' usual sign; a posting in a month that
  is always empty (snow removal in July);
* PyOD (when ``use_pyod``): a per-series detector chosen by rules / LLM / cross-validation, fitted
  on the series' feature history through the ModelProvider (the model cache), scoring all of the
  series' periods in one call.  Its score is calibrated against its own training scores and can
  only *add* to statistical evidence that is already there (a detector fitted on 36 months
  always finds a "most unusual" month, so on its own it cannot tell an error from a normal
  extreme);
* statement arithmetic (:mod:`.statements`) on the total lines, which are never scored as series.

A misclassification (amount moved to the neighbouring account of the same document) shows up
as two opposite deviations; they are paired and reported once, on the account that received the
amount.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from typing import Any

import numpy as np

from kernel.vocabulary import PATTERN_MISSING, PATTERN_NAMES, PATTERN_NONE

from .characteristics import series_characteristics
from .detectors import MODEL_VERSION, FittedModel, train_model
from .explanation import Explanation, explain
from .features import (
    FEATURE_NAMES,
    AnomalyFeatureEngineer,
    SeriesContext,
    compute_context,
)
from .peers import PeerStats
from .provider import ModelProvider, ModelRequest, SeriesModelKey, TrainingProvider
from .reconcile import Reconciliation, reconcile
from .scoring import FLAG_SCORE, score_from_z, severity
from .selection import LLMConfig, ModelSelection, select_optimal_model_llm
from .statements import StatementFinding, check_statements
from .table import FloatArray, IntArray, LineTable, SeriesPanel, build_panel

MIN_HISTORY = 4  # series with 1-3 points are reported as insufficient history, not modelled
SIGN_FLIP_Z = 8.0  # evidence of an amount against a series that is always of the other sign
OFF_SEASON_Z = 8.0  # evidence of a material posting in a month that is always empty
# PyOD adds evidence only where the statistics already see something (z >= PYOD_GATE_Z), by at
# most PYOD_MAX_BOOST: it refines the ranking, it cannot raise an alarm on its own.
PYOD_GATE_Z = 3.0
# An error signature adds PATTERN_BONUS to a deviation of at least PATTERN_GATE_Z scales.
PATTERN_GATE_Z = 3.0
PATTERN_BONUS = 2.5
PYOD_WEIGHT = 0.5
PYOD_MAX_BOOST = 3.0
PAIR_MATCH = 0.10  # misclassification: the two deviations cancel to within 10 %
PAIR_MAX_DISTANCE = 2.0
PAIR_PARTNER_Z = 1.5  # lines at most two positions apart in the document
CV_INJECTIONS = ("decimal_shift", "sign_flip", "spike", "duplicate")


@dataclass
class Finding:
    row: int  # table row, -1 for an absent posting
    property_id: int
    document_type: str
    account_code: str
    period: int
    amount: float
    expected_value: float
    z_score: float
    percentage_change: float
    direction: str
    anomaly_score: float
    severity: str
    anomaly_type: str
    detector: str
    model_key: str
    model_version: str
    threshold: float
    contributions: list[dict[str, Any]]
    explanation: Explanation
    related_rows: tuple[int, ...] = ()


@dataclass
class InsufficientHistory:
    property_id: int
    document_type: str
    account_code: str
    n_points: int
    rows: tuple[int, ...]


@dataclass
class SelectionRecord:
    key: SeriesModelKey
    selection: ModelSelection


@dataclass
class DetectionResult:
    """Per table row (index = table row; unscored rows have NaN score and is_anomaly False)."""

    anomaly_score: FloatArray
    is_anomaly: np.ndarray
    severity: np.ndarray
    expected_value: FloatArray
    z_score: FloatArray
    percentage_change: FloatArray
    direction: np.ndarray
    anomaly_type: np.ndarray
    detector: np.ndarray
    model_key: np.ndarray
    model_version: np.ndarray
    threshold: FloatArray
    findings: list[Finding]
    selections: list[SelectionRecord]
    insufficient_history: list[InsufficientHistory]
    statement_findings: list[StatementFinding]
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> np.ndarray:
        return np.isfinite(self.anomaly_score)


def detect_anomalies(
    table: LineTable,
    *,
    use_pyod: bool = True,
    model_provider: ModelProvider | None = None,
    llm: LLMConfig | None = None,
    seed: int = 0,
    peers: PeerStats | None = None,
    score_mask: np.ndarray | None = None,
) -> DetectionResult:
    """Score every non-total line of ``table`` and check every statement.

    A line's result depends only on its own series, the other series of its property (statement
    identities, misclassification pairs within a document) and ``peers``: never on which other
    properties or documents the table holds, so any grouping of a portfolio into calls gives the
    same results.  ``peers`` is the portfolio-wide peer evidence (:class:`~.peers.PeerStats`);
    when omitted it is computed from ``table`` itself, which is then taken to be the whole
    portfolio.  Callers that score part of a portfolio must pass the portfolio's statistics.

    ``score_mask`` (bool per table row): only those rows are scored and returned; the others are
    history and context (their series are still read, their documents not reported).  Give
    every row of a document or none (statement checks and misclassification pairs are per
    document).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    provider = model_provider or TrainingProvider()
    panel = build_panel(table)
    if peers is None:
        peers = PeerStats.from_table(table)
    ctx = compute_context(panel, peers)
    feats = AnomalyFeatureEngineer().transform(ctx)
    timings["features"] = _ms(t0)

    n = table.n_rows
    row_mask = np.ones(n, dtype=bool) if score_mask is None else np.asarray(score_mask, dtype=bool)
    if row_mask.shape != (n,):
        raise ValueError(f"score_mask has shape {row_mask.shape}, expected ({n},)")
    cell_mask = _cell_mask(table, panel, row_mask)
    observed = (panel.rows >= 0) & cell_mask
    modelled = ctx.n_observed >= MIN_HISTORY
    t_rec = time.perf_counter()
    rec = reconcile(table, ctx)
    timings["reconcile"] = _ms(t_rec)
    stat_z = _apply_reconciliation(_statistical_evidence(ctx), ctx, rec)
    detector_name = np.full(panel.n_series, "statistical:robust_z", dtype=object)
    model_keys = np.full(panel.n_series, "", dtype=object)
    versions = np.full(panel.n_series, f"{MODEL_VERSION}:robust_z", dtype=object)
    thresholds = np.full(panel.n_series, 5.0)
    selections: list[SelectionRecord] = []
    pyod_z = np.zeros_like(stat_z)

    t1 = time.perf_counter()
    if use_pyod and (modelled & cell_mask.any(axis=1)).any():
        pyod_z = _run_pyod(
            panel,
            ctx,
            feats.values,
            modelled & cell_mask.any(axis=1),
            provider,
            llm,
            seed,
            detector_name,
            model_keys,
            versions,
            thresholds,
            selections,
            gate=(stat_z >= PYOD_GATE_Z) & cell_mask,
        )
    timings["models"] = _ms(t1)

    evidence = stat_z.copy()
    if use_pyod:
        gate = stat_z >= PYOD_GATE_Z
        evidence = np.where(gate, stat_z + np.clip(PYOD_WEIGHT * (pyod_z - 3.0), 0.0, PYOD_MAX_BOOST), stat_z)
    evidence = np.where(modelled[:, None], evidence, 0.0)

    t2 = time.perf_counter()
    anomaly_type = _classify(ctx, evidence, rec.level)
    partners = _pair_misclassifications(panel, ctx, evidence, anomaly_type)
    scores = score_from_z(evidence)
    flagged = (scores >= FLAG_SCORE) & modelled[:, None] & cell_mask
    timings["scoring"] = _ms(t2)

    result = _empty_result(n)
    result.selections = selections
    result.timings_ms = timings
    result.insufficient_history = [
        InsufficientHistory(
            int(panel.property_ids[s]),
            str(panel.document_types[s]),
            str(panel.account_codes[s]),
            int(ctx.n_observed[s]),
            tuple(int(r) for r in panel.rows[s] if r >= 0 and row_mask[r]),
        )
        for s in np.flatnonzero(~modelled & (ctx.n_observed > 0) & cell_mask.any(axis=1))
    ]
    s_idx, t_idx = np.nonzero(observed & modelled[:, None])
    rows = panel.rows[s_idx, t_idx]
    amount = panel.values[s_idx, t_idx]
    expected = ctx.expected[s_idx, t_idx]
    result.anomaly_score[rows] = scores[s_idx, t_idx]
    result.is_anomaly[rows] = flagged[s_idx, t_idx]
    result.expected_value[rows] = expected
    signed_z = np.sign(ctx.y - ctx.expected_y) * evidence
    result.z_score[rows] = signed_z[s_idx, t_idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(np.abs(expected) > 0, (amount - expected) / np.abs(expected) * 100.0, np.nan)
    result.percentage_change[rows] = pct
    result.direction[rows] = np.where(amount >= expected, "up", "down")
    result.anomaly_type[rows] = np.where(flagged[s_idx, t_idx], anomaly_type[s_idx, t_idx], "")
    result.detector[rows] = detector_name[s_idx]
    result.model_key[rows] = model_keys[s_idx]
    result.model_version[rows] = versions[s_idx]
    result.threshold[rows] = thresholds[s_idx]
    for row, sev_score in zip(rows[flagged[s_idx, t_idx]], scores[s_idx, t_idx][flagged[s_idx, t_idx]], strict=True):
        result.severity[row] = severity(float(sev_score))

    t3 = time.perf_counter()
    result.findings = _findings(
        panel,
        ctx,
        feats.values,
        flagged,
        scores,
        evidence,
        anomaly_type,
        partners,
        detector_name,
        model_keys,
        versions,
        thresholds,
        modelled,
        cell_mask,
    )
    scored_rows = np.flatnonzero(row_mask)
    statements = check_statements(table if score_mask is None else table.take(scored_rows))
    if score_mask is not None:
        statements = [replace_rows(sf, scored_rows) for sf in statements]
    result.statement_findings = _unexplained(statements, table, result.is_anomaly)
    for sf in result.statement_findings:
        result.anomaly_type[sf.row] = sf.anomaly_type
        result.is_anomaly[sf.row] = True
        ratio = abs(sf.difference) / sf.tolerance
        result.anomaly_score[sf.row] = float(score_from_z(np.array([5.0 * ratio]))[0])
        result.severity[sf.row] = severity(float(result.anomaly_score[sf.row]))
        result.expected_value[sf.row] = sf.expected_value
        result.detector[sf.row] = "statement:footing" if sf.anomaly_type == "footing" else "statement:balance"
    timings["findings"] = _ms(t3)
    timings["total"] = _ms(t0)
    return result


def _cell_mask(table: LineTable, panel: SeriesPanel, row_mask: np.ndarray) -> np.ndarray:
    """(S,T): the cell belongs to a document (property, document type, period) with a scored row.

    Absent postings have no row: they are reported when their document is scored.
    """
    if panel.n_series == 0:
        return np.zeros(panel.values.shape, dtype=bool)
    if row_mask.all():
        return np.ones(panel.values.shape, dtype=bool)
    rows = np.flatnonzero(row_mask & (panel.series_of_row >= 0))
    n_docs = int(panel.document_ids.max()) + 1
    by_doc = np.zeros((n_docs, panel.n_periods), dtype=bool)
    by_doc[panel.document_ids[panel.series_of_row[rows]], table.periods[rows] - panel.period0] = True
    return by_doc[panel.document_ids]


def replace_rows(sf: StatementFinding, rows: np.ndarray) -> StatementFinding:
    """A statement finding of a sub-table with its rows mapped back to the full table's."""
    return _replace(sf, row=int(rows[sf.row]), covered_rows=tuple(int(rows[r]) for r in sf.covered_rows))


def _unexplained(findings: list[StatementFinding], table: LineTable, flagged: np.ndarray) -> list[StatementFinding]:
    """Drop a balance mismatch that a flagged line of the same balance sheet already explains.

    Real books recompute totals, so an error on a balance-sheet line also unbalances the
    sheet: one event, reported once, on the line.
    """
    out = []
    footed = {
        (table.property_ids[sf.row], table.periods[sf.row], table.document_types[sf.row])
        for sf in findings
        if sf.anomaly_type == "footing"
    }
    for sf in findings:
        doc = (table.property_ids[sf.row], table.periods[sf.row], table.document_types[sf.row])
        if sf.anomaly_type == "balance_mismatch" and doc in footed:
            continue  # a class total that does not foot already explains the imbalance
        if sf.anomaly_type == "balance_mismatch":
            same_doc = (
                (table.property_ids == table.property_ids[sf.row])
                & (table.periods == table.periods[sf.row])
                & (table.document_types == table.document_types[sf.row])
                & ~table.is_total
            )
            if np.any(flagged[same_doc]):
                continue
        out.append(sf)
    return out


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000.0, 3)


def _empty_result(n: int) -> DetectionResult:
    def objects(value: str) -> np.ndarray:
        return np.full(n, value, dtype=object)

    return DetectionResult(
        anomaly_score=np.full(n, np.nan),
        is_anomaly=np.zeros(n, dtype=bool),
        severity=objects(""),
        expected_value=np.full(n, np.nan),
        z_score=np.full(n, np.nan),
        percentage_change=np.full(n, np.nan),
        direction=objects(""),
        anomaly_type=objects(""),
        detector=objects(""),
        model_key=objects(""),
        model_version=objects(""),
        threshold=np.full(n, np.nan),
        findings=[],
        selections=[],
        insufficient_history=[],
        statement_findings=[],
    )


def _statistical_evidence(ctx: SeriesContext) -> FloatArray:
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


def _apply_reconciliation(z: FloatArray, ctx: SeriesContext, rec: Reconciliation) -> FloatArray:
    # A lasting break that is an exact constant share of one line (that line was rescaled) is as
    # certain as a keying signature.
    by_signature = rec.blamed & ((rec.signature != PATTERN_NONE) | (rec.level & (rec.rank <= -300.0)))
    z = np.where(by_signature, np.maximum(z, BLAME_SIGNATURE_Z), z)
    z = np.where(rec.blamed & ~by_signature, np.maximum(z, BLAME_FIT_Z), z)
    z = np.where(rec.confirmed, np.minimum(z, CONFIRMED_MAX_Z), z)
    # The exact correction names the error better than the series' own context can.
    ctx.pattern[by_signature] = rec.signature[by_signature]
    return z


def _classify(ctx: SeriesContext, evidence: FloatArray, level_blamed: np.ndarray | None = None) -> np.ndarray:
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


def _pair_misclassifications(
    panel: SeriesPanel, ctx: SeriesContext, evidence: FloatArray, anomaly_type: np.ndarray
) -> dict[tuple[int, int], int]:
    """Pair opposite, cancelling deviations of neighbouring lines of one document.

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
        code = str(panel.account_codes[s])
        best, best_err = -1, PAIR_MATCH
        for o in members:
            if o == s or (o, t) in used or not np.isfinite(panel.values[o, t]):
                continue
            # The partner must deviate as well: noise on a volatile neighbour cancelling a
            # deviation by chance is no misclassification.
            if not np.nan_to_num(ctx.point_z[o, t]) >= PAIR_PARTNER_Z or anomaly_type[o, t] == "seasonal":
                continue
            if abs(panel.row_order[o] - panel.row_order[s]) > PAIR_MAX_DISTANCE:
                continue
            if str(panel.account_codes[o])[:1] != code[:1]:
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


def _contributions(x_series: FloatArray, t: int, observed: np.ndarray) -> list[dict[str, Any]]:
    """Each feature's robust distance from the series' own history, as shares of the total."""
    hist = x_series[observed]
    med = np.median(hist, axis=0)
    mad = 1.4826 * np.median(np.abs(hist - med), axis=0)
    scale = np.maximum(mad, 1e-6 + 0.01 * np.abs(med))
    dist = np.abs((x_series[t] - med) / scale)
    dist = np.minimum(dist, 1e3)
    total = float(dist.sum()) or 1.0
    order = np.argsort(-dist)[:5]
    return [
        {
            "feature": FEATURE_NAMES[i],
            "value": round(float(x_series[t, i]), 6),
            "contribution": round(float(dist[i] / total), 4),
        }
        for i in order
        if dist[i] > 0
    ]


def _findings(
    panel: SeriesPanel,
    ctx: SeriesContext,
    feats: FloatArray,
    flagged: np.ndarray,
    scores: FloatArray,
    evidence: FloatArray,
    anomaly_type: np.ndarray,
    partners: dict[tuple[int, int], int],
    detector_name: np.ndarray,
    model_keys: np.ndarray,
    versions: np.ndarray,
    thresholds: FloatArray,
    modelled: np.ndarray,
    cell_mask: np.ndarray,
) -> list[Finding]:
    out: list[Finding] = []
    absent = (panel.rows < 0) & panel.document_present
    report = flagged.copy()
    report |= absent & (scores >= FLAG_SCORE) & modelled[:, None] & cell_mask
    for s, t in np.argwhere(report):
        started = time.perf_counter()
        row = int(panel.rows[s, t])
        amount = float(panel.values[s, t])
        expected = float(ctx.expected[s, t])
        kind = "missing" if row < 0 else str(anomaly_type[s, t])
        observed = panel.rows[s] >= 0
        contributions = _contributions(feats[s], int(t), observed)
        partner = partners.get((int(s), int(t)))
        explanation = explain(
            kind,
            contributions,
            amount=amount,
            expected=expected,
            computation_time_ms=0.0,
            usual_sign=float(ctx.usual_sign[s]),
            step_ratio=float(ctx.step_ratio[s, t]) if np.isfinite(ctx.step_ratio[s, t]) else None,
            partner_account=str(panel.account_codes[partner]) if partner is not None else None,
            seasonal_family=bool(ctx.use_seasonal[s] and not ctx.use_local[s]),
        )
        explanation.computation_time_ms = round((time.perf_counter() - started) * 1000.0, 3)
        amt = 0.0 if row < 0 else amount
        pct = (amt - expected) / abs(expected) * 100.0 if expected else float("nan")
        out.append(
            Finding(
                row=row,
                property_id=int(panel.property_ids[s]),
                document_type=str(panel.document_types[s]),
                account_code=str(panel.account_codes[s]),
                period=int(panel.period0 + t),
                amount=amount,
                expected_value=expected,
                z_score=float(np.sign(amt - expected) * evidence[s, t]),
                percentage_change=pct,
                direction="up" if amt >= expected else "down",
                anomaly_score=float(scores[s, t]),
                severity=severity(float(scores[s, t])),
                anomaly_type=kind,
                detector=str(detector_name[s]),
                model_key=str(model_keys[s]),
                model_version=str(versions[s]),
                threshold=float(thresholds[s]),
                contributions=contributions,
                explanation=explanation,
                related_rows=(int(panel.rows[partner, t]),) if partner is not None else (),
            )
        )
    return out


def synthetic_anomaly_rows(panel: SeriesPanel, series: IntArray, seed: int) -> dict[int, FloatArray]:
    """Feature rows of each given series with one synthetic error injected per kind.

    The errors (x10, sign flip, x4 spike, x2) are injected into copies of the amount series and
    the features recomputed for all copies in one vectorised pass, so cross-validation sees the
    errors exactly as detection would.
    """
    kinds = len(CV_INJECTIONS)
    values = np.repeat(panel.values[series], kinds, axis=0)
    positions = np.zeros(len(values), dtype=np.int64)
    for j, s in enumerate(series):
        # One generator per series, seeded by the series' identity: its injections do not depend
        # on which other series are cross-validated in the same pass.
        rng = np.random.default_rng(series_seed(panel, int(s), seed))
        obs = np.flatnonzero(np.isfinite(panel.values[s]) & (panel.values[s] != 0))
        for k in range(kinds):
            positions[j * kinds + k] = rng.choice(obs) if len(obs) else 0
    factors = np.tile(np.array([10.0, -1.0, 4.0, 2.0]), len(series))
    rows_idx = np.arange(len(values))
    values[rows_idx, positions] *= factors
    mini = SeriesPanel(
        period0=panel.period0,
        values=values,
        rows=np.where(np.isfinite(values), 0, -1),
        document_present=np.repeat(panel.document_present[series], kinds, axis=0),
        property_ids=np.repeat(panel.property_ids[series], kinds),
        property_types=np.repeat(panel.property_types[series], kinds),
        document_types=np.repeat(panel.document_types[series], kinds),
        account_codes=np.repeat(panel.account_codes[series], kinds),
        row_order=np.repeat(panel.row_order[series], kinds),
        document_ids=np.arange(len(values), dtype=np.int64),
        series_of_row=np.empty(0, dtype=np.int64),
    )
    feats = AnomalyFeatureEngineer().transform(compute_context(mini)).values
    return {
        int(s): feats[i * kinds + np.arange(kinds), positions[i * kinds : (i + 1) * kinds]] for i, s in enumerate(series)
    }


def series_seed(panel: SeriesPanel, s: int, seed: int) -> int:
    """A seed per series from its identity (property, document type, account) and the run seed."""
    text = f"{seed}|{int(panel.property_ids[s])}|{panel.document_types[s]}|{panel.account_codes[s]}"
    return zlib.crc32(text.encode())


def _own_span(values: FloatArray) -> FloatArray:
    """The series from its first to its last observed month (the panel may be wider)."""
    idx = np.flatnonzero(np.isfinite(values))
    return values[idx[0] : idx[-1] + 1] if len(idx) else values[:0]


def _run_pyod(
    panel: SeriesPanel,
    ctx: SeriesContext,
    feats: FloatArray,
    modelled: np.ndarray,
    provider: ModelProvider,
    llm: LLMConfig | None,
    seed: int,
    detector_name: np.ndarray,
    model_keys: np.ndarray,
    versions: np.ndarray,
    thresholds: FloatArray,
    selections: list[SelectionRecord],
    gate: np.ndarray | None = None,
) -> FloatArray:
    """Select, train (through the provider) and apply one PyOD detector per modelled series."""
    out = np.zeros(panel.values.shape)
    series = np.flatnonzero(modelled)
    # Selection (rules -> LLM -> cross-validation) runs per series, on the series' own history and
    # characteristics only: the choice never depends on which other series share the table.  The
    # synthetic errors of cross-validation are made, the first time a model must be trained, for
    # every series of the call in one vectorised pass (each series with its own seed).
    injected: dict[int, FloatArray] = {}
    requests = {
        int(s): ModelRequest(
            SeriesModelKey(int(panel.property_ids[s]), str(panel.document_types[s]), str(panel.account_codes[s])),
            "auto",
            {"min_history": MIN_HISTORY},
        )
        for s in series
    }
    provider.prefetch(list(requests.values()))  # the call's cached models in bulk
    for s in series:
        observed = panel.rows[s] >= 0
        x = feats[s][observed]
        request = requests[int(s)]
        key = request.series
        selection_box: list[ModelSelection] = []

        def train(s: int = int(s), x: FloatArray = x, box: list[ModelSelection] = selection_box) -> FittedModel:
            if s not in injected:
                pending = np.array([i for i in series if int(i) not in injected], dtype=np.int64)
                injected.update(synthetic_anomaly_rows(panel, pending, seed))
            chars = series_characteristics(_own_span(panel.values[s]), x)
            selection = _select(chars, llm, x, injected[s], seed)
            box.append(selection)
            return train_model(selection.selected_model, x, seed=seed, feature_names=FEATURE_NAMES)

        model = provider.get_or_train(request, x, train)
        if selection_box:
            selections.append(SelectionRecord(key=key, selection=selection_box[0]))
        # PyOD only refines cells the statistics already gate in: a series without one is not
        # scored at all (its result could not change anything).
        if gate is None or gate[s].any():
            z = model.calibrated_z(feats[s])  # every period of the series in one call
            out[s] = np.where(np.isfinite(z), z, 0.0)
        detector_name[s] = f"pyod:{model.model_type}+robust_z"
        model_keys[s] = request.model_key  # the key of the cache entry that scored the series
        versions[s] = model.model_version
        thresholds[s] = model.threshold
    del ctx
    return out


def _select(
    chars: dict[str, Any], llm: LLMConfig | None, x: FloatArray, x_anomalies: FloatArray, seed: int
) -> ModelSelection:
    """Model selection for one series, from its own characteristics and history only."""
    return select_optimal_model_llm(chars, llm=llm, x_history=x, x_anomalies=x_anomalies, seed=seed)
