"""Writes of the anomalies app: detection passes, their results, and analyst feedback.

``documents_detect`` is the unit of work of every detection path (the batch job's chunks, the
task run after an import, the ``detect_anomalies`` command through ``detection_run``): it loads the
chunk's series in a few queries (``selectors.detection_input_for_documents``), runs the Django-free
engine (``anomalies.detection.engine.detect_anomalies``), applies analyst feedback, and replaces
the documents' detections in one transaction.

Feedback on later passes (ACTIVE_LEARNING_ENABLED), keyed by the line's natural key (property,
document type, period, account) so that it survives reprocessing and new versions:

* ``dismissed`` / ``false_positive``: while the line's amount is the one the analyst saw, it is
  not flagged again (``is_anomaly`` false, status kept, the reason in ``contributions`` and the
  sentence). A changed amount is a new fact and is scored afresh.
* ``confirmed`` / ``false_negative``: while the amount is unchanged the line stays flagged.
* ``new_normal``: the series is cut at the accepted period. The engine sees the periods from
  the accepted one on as a series of their own (and the earlier periods as another), so later
  periods are compared with the new level only, and the accepted point itself starts a new
  history (reported as insufficient history until enough points follow it).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from anomalies.detection import engine as detection_engine
from anomalies.detection.detectors import MODEL_VERSION as DETECTION_MODEL_VERSION
from anomalies.detection.explanation import ACTIONS
from anomalies.detection.provider import ModelProvider, TrainingProvider
from anomalies.detection.scoring import FLAG_SCORE
from anomalies.detection.selection import LLMConfig
from anomalies.detection.table import LineTable
from anomalies.models import (
    AnomalyDetection,
    AnomalyExplanation,
    AnomalyFeedback,
    AnomalyType,
    DetectionStatus,
    Direction,
    FeedbackType,
    ModelSelectionLog,
    Severity,
)
from anomalies.selectors import (
    DetectionInput,
    detection_input_for_documents,
    document_ids_for_detection,
    feedback_for_series,
)
from documents.models import DocumentUpload, ExtractionStatus, Property
from kernel.exceptions import ApplicationError
from kernel.flags import FeatureFlags
from kernel.periods import ordinal_from_label
from kernel.values import fitting, known_choice
from modelcache.services import CachedModelProvider

logger = logging.getLogger(__name__)

# Documents per engine call in ``detection_run``: consecutive documents of one property so that a
# series is loaded, scored and written together (DESIGN §9); a property's whole history at once.
RUN_PROPERTIES_PER_GROUP = 4
NEW_NORMAL_SEPARATOR = "@new-normal-since-"

# Detection status set by each kind of feedback.
FEEDBACK_STATUS = {
    FeedbackType.CONFIRMED: DetectionStatus.CONFIRMED,
    FeedbackType.FALSE_NEGATIVE: DetectionStatus.CONFIRMED,
    FeedbackType.DISMISSED: DetectionStatus.DISMISSED,
    FeedbackType.FALSE_POSITIVE: DetectionStatus.FALSE_POSITIVE,
    FeedbackType.NEW_NORMAL: DetectionStatus.NEW_NORMAL,
}
FEEDBACK_IS_ANOMALY = {
    FeedbackType.CONFIRMED: True,
    FeedbackType.FALSE_NEGATIVE: True,
    FeedbackType.DISMISSED: False,
    FeedbackType.FALSE_POSITIVE: False,
    FeedbackType.NEW_NORMAL: False,
}


class NotFoundError(ApplicationError):
    status_code = 404


# --- Summaries --------------------------------------------------------------------------------


@dataclass
class DocumentOutcome:
    status: str  # 'ok' | 'failed' | 'skipped'
    reason: str = ""
    anomalies: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "anomalies": self.anomalies,
            "by_severity": dict(self.by_severity),
        }


@dataclass
class DetectionRunSummary:
    """What a detection pass did; ``merge`` adds another pass (chunks of one run)."""

    per_document: dict[int, DocumentOutcome] = field(default_factory=dict)
    property_ids: list[int] = field(default_factory=list)
    lines_scored: int = 0
    insufficient_history: int = 0
    anomalies: int = 0
    anomalies_by_severity: dict[str, int] = field(default_factory=dict)
    anomalies_by_property: dict[str, int] = field(default_factory=dict)  # property code -> count
    series_modelled: int = 0
    detectors: dict[str, int] = field(default_factory=dict)  # detector name -> lines scored
    duration_seconds: float = 0.0

    @property
    def documents_ok(self) -> int:
        return sum(1 for o in self.per_document.values() if o.status == "ok")

    @property
    def documents_failed(self) -> int:
        return sum(1 for o in self.per_document.values() if o.status == "failed")

    @property
    def documents_skipped(self) -> int:
        return sum(1 for o in self.per_document.values() if o.status == "skipped")

    @property
    def failures(self) -> dict[int, str]:
        return {doc: o.reason for doc, o in self.per_document.items() if o.status == "failed"}

    def merge(self, other: DetectionRunSummary) -> None:
        self.per_document.update(other.per_document)
        self.property_ids = sorted(set(self.property_ids) | set(other.property_ids))
        self.lines_scored += other.lines_scored
        self.insufficient_history += other.insufficient_history
        self.anomalies += other.anomalies
        self.series_modelled += other.series_modelled
        for target, source in (
            (self.anomalies_by_severity, other.anomalies_by_severity),
            (self.anomalies_by_property, other.anomalies_by_property),
            (self.detectors, other.detectors),
        ):
            for key, value in source.items():
                target[key] = target.get(key, 0) + value
        self.duration_seconds += other.duration_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": len(self.per_document),
            "documents_ok": self.documents_ok,
            "documents_failed": self.documents_failed,
            "documents_skipped": self.documents_skipped,
            "property_ids": list(self.property_ids),
            "lines_scored": self.lines_scored,
            "insufficient_history": self.insufficient_history,
            "anomalies": self.anomalies,
            "anomalies_by_severity": dict(self.anomalies_by_severity),
            "anomalies_by_property": dict(self.anomalies_by_property),
            "series_modelled": self.series_modelled,
            "detectors": dict(self.detectors),
            "failures": {str(k): v for k, v in self.failures.items()},
            "duration_seconds": round(self.duration_seconds, 3),
        }


# --- Engine options from flags and settings ------------------------------------------------------


@dataclass
class EngineOptions:
    use_pyod: bool
    llm: Any
    model_provider: ModelProvider
    seed: int = 0


def engine_options() -> EngineOptions:
    """Flags and settings read now, so that a changed environment applies to the next pass."""
    use_llm = bool(settings.PYOD_LLM_MODEL_SELECTION and settings.OPENAI_API_KEY)
    llm = (
        LLMConfig(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            model=settings.OPENAI_MODEL,
            timeout_seconds=float(settings.OPENAI_TIMEOUT_SECONDS),
        )
        if use_llm
        else None
    )
    return EngineOptions(
        use_pyod=FeatureFlags.is_enabled("PYOD_ENABLED"),
        llm=llm,
        model_provider=model_provider(),
    )


def model_provider() -> ModelProvider:
    """The model cache's provider when MODEL_CACHE_ENABLED is on, otherwise one that only trains."""
    if not FeatureFlags.is_enabled("MODEL_CACHE_ENABLED"):
        return TrainingProvider()
    return CachedModelProvider()


