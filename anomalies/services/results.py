"""The engine's result, read out as one ScoredLine per line of a chunk's documents.

``engine_result`` runs the Django-free engine over a property's whole table (its context);
``scored_lines`` reads the rows of the chunk's documents out of it, each step below taking the
typed :class:`EngineRun`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from anomalies.detection import engine as detection_engine
from anomalies.detection.detectors import MODEL_VERSION as DETECTION_MODEL_VERSION
from anomalies.detection.explanation import ACTIONS
from anomalies.detection.peers import PeerStats
from anomalies.detection.statements import StatementFinding, TotalOutcome
from anomalies.detection.structure import FOOTS
from anomalies.detection.table import LineTable
from anomalies.models import ModelSelectionLog, Severity
from anomalies.selectors import DetectionInput, TargetDocument
from anomalies.services.feedback import NEW_NORMAL_SEPARATOR, original_account
from anomalies.services.options import EngineOptions
from kernel.values import fitting


@dataclass
class ScoredLine:
    """One result row for a target document: a scored line, or an absent posting (no line item)."""

    document_id: int
    account_code: str
    line_item_id: int | None
    amount: Decimal | None
    anomaly_score: float
    is_anomaly: bool
    severity: str
    anomaly_type: str
    expected_value: float | None
    z_score: float | None
    percentage_change: float | None
    direction: str
    detector: str
    model_key: str
    model_version: str
    contributions: dict[str, Any]
    explanation_text: str
    explanation: dict[str, Any] | None  # AnomalyExplanation fields, for flagged lines
    insufficient_history: bool = False
    features: np.ndarray | None = None  # the engine's feature row of a flagged series line (attribution)


@dataclass
class EngineOutput:
    lines: list[ScoredLine]
    series_modelled: int
    background: np.ndarray | None = None  # feature rows of the context's unflagged lines (attribution)


@dataclass
class ResultColumns:
    """The engine's per-row arrays as Python lists: read row by row, a list costs a fraction of
    numpy's scalar access."""

    anomaly_score: list[float]
    threshold: list[float]
    is_anomaly: list[bool]
    severity: list[str]
    anomaly_type: list[str]
    expected_value: list[float]
    z_score: list[float]
    percentage_change: list[float]
    direction: list[str]
    detector: list[str]
    model_key: list[str]
    model_version: list[str]
    account_codes: list[str]
    line_ids: list[int]

    @classmethod
    def of(cls, result: detection_engine.DetectionResult, table: LineTable) -> ResultColumns:
        return cls(
            anomaly_score=result.anomaly_score.tolist(),
            threshold=result.threshold.tolist(),
            is_anomaly=result.is_anomaly.tolist(),
            severity=[str(v) for v in result.severity.tolist()],
            anomaly_type=[str(v) for v in result.anomaly_type.tolist()],
            expected_value=result.expected_value.tolist(),
            z_score=result.z_score.tolist(),
            percentage_change=result.percentage_change.tolist(),
            direction=[str(v) for v in result.direction.tolist()],
            detector=[str(v) for v in result.detector.tolist()],
            model_key=[str(v) for v in result.model_key.tolist()],
            model_version=[str(v) for v in result.model_version.tolist()],
            account_codes=[str(v) for v in table.account_codes.tolist()],
            line_ids=[int(v) for v in table.line_ids.tolist()],
        )


