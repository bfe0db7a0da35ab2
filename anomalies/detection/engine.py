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

The steps live in their own modules: context and features (:mod:`.context`, :mod:`.features`),
the PyOD step (:mod:`.modelling`), evidence and misclassification pairs (:mod:`.evidence`),
reported findings (:mod:`.findings`).  The names other layers import stay importable from here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .evidence import apply_reconciliation, classify, pair_misclassifications, statistical_evidence
from .features import AnomalyFeatureEngineer, compute_context
from .findings import CellVerdicts, Finding, build_findings
from .modelling import (
    MIN_HISTORY,
    SelectionRecord,
    SeriesModels,
    run_pyod,
    series_seed,
    synthetic_anomaly_rows,
)
from .peers import PeerStats
from .provider import ModelProvider, SeriesModelKey, TrainingProvider
from .reconcile import reconcile
from .scoring import FLAG_SCORE, score_from_z, severity
from .selection import LLMConfig
from .statements import StatementFinding, TotalOutcome, check_statements
from .structure import StatementStructure, learn_statements, sections_of_rows
from .table import FloatArray, LineTable, SeriesPanel, build_panel

__all__ = [
    "MIN_HISTORY",
    "DetectionResult",
    "Finding",
    "InsufficientHistory",
    "ModelProvider",
    "SelectionRecord",
    "SeriesModelKey",
    "TrainingProvider",
    "detect_anomalies",
    "series_seed",
    "synthetic_anomaly_rows",
]

# PyOD adds evidence only where the statistics already see something (z >= PYOD_GATE_Z), by at
# most PYOD_MAX_BOOST: it refines the ranking, it cannot raise an alarm on its own.
PYOD_GATE_Z = 3.0
PYOD_WEIGHT = 0.5
PYOD_MAX_BOOST = 3.0


@dataclass
class InsufficientHistory:
    property_id: int
    document_type: str
    account_code: str
    n_points: int
    rows: tuple[int, ...]


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
    # Per total line of a checked document: foots / does not foot / structure not learned.
    total_outcomes: list[TotalOutcome] = field(default_factory=list)
    structures: dict[tuple[int, str], StatementStructure] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    # (n_rows, len(FEATURE_NAMES)) feature row of each scored line (NaN elsewhere), for attribution.
    features: FloatArray | None = None

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
    learned = learn_statements(table)  # statement structure, from every month of the table
    rec = reconcile(ctx, learned)
    timings["reconcile"] = _ms(t_rec)
    stat_z = apply_reconciliation(statistical_evidence(ctx), ctx, rec)
    models = SeriesModels.statistical(panel.n_series)
    selections: list[SelectionRecord] = []
    pyod_z = np.zeros_like(stat_z)

    t1 = time.perf_counter()
    # PyOD only refines cells the statistics gate in, so only series holding such a candidate
    # among the cells scored now are selected, fitted and logged: elsewhere PyOD costs nothing.
    pyod_series = modelled & ((stat_z >= PYOD_GATE_Z) & cell_mask).any(axis=1)
    if use_pyod and pyod_series.any():
        pyod_z, selections = run_pyod(
            panel=panel,
            feats=feats.values,
            modelled=pyod_series,
            gate=(stat_z >= PYOD_GATE_Z) & cell_mask,
            provider=provider,
            llm=llm,
            seed=seed,
            models=models,
        )
    timings["models"] = _ms(t1)

    evidence = stat_z.copy()
    if use_pyod:
        gate = stat_z >= PYOD_GATE_Z
        evidence = np.where(gate, stat_z + np.clip(PYOD_WEIGHT * (pyod_z - 3.0), 0.0, PYOD_MAX_BOOST), stat_z)
    evidence = np.where(modelled[:, None], evidence, 0.0)

    t2 = time.perf_counter()
    anomaly_type = classify(ctx, evidence, rec.level)
    partners = pair_misclassifications(panel, ctx, evidence, anomaly_type, sections_of_rows(table))
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
    result.detector[rows] = models.detector[s_idx]
    result.model_key[rows] = models.model_key[s_idx]
    result.model_version[rows] = models.version[s_idx]
    result.threshold[rows] = models.threshold[s_idx]
    result.features = np.full((n, feats.values.shape[-1]), np.nan)
    result.features[rows] = feats.values[s_idx, t_idx]
    for row, sev_score in zip(rows[flagged[s_idx, t_idx]], scores[s_idx, t_idx][flagged[s_idx, t_idx]], strict=True):
        result.severity[row] = severity(float(sev_score))

    t3 = time.perf_counter()
    verdicts = CellVerdicts(
        flagged=flagged,
        scores=scores,
        evidence=evidence,
        anomaly_type=anomaly_type,
        partners=partners,
        reportable=modelled[:, None] & cell_mask,
    )
    result.findings = build_findings(panel, ctx, feats.values, verdicts, models)
    # The structure is learned from every month of the table (the properties' whole history);
    # only the scored documents are checked.
    statements = check_statements(table, row_mask, learned)
    result.total_outcomes = statements.outcomes
    result.structures = statements.structures
    result.statement_findings = _unexplained(statements.findings, table, result.is_anomaly)
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