def _flush_provider(provider: ModelProvider) -> None:
    try:
        provider.flush()
    except DatabaseError:  # usage counters are statistics: a failed flush must not fail a pass
        logger.exception("model cache usage flush failed")


# --- Feedback applied to a pass -----------------------------------------------------------------


@dataclass
class _FeedbackIndex:
    by_line: dict[tuple[int, str, int, str], AnomalyFeedback]  # (property, type, period ordinal, account)
    new_normal: dict[tuple[int, str, str], list[int]]  # series -> accepted period ordinals, sorted

    @classmethod
    def build(cls, rows: Iterable[AnomalyFeedback]) -> _FeedbackIndex:
        by_line: dict[tuple[int, str, int, str], AnomalyFeedback] = {}
        new_normal: dict[tuple[int, str, str], set[int]] = defaultdict(set)
        for fb in rows:  # oldest first: the latest verdict on a line wins
            by_line[(fb.property_id, fb.document_type, fb.period.ordinal, fb.account_code)] = fb
        for key, fb in by_line.items():
            if fb.feedback_type == FeedbackType.NEW_NORMAL:
                new_normal[(key[0], key[1], key[3])].add(key[2])
        return cls(by_line, {k: sorted(v) for k, v in new_normal.items()})


def _split_new_normal(table: LineTable, index: _FeedbackIndex) -> LineTable:
    """Cut each series with an accepted new normal into segments the engine models apart."""
    if not index.new_normal:
        return table
    accounts = table.account_codes.copy()
    for i in range(table.n_rows):
        cuts = index.new_normal.get((int(table.property_ids[i]), table.document_types[i], table.account_codes[i]))
        if not cuts:
            continue
        period = int(table.periods[i])
        since = [c for c in cuts if c <= period]
        if since:
            accounts[i] = f"{table.account_codes[i]}{NEW_NORMAL_SEPARATOR}{since[-1]}"
    return LineTable(
        line_ids=table.line_ids,
        property_ids=table.property_ids,
        property_types=table.property_types,
        document_types=table.document_types,
        account_codes=accounts,
        periods=table.periods,
        amounts=table.amounts,
        is_total=table.is_total,
        row_order=table.row_order,
    )