@dataclass
class EngineRun:
    """The engine's result over a property's table, and the chunk's documents to read out of it."""

    lines: DetectionInput
    table: LineTable
    targets: dict[int, TargetDocument]
    rows_of_doc: dict[int, np.ndarray]
    result: detection_engine.DetectionResult
    columns: ResultColumns
    findings: dict[int, detection_engine.Finding]
    statements: dict[int, StatementFinding]
    insufficient: dict[int, int]  # row -> points in its series
    total_outcomes: dict[int, TotalOutcome]  # total row -> its footing result

    @classmethod
    def of(
        cls,
        *,
        lines: DetectionInput,
        table: LineTable,
        result: detection_engine.DetectionResult,
        targets: dict[int, TargetDocument],
        rows_of_doc: dict[int, np.ndarray],
    ) -> EngineRun:
        return cls(
            lines=lines,
            table=table,
            targets=targets,
            rows_of_doc=rows_of_doc,
            result=result,
            columns=ResultColumns.of(result, table),
            findings={f.row: f for f in result.findings if f.row >= 0},
            statements={sf.row: sf for sf in result.statement_findings},
            insufficient={r: ih.n_points for ih in result.insufficient_history for r in ih.rows},
            total_outcomes={o.row: o for o in result.total_outcomes},
        )


def engine_result(lines: DetectionInput, table: LineTable, options: EngineOptions) -> detection_engine.DetectionResult:
    """The engine's result for every row of a property's table (its documents are all scored)."""
    return detection_engine.detect_anomalies(
        table,
        use_pyod=options.use_pyod,
        model_provider=options.model_provider,
        llm=options.llm,
        seed=options.seed,
        peers=_peers_for(table, lines.peers),
    )


def scored_lines(run: EngineRun) -> EngineOutput:
    """One ScoredLine per line of the chunk's documents, plus their absent postings."""
    lines = [
        line
        for doc_id, rows in run.rows_of_doc.items()
        for r in rows
        if (line := _line_for_row(run, doc_id, int(r))) is not None
    ]
    lines += _absent_lines(run, lines)
    return EngineOutput(lines=lines, series_modelled=_series_modelled(run), background=_background(run))


def _background(run: EngineRun) -> np.ndarray | None:
    """Feature rows of the property's unflagged lines: the background of SHAP values."""
    features = run.result.features
    if features is None:
        return None
    normal = ~run.result.is_anomaly & np.isfinite(features).all(axis=1) & ~run.table.is_total
    return features[normal]


def _peers_for(table: LineTable, peers: PeerStats | None) -> PeerStats | None:
    if peers is None:
        return None
    # A series cut at an accepted new normal keeps its account's portfolio statistics.
    renamed = {str(a): original_account(str(a)) for a in np.unique(table.account_codes) if NEW_NORMAL_SEPARATOR in a}
    return peers.with_aliases(renamed) if renamed else peers


def _line_for_row(run: EngineRun, doc_id: int, r: int) -> ScoredLine | None:
    score = finite(run.columns.anomaly_score[r])
    if score is not None:
        return _scored_line(run, doc_id, r, score)
    if r in run.insufficient:
        return _insufficient_line(run, doc_id, r)
    if r in run.total_outcomes:
        return _total_line(run, doc_id, r, run.total_outcomes[r])
    return None


def _total_line(run: EngineRun, doc_id: int, r: int, outcome: TotalOutcome) -> ScoredLine:
    """A total that foots, or whose structure is not learned yet: checked, not an anomaly."""
    learned = outcome.status == FOOTS
    return _quiet_line(
        run,
        doc_id,
        r,
        expected_value=outcome.expected_value if learned else None,
        detector="statement:footing" if learned else "statement:not_learned",
        contributions={"statement": {"status": outcome.status, "structure": outcome.reason}},
        explanation_text=f"Foots: {outcome.reason}." if learned else f"Not checked: {outcome.reason}.",
    )


def _insufficient_line(run: EngineRun, doc_id: int, r: int) -> ScoredLine:
    n_points = run.insufficient[r]
    needed = detection_engine.MIN_HISTORY
    return _quiet_line(
        run,
        doc_id,
        r,
        expected_value=None,
        detector="insufficient_history",
        contributions={"insufficient_history": {"points": n_points, "needed": needed}},
        explanation_text=f"Insufficient history: {n_points} month(s) of this series; not modelled before {needed}.",
        insufficient_history=True,
    )


def _quiet_line(
    run: EngineRun,
    doc_id: int,
    r: int,
    *,
    expected_value: float | None,
    detector: str,
    contributions: dict[str, Any],
    explanation_text: str,
    insufficient_history: bool = False,
) -> ScoredLine:
    """A line that was looked at and is not an anomaly, with the reason."""
    return ScoredLine(
        document_id=doc_id,
        account_code=original_account(str(run.table.account_codes[r])),
        line_item_id=int(run.table.line_ids[r]),
        amount=run.lines.amounts[r],
        anomaly_score=0.0,
        is_anomaly=False,
        severity=Severity.LOW,
        anomaly_type="none",
        expected_value=expected_value,
        z_score=None,
        percentage_change=None,
        direction="none",
        detector=detector,
        model_key="",
        model_version="",
        contributions=contributions,
        explanation_text=explanation_text,
        explanation=None,
        insufficient_history=insufficient_history,
    )


@dataclass
class _Evidence:
    contributions: dict[str, Any]
    explanation: dict[str, Any] | None
    text: str
    is_statement: bool


def _row_evidence(run: EngineRun, r: int) -> _Evidence:
    """Why the row scored as it did: a statement check, or the engine's per-feature finding."""
    evidence = _Evidence({}, None, "", False)
    statement = run.statements.get(r)
    finding = run.findings.get(r)
    if statement is not None:
        evidence.explanation = _statement_explanation(statement, run)
        evidence.text = statement.sentence
        evidence.contributions["statement"] = evidence.explanation["contributing_factors"][0]
        evidence.is_statement = True
    elif finding is not None:
        evidence.explanation = _finding_explanation(finding)
        evidence.text = finding.explanation.sentence
        evidence.contributions["features"] = finding.contributions
        if finding.related_rows:
            evidence.contributions["related_accounts"] = [
                original_account(str(run.table.account_codes[x])) for x in finding.related_rows if x >= 0
            ]
    detector_threshold = finite(run.columns.threshold[r])
    if detector_threshold is not None:
        evidence.contributions["detector_threshold"] = round(detector_threshold, 6)
    series = run.columns.account_codes[r]
    if NEW_NORMAL_SEPARATOR in series:
        evidence.contributions["series_since"] = series.split(NEW_NORMAL_SEPARATOR, 1)[1]
    return evidence


def _features(run: EngineRun, r: int) -> np.ndarray | None:
    features = run.result.features
    return None if features is None else features[r]


def _scored_line(run: EngineRun, doc_id: int, r: int, score: float) -> ScoredLine:
    col = run.columns
    flagged = bool(col.is_anomaly[r])
    evidence = _row_evidence(run, r)
    # Statement checks are rules, not fitted models: their version is the engine's.
    rule_version = f"{DETECTION_MODEL_VERSION}:{col.detector[r]}" if evidence.is_statement else ""
    return ScoredLine(
        document_id=doc_id,
        account_code=original_account(col.account_codes[r]),
        line_item_id=col.line_ids[r],
        amount=run.lines.amounts[r],
        anomaly_score=score,
        is_anomaly=flagged,
        severity=col.severity[r] or Severity.LOW,
        anomaly_type=(col.anomaly_type[r] or "none") if flagged else "none",
        expected_value=finite(col.expected_value[r]),
        z_score=finite(col.z_score[r]),
        percentage_change=finite(col.percentage_change[r]),
        direction=col.direction[r] or "none",
        detector=col.detector[r],
        model_key=col.model_key[r],
        model_version=col.model_version[r] or rule_version,
        contributions=evidence.contributions,
        explanation_text=evidence.text,
        explanation=evidence.explanation if flagged else None,
        features=_features(run, r) if flagged and not evidence.is_statement else None,
    )