def _apply_feedback(
    row: ScoredLine, fb: AnomalyFeedback | None, amount: Decimal | None, *, learning: bool
) -> tuple[str, bool]:
    """(status, applied) for a scored line, updating ``row`` in place when feedback applies."""
    if fb is None:
        return DetectionStatus.OPEN, False
    status = FEEDBACK_STATUS.get(fb.feedback_type, DetectionStatus.OPEN)
    if fb.feedback_type == FeedbackType.NEW_NORMAL:
        # Its effect is the series cut made before the engine ran.
        return status, learning
    same_amount = fb.field_value is not None and amount is not None and Decimal(fb.field_value) == Decimal(amount)
    if not same_amount:
        # The line changed since the analyst's verdict: score it afresh.
        return DetectionStatus.OPEN, False
    if not learning:
        return status, False
    verdict = FEEDBACK_IS_ANOMALY[FeedbackType(fb.feedback_type)]
    who = getattr(fb.user, "username", None) or "an analyst"
    when = fb.updated_at.date().isoformat() if fb.updated_at else ""
    row.contributions = {
        **row.contributions,
        "feedback": {
            "feedback_type": fb.feedback_type,
            "by": who,
            "on": when,
            "model_flagged": row.is_anomaly,
            "reason": f"{fb.get_feedback_type_display()} by {who} on {when}; amount unchanged",
        },
    }
    if verdict and not row.is_anomaly:
        row.is_anomaly = True
        row.explanation_text = (
            f"Confirmed by {who} on {when}; kept flagged while the amount is unchanged. " + row.explanation_text
        )[:500]
    elif not verdict and row.is_anomaly:
        row.is_anomaly = False
        row.explanation_text = (
            f"{fb.get_feedback_type_display()} by {who} on {when}: not flagged while the amount is unchanged "
            f"(model score {row.anomaly_score:.0f})."
        )[:500]
        row.explanation = None
    return status, True


# --- The engine's result as database rows ---------------------------------------------------------


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


@dataclass
class EngineOutput:
    lines: list[ScoredLine]
    selections: list[dict[str, Any]]  # ModelSelectionLog fields
    series_modelled: int


def _original_account(code: str) -> str:
    return code.split(NEW_NORMAL_SEPARATOR, 1)[0]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _finding_explanation(finding: detection_engine.Finding) -> dict[str, Any]:
    e = finding.explanation
    return {
        "summary": e.sentence[:500],
        "root_cause_type": e.root_cause_type,
        "contributing_factors": e.contributing_factors,
        "suggested_actions": e.suggested_actions,
        "explanation_method": e.explanation_method,
        "computation_time_ms": e.computation_time_ms,
    }