def _absent_lines(run: EngineRun, lines: list[ScoredLine]) -> list[ScoredLine]:
    """Absent postings: a line the series always has is missing from a target document."""
    targets = run.targets
    doc_by_key = {(t.property_id, t.document_type, t.period_ordinal): d for d, t in targets.items() if d in run.rows_of_doc}
    present = {(line.document_id, line.account_code) for line in lines}
    absent: list[ScoredLine] = []
    for f in run.result.findings:
        if f.row >= 0:
            continue
        doc_id = doc_by_key.get((f.property_id, f.document_type, f.period))
        account = original_account(f.account_code)
        # A segment of a series cut by a new normal is "absent" where the other segment has the line.
        if doc_id is None or (doc_id, account) in present:
            continue
        present.add((doc_id, account))
        absent.append(
            ScoredLine(
                document_id=doc_id,
                account_code=account,
                line_item_id=None,
                amount=None,
                anomaly_score=f.anomaly_score,
                is_anomaly=True,
                severity=f.severity,
                anomaly_type=f.anomaly_type,
                expected_value=finite(f.expected_value),
                z_score=finite(f.z_score),
                percentage_change=finite(f.percentage_change),
                direction=f.direction or "none",
                detector=f.detector,
                model_key=f.model_key,
                model_version=f.model_version,
                contributions={"features": f.contributions, "absent_line": True},
                explanation_text=f.explanation.sentence,
                explanation=_finding_explanation(f),
            )
        )
    return absent


def selection_rows(result: detection_engine.DetectionResult) -> list[dict[str, Any]]:
    """ModelSelectionLog fields of every model the engine selected and trained in this result."""
    rows = []
    for record in result.selections:
        key, sel = record.key, record.selection
        rows.append(
            {
                "property_id": key.property_id,
                "document_type": key.document_type,
                "account_code": fitting(ModelSelectionLog, "account_code", original_account(key.account_code)),
                "data_characteristics": _jsonable(sel.characteristics),
                "rule_recommended_models": list(sel.rule_candidates),
                "llm_recommended_models": list(sel.llm_recommended) if sel.llm_recommended is not None else None,
                "llm_error": (sel.llm_error or "")[:300],
                "selected_model": sel.selected_model[:60],
                "selection_source": sel.source[:10],
                "selection_reasoning": sel.selection_reasoning,
                "cross_validation_score": finite(sel.cross_validation_score),
            }
        )
    return rows


def _series_modelled(run: EngineRun) -> int:
    rows = np.concatenate(list(run.rows_of_doc.values())) if run.rows_of_doc else np.empty(0, dtype=np.int64)
    table = run.table
    rows = rows[np.isfinite(run.result.anomaly_score[rows]) & ~table.is_total[rows]]
    series = zip(table.property_ids[rows].tolist(), table.document_types[rows], table.account_codes[rows], strict=True)
    return len(set(series))


def finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _finding_explanation(finding: detection_engine.Finding) -> dict[str, Any]:
    e = finding.explanation
    return {
        "summary": e.sentence,
        "root_cause_type": e.root_cause_type,
        "contributing_factors": e.contributing_factors,
        "suggested_actions": e.suggested_actions,
        "explanation_method": e.explanation_method,
        "computation_time_ms": e.computation_time_ms,
    }


def _statement_explanation(sf: StatementFinding, run: EngineRun) -> dict[str, Any]:
    n_rows = run.lines.n_rows
    covered = [original_account(str(run.lines.table.account_codes[r])) for r in sf.covered_rows if 0 <= r < n_rows]
    return {
        "summary": sf.sentence,
        "root_cause_type": sf.anomaly_type,
        "contributing_factors": [
            {
                "feature": "statement_arithmetic",
                "amount": round(sf.amount, 2),
                "expected": round(sf.expected_value, 2),
                "difference": round(sf.difference, 2),
                "tolerance": round(sf.tolerance, 2),
                "covered_accounts": covered[:50],
            }
        ],
        "suggested_actions": list(ACTIONS.get(sf.anomaly_type, [])),
        "explanation_method": "statement_arithmetic",
        "computation_time_ms": 0.0,
    }


def _jsonable(value: Any) -> Any:
    """numpy scalars and NaN out of a characteristics dict, for a JSON column."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