def _statement_explanation(sf: Any, inp: DetectionInput) -> dict[str, Any]:
    covered = [_original_account(str(inp.table.account_codes[r])) for r in sf.covered_rows if 0 <= r < inp.n_rows]
    return {
        "summary": sf.sentence[:500],
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


def _run_engine(
    inp: DetectionInput, table: LineTable, rows_of_doc: dict[int, np.ndarray], options: EngineOptions
) -> EngineOutput:
    """Run the engine over the whole table and keep the results of the target documents' rows."""
    target_pairs = {(inp.targets[d].property_id, inp.targets[d].document_type) for d in rows_of_doc}
    provider = options.model_provider
    # The table is the targets' whole properties (context); only the targets' rows are scored.
    score_mask = np.zeros(table.n_rows, dtype=bool)
    for rows in rows_of_doc.values():
        score_mask[rows] = True
    peers = inp.peers
    if peers is not None:
        # A series cut at an accepted new normal keeps its account's portfolio statistics.
        renamed = {str(a): _original_account(str(a)) for a in np.unique(table.account_codes) if NEW_NORMAL_SEPARATOR in a}
        peers = peers.with_aliases(renamed) if renamed else peers
    result = detection_engine.detect_anomalies(
        table,
        use_pyod=options.use_pyod,
        model_provider=provider,
        llm=options.llm,
        seed=options.seed,
        peers=peers,
        score_mask=score_mask,
    )
    findings = {f.row: f for f in result.findings if f.row >= 0}
    statements = {sf.row: sf for sf in result.statement_findings}
    insufficient = {r: ih.n_points for ih in result.insufficient_history for r in ih.rows}
    lines: list[ScoredLine] = []
    for doc_id, rows in rows_of_doc.items():
        for r in rows:
            r = int(r)
            account = _original_account(str(table.account_codes[r]))
            score = _finite(result.anomaly_score[r])
            if score is None:
                if r not in insufficient:
                    continue  # a total that foots: checked, not scored
                n_points = insufficient[r]
                lines.append(
                    ScoredLine(
                        document_id=doc_id,
                        account_code=account,
                        line_item_id=int(table.line_ids[r]),
                        amount=inp.amounts[r],
                        anomaly_score=0.0,
                        is_anomaly=False,
                        severity=Severity.LOW,
                        anomaly_type="none",
                        expected_value=None,
                        z_score=None,
                        percentage_change=None,
                        direction="none",
                        detector="insufficient_history",
                        model_key="",
                        model_version="",
                        contributions={"insufficient_history": {"points": n_points, "needed": detection_engine.MIN_HISTORY}},
                        explanation_text=(
                            f"Insufficient history: {n_points} month(s) of this series; "
                            f"not modelled before {detection_engine.MIN_HISTORY}."
                        ),
                        explanation=None,
                        insufficient_history=True,
                    )
                )
                continue
            flagged = bool(result.is_anomaly[r])
            finding = findings.get(r)
            statement = statements.get(r)
            contributions: dict[str, Any] = {}
            explanation = None
            text = ""
            if statement is not None:
                explanation = _statement_explanation(statement, inp)
                text = statement.sentence
                contributions["statement"] = explanation["contributing_factors"][0]
            elif finding is not None:
                explanation = _finding_explanation(finding)
                text = finding.explanation.sentence
                contributions["features"] = finding.contributions
                if finding.related_rows:
                    contributions["related_accounts"] = [
                        _original_account(str(table.account_codes[x])) for x in finding.related_rows if x >= 0
                    ]
            detector_threshold = _finite(result.threshold[r])
            if detector_threshold is not None:
                contributions["detector_threshold"] = round(detector_threshold, 6)
            if account != str(table.account_codes[r]):
                contributions["series_since"] = str(table.account_codes[r]).split(NEW_NORMAL_SEPARATOR, 1)[1]
            lines.append(
                ScoredLine(
                    document_id=doc_id,
                    account_code=account,
                    line_item_id=int(table.line_ids[r]),
                    amount=inp.amounts[r],
                    anomaly_score=score,
                    is_anomaly=flagged,
                    severity=str(result.severity[r]) or Severity.LOW,
                    anomaly_type=(str(result.anomaly_type[r]) or "none") if flagged else "none",
                    expected_value=_finite(result.expected_value[r]),
                    z_score=_finite(result.z_score[r]),
                    percentage_change=_finite(result.percentage_change[r]),
                    direction=str(result.direction[r]) or "none",
                    detector=str(result.detector[r]),
                    model_key=str(result.model_key[r]),
                    # Statement checks are rules, not fitted models: their version is the engine's.
                    model_version=str(result.model_version[r])
                    or (f"{DETECTION_MODEL_VERSION}:{result.detector[r]}" if statement is not None else ""),
                    contributions=contributions,
                    explanation_text=text,
                    explanation=explanation if flagged else None,
                )
            )
    # Absent postings: a line the series always has is missing from a target document.
    doc_by_key = {(t.property_id, t.document_type, t.period_ordinal): d for d, t in inp.targets.items() if d in rows_of_doc}
    present = {(line.document_id, line.account_code) for line in lines}
    for f in result.findings:
        if f.row >= 0:
            continue
        doc_id = doc_by_key.get((f.property_id, f.document_type, f.period))
        # A segment of a series cut by a new normal is "absent" where the other segment has the line.
        if doc_id is None or (doc_id, _original_account(f.account_code)) in present:
            continue
        present.add((doc_id, _original_account(f.account_code)))
        lines.append(
            ScoredLine(
                document_id=doc_id,
                account_code=_original_account(f.account_code),
                line_item_id=None,
                amount=None,
                anomaly_score=f.anomaly_score,
                is_anomaly=True,
                severity=f.severity,
                anomaly_type=f.anomaly_type,
                expected_value=_finite(f.expected_value),
                z_score=_finite(f.z_score),
                percentage_change=_finite(f.percentage_change),
                direction=f.direction or "none",
                detector=f.detector,
                model_key=f.model_key,
                model_version=f.model_version,
                contributions={"features": f.contributions, "absent_line": True},
                explanation_text=f.explanation.sentence,
                explanation=_finding_explanation(f),
            )
        )
    selections = []
    for record in result.selections:
        key, sel = record.key, record.selection
        if (key.property_id, key.document_type) not in target_pairs:
            continue
        selections.append(
            {
                "property_id": key.property_id,
                "document_type": key.document_type,
                "account_code": fitting(ModelSelectionLog, "account_code", _original_account(key.account_code)),
                "data_characteristics": _jsonable(sel.characteristics),
                "rule_recommended_models": list(sel.rule_candidates),
                "llm_recommended_models": list(sel.llm_recommended) if sel.llm_recommended is not None else None,
                "llm_error": (sel.llm_error or "")[:300],
                "selected_model": sel.selected_model[:60],
                "selection_source": sel.source[:10],
                "selection_reasoning": sel.selection_reasoning,
                "cross_validation_score": _finite(sel.cross_validation_score),
            }
        )
    modelled = {
        (int(table.property_ids[r]), str(table.document_types[r]), str(table.account_codes[r]))
        for rows in rows_of_doc.values()
        for r in rows
        if np.isfinite(result.anomaly_score[r]) and not table.is_total[r]
    }
    return EngineOutput(lines=lines, selections=selections, series_modelled=len(modelled))


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


# --- Detection ------------------------------------------------------------------------------------


def documents_detect(*, document_ids: Sequence[int]) -> DetectionRunSummary:
    """Detect anomalies in exactly these documents and replace their detections.

    Called by each batch chunk. Documents that are unknown, not the latest version of their
    (property, type, period), whose extraction failed or that hold no line are reported 'skipped';
    a document whose results cannot be written is 'failed' with the reason and the others go on.
    """
    options = engine_options()
    try:
        return _detect_chunk(document_ids=document_ids, options=options)
    finally:
        _flush_provider(options.model_provider)


def _detect_chunk(
    *, document_ids: Sequence[int], options: EngineOptions, inp: DetectionInput | None = None
) -> DetectionRunSummary:
    started = time.perf_counter()
    summary = DetectionRunSummary()
    if inp is None:
        inp = detection_input_for_documents(document_ids=document_ids)
    requested = [int(d) for d in dict.fromkeys(document_ids)]
    for doc_id in requested:
        target = inp.targets.get(doc_id)
        if target is None:
            summary.per_document[doc_id] = DocumentOutcome("skipped", "document not found")
        elif not target.is_latest:
            summary.per_document[doc_id] = DocumentOutcome("skipped", "not the latest version of its document")
        elif target.extraction_status == ExtractionStatus.FAILED:
            summary.per_document[doc_id] = DocumentOutcome("skipped", "extraction failed")
    live = [d for d in requested if d not in summary.per_document]
    rows_of_doc: dict[int, np.ndarray] = {}
    if live:
        order = np.argsort(inp.document_ids, kind="stable")
        sorted_docs = inp.document_ids[order]
        for doc_id in live:
            lo, hi = np.searchsorted(sorted_docs, [doc_id, doc_id + 1])
            if lo == hi:
                summary.per_document[doc_id] = DocumentOutcome("skipped", "no line items")
            else:
                rows_of_doc[doc_id] = order[lo:hi]
    if rows_of_doc:
        _detect_and_write(inp, rows_of_doc, options, summary)
    summary.duration_seconds = time.perf_counter() - started
    return summary


def _detect_and_write(
    inp: DetectionInput, rows_of_doc: dict[int, np.ndarray], options: EngineOptions, summary: DetectionRunSummary
) -> None:
    learning = FeatureFlags.is_enabled("ACTIVE_LEARNING_ENABLED")
    pairs = {(inp.targets[d].property_id, inp.targets[d].document_type) for d in rows_of_doc}
    # The feedback of the whole context, not only of the targets' statements: a new normal accepted
    # on another statement of the property cuts that series for every chunk alike.
    context_pairs = {(int(p), str(t)) for p, t in zip(inp.table.property_ids, inp.table.document_types, strict=True)}
    feedback = _FeedbackIndex.build(feedback_for_series(pairs=pairs | context_pairs))
    table = _split_new_normal(inp.table, feedback) if learning else inp.table
    try:
        output = _run_engine(inp, table, rows_of_doc, options)
    except Exception as exc:  # noqa: BLE001 - reported per document; the batch goes on
        logger.exception("detection engine failed on documents %s", sorted(rows_of_doc))
        reason = f"detection failed: {type(exc).__name__}: {exc}"[:300]
        for doc_id in rows_of_doc:
            summary.per_document[doc_id] = DocumentOutcome("failed", reason)
        return

    property_codes = dict(Property.objects.filter(id__in={p for p, _ in pairs}).values_list("id", "code"))
    now = timezone.now()
    planned: dict[int, list[tuple[AnomalyDetection, ScoredLine, AnomalyFeedback | None]]] = {d: [] for d in rows_of_doc}
    applied_feedback: set[int] = set()
    for scored in output.lines:
        target = inp.targets[scored.document_id]
        fb = feedback.by_line.get((target.property_id, target.document_type, target.period_ordinal, scored.account_code))
        status, applied = _apply_feedback(scored, fb, scored.amount, learning=learning)
        if applied and fb is not None:
            applied_feedback.add(fb.id)
        planned[scored.document_id].append((_detection_row(target, scored, status, now), scored, fb))

    selection_logs = [ModelSelectionLog(**entry) for entry in output.selections]
    try:
        _write(planned, selection_logs, applied_feedback, now)
    except DatabaseError as exc:
        logger.warning("chunk write failed (%s); writing documents one by one", exc)
        for doc_id in planned:
            try:
                _write({doc_id: planned[doc_id]}, [], applied_feedback, now)
            except DatabaseError as doc_exc:
                logger.exception("writing detections of document %s failed", doc_id)
                summary.per_document[doc_id] = DocumentOutcome("failed", f"write failed: {doc_exc}"[:300])

    summary.series_modelled += output.series_modelled
    for doc_id, items in planned.items():
        if doc_id in summary.per_document:
            continue
        target = inp.targets[doc_id]
        code = property_codes.get(target.property_id, str(target.property_id))
        severities = Counter(det.severity for det, _, _ in items if det.is_anomaly)
        flagged = sum(severities.values())
        summary.per_document[doc_id] = DocumentOutcome("ok", "", flagged, dict(severities))
        summary.lines_scored += len(items)
        summary.insufficient_history += sum(1 for _, s, _ in items if s.insufficient_history)
        summary.anomalies += flagged
        for sev, n in severities.items():
            summary.anomalies_by_severity[sev] = summary.anomalies_by_severity.get(sev, 0) + n
        if flagged:
            summary.anomalies_by_property[code] = summary.anomalies_by_property.get(code, 0) + flagged
        for det, _, _ in items:
            summary.detectors[det.detector] = summary.detectors.get(det.detector, 0) + 1
        if target.property_id not in summary.property_ids:
            summary.property_ids.append(target.property_id)
    summary.property_ids.sort()


def _decimal(value: float | None) -> Decimal | None:
    if value is None or not np.isfinite(value):
        return None
    if abs(value) >= 1e16:  # outside max_digits=18, decimal_places=2
        return None
    return Decimal(str(round(float(value), 2)))


def _detection_row(target: Any, s: ScoredLine, status: str, now: Any) -> AnomalyDetection:
    score = min(max(float(s.anomaly_score), 0.0), 100.0)
    return AnomalyDetection(
        line_item_id=s.line_item_id,
        document_id=s.document_id,
        property_id=target.property_id,
        document_type=target.document_type,
        period_id=target.period_id,
        account_code=fitting(AnomalyDetection, "account_code", s.account_code),
        field_value=s.amount,
        expected_value=_decimal(s.expected_value),
        z_score=s.z_score,
        percentage_change=s.percentage_change,
        anomaly_type=known_choice(AnomalyType, "anomaly_type", s.anomaly_type),
        severity=known_choice(Severity, "severity", s.severity),
        # The engine gives no separate confidence: the calibrated score read as a probability.
        confidence=round(score / 100.0, 4),
        anomaly_score=score,
        threshold=None if s.insufficient_history else FLAG_SCORE,
        is_anomaly=bool(s.is_anomaly),
        direction=known_choice(Direction, "direction", s.direction),
        detector=fitting(AnomalyDetection, "detector", s.detector),
        model_key=fitting(AnomalyDetection, "model_key", s.model_key),
        model_version=fitting(AnomalyDetection, "model_version", s.model_version),
        contributions=s.contributions,
        explanation_text=(s.explanation_text or "")[:500],
        status=status,
        detected_at=now,
        updated_at=now,
    )


_UPSERT_FIELDS = [
    "line_item",
    "property",
    "document_type",
    "period",
    "field_value",
    "expected_value",
    "z_score",
    "percentage_change",
    "anomaly_type",
    "severity",
    "confidence",
    "anomaly_score",
    "threshold",
    "is_anomaly",
    "direction",
    "detector",
    "model_key",
    "model_version",
    "contributions",
    "explanation_text",
    "status",
    "detected_at",
    "updated_at",
]


@transaction.atomic
def _write(
    planned: dict[int, list[tuple[AnomalyDetection, ScoredLine, AnomalyFeedback | None]]],
    selection_logs: list[ModelSelectionLog],
    applied_feedback: set[int],
    now: Any,
) -> None:
    """Replace the detections of the planned documents (idempotent: a rerun writes the same rows).

    Rows are upserted on (document, account_code) so a line keeps its id across reprocessing
    (links to an anomaly stay valid); rows of lines no longer scored, and the rows of older
    versions of the same documents, are deleted; explanations are rewritten.
    """
    doc_ids = sorted(planned)
    # Serialise two passes over the same documents (a redelivered chunk beside its first run):
    # lock the documents in id order, the same order every writer uses.
    docs = list(
        DocumentUpload.objects.select_for_update()
        .filter(id__in=doc_ids)
        .order_by("id")
        .values_list("id", "property_id", "document_type", "period_id")
    )
    older = Q()
    for _, property_id, document_type, period_id in docs:
        older |= Q(property_id=property_id, document_type=document_type, period_id=period_id)
    if docs:
        AnomalyDetection.objects.filter(older).exclude(document_id__in=doc_ids).delete()

    detections = [det for items in planned.values() for det, _, _ in items]
    if detections:
        AnomalyDetection.objects.bulk_create(
            detections,
            update_conflicts=True,
            unique_fields=["document", "account_code"],
            update_fields=_UPSERT_FIELDS,
            batch_size=1000,
        )
    kept = [det.pk for det in detections]
    AnomalyDetection.objects.filter(document_id__in=doc_ids).exclude(pk__in=kept).delete()
    AnomalyExplanation.objects.filter(anomaly__document_id__in=doc_ids).delete()

    explanations = []
    relink: dict[int, int] = {}
    for items in planned.values():
        for det, scored, fb in items:
            if fb is not None and fb.anomaly_id != det.pk:
                relink[fb.id] = det.pk
            if det.is_anomaly and scored.explanation is not None:
                explanations.append(AnomalyExplanation(anomaly_id=det.pk, **scored.explanation))
    if explanations:
        AnomalyExplanation.objects.bulk_create(explanations, batch_size=1000)
    if relink:
        for fb_id, det_id in relink.items():
            AnomalyFeedback.objects.filter(id=fb_id).update(anomaly_id=det_id)
    applied = [fb_id for fb_id in applied_feedback if fb_id]
    if applied:
        AnomalyFeedback.objects.filter(id__in=applied, learned_applied=False).update(learned_applied=True)
    if selection_logs:
        ModelSelectionLog.objects.bulk_create(selection_logs, batch_size=1000)
    DocumentUpload.objects.filter(id__in=doc_ids).update(last_detected_at=now)


def detection_run(
    *,
    property_codes: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    all_documents: bool = False,
    progress: Callable[[int, int], None] | None = None,
    properties_per_group: int = RUN_PROPERTIES_PER_GROUP,
) -> DetectionRunSummary:
    """In-process detection over many documents, a few properties at a time (bounded memory).

    Without ``all_documents`` only documents not detected since their upload are processed;
    ``since`` / ``until`` (YYYY-MM) bound the periods written (history outside them is still read).
    ``progress(done, total)`` is called after each group with documents done so far.
    Unknown property codes or malformed periods raise ApplicationError.
    """
    property_ids: list[int] | None = None
    if property_codes:
        wanted = list(dict.fromkeys(property_codes))
        found = dict(Property.objects.filter(code__in=wanted).values_list("code", "id"))
        unknown = [c for c in wanted if c not in found]
        if unknown:
            raise ApplicationError(f"unknown property code(s): {', '.join(unknown)}", field_errors={"property": unknown})
        property_ids = [found[c] for c in wanted]
    since_ordinal = _period_ordinal(since, "since")
    until_ordinal = _period_ordinal(until, "until")
    if since_ordinal is not None and until_ordinal is not None and since_ordinal > until_ordinal:
        raise ApplicationError("--since is after --until", field_errors={"since": ["after until"]})

    qs = document_ids_for_detection(property_ids=property_ids, since_ordinal=since_ordinal, until_ordinal=until_ordinal)
    if not all_documents:
        from django.db.models import F

        qs = qs.filter(Q(last_detected_at__isnull=True) | Q(last_detected_at__lt=F("uploaded_at")))
    docs_by_property: dict[int, list[int]] = defaultdict(list)
    for doc_id, property_id in qs.values_list("id", "property_id"):
        docs_by_property[property_id].append(doc_id)
    total = sum(len(v) for v in docs_by_property.values())
    summary = DetectionRunSummary()
    if progress:
        progress(0, total)
    if not total:
        return summary
    options = engine_options()
    done = 0
    try:
        groups = list(docs_by_property.items())
        for start in range(0, len(groups), properties_per_group):
            doc_ids = [d for _, ids in groups[start : start + properties_per_group] for d in ids]
            summary.merge(_detect_chunk(document_ids=doc_ids, options=options))
            done += len(doc_ids)
            if progress:
                progress(done, total)
    finally:
        _flush_provider(options.model_provider)
    return summary


def _period_ordinal(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return ordinal_from_label(value)
    except ValueError:
        message = f"--{name} must be YYYY-MM, got {value!r}"
        raise ApplicationError(message, field_errors={name: ["expected YYYY-MM"]}) from None


# --- Feedback -------------------------------------------------------------------------------------


@transaction.atomic
def anomaly_feedback_submit(
    *,
    anomaly_id: int,
    user: Any,
    feedback_type: str,
    notes: str = "",
    feedback_confidence: float | None = None,
    business_context: dict | None = None,
) -> AnomalyFeedback:
    """Record (or update) ``user``'s verdict on a detection and set the detection's status.

    One row per (property, document type, period, account, user): feedback twice updates it.
    The verdict is applied to the detection at once, as a later pass would apply it.
    """
    errors: dict[str, list[str]] = {}
    if feedback_type not in FeedbackType.values:
        errors["feedback_type"] = [f"must be one of {', '.join(FeedbackType.values)}"]
    if feedback_confidence is not None and not (0.0 <= float(feedback_confidence) <= 1.0):
        errors["feedback_confidence"] = ["must be between 0 and 1"]
    if business_context is not None and not isinstance(business_context, dict):
        errors["business_context"] = ["must be a JSON object"]
    if errors:
        raise ApplicationError("invalid feedback", field_errors=errors)
    # Lock the detection so that a pass rewriting it and this verdict do not interleave.
    detection = AnomalyDetection.objects.select_for_update().select_related("period").filter(id=anomaly_id).first()
    if detection is None:
        raise NotFoundError(f"anomaly {anomaly_id} not found")
    is_anomaly = FEEDBACK_IS_ANOMALY[FeedbackType(feedback_type)]
    user_id = getattr(user, "pk", None)
    feedback, _ = AnomalyFeedback.objects.update_or_create(
        property_id=detection.property_id,
        document_type=detection.document_type,
        period_id=detection.period_id,
        account_code=detection.account_code,
        user_id=user_id,
        defaults={
            "anomaly": detection,
            "field_value": detection.field_value,
            "feedback_type": feedback_type,
            "is_anomaly": is_anomaly,
            "notes": notes or "",
            "feedback_confidence": feedback_confidence,
            "business_context": business_context or {},
        },
    )
    detection.status = FEEDBACK_STATUS[FeedbackType(feedback_type)]
    update_fields = ["status", "updated_at"]
    if FeatureFlags.is_enabled("ACTIVE_LEARNING_ENABLED") and feedback_type != FeedbackType.NEW_NORMAL:
        who = getattr(user, "username", None) or "an analyst"
        detection.contributions = {
            **(detection.contributions or {}),
            "feedback": {
                "feedback_type": feedback_type,
                "by": who,
                "on": timezone.now().date().isoformat(),
                "model_flagged": detection.is_anomaly,
                "reason": f"{feedback.get_feedback_type_display()} by {who}",
            },
        }
        detection.is_anomaly = is_anomaly
        update_fields += ["contributions", "is_anomaly"]
        feedback.learned_applied = True
        feedback.save(update_fields=["learned_applied", "updated_at"])
    detection.save(update_fields=update_fields)
    return feedback


def anomalies_feedback_bulk(*, anomaly_ids: Iterable[int], user: Any, feedback_type: str) -> int:
    """The admin actions: the same verdict on several detections; returns how many were recorded."""
    count = 0
    for anomaly_id in anomaly_ids:
        anomaly_feedback_submit(anomaly_id=anomaly_id, user=user, feedback_type=feedback_type)
        count += 1
    return count
