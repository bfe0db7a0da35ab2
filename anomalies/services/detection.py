"""Detection passes: ``documents_detect`` (one chunk) and ``detection_run`` (many properties).

``documents_detect`` is the unit of work of every detection path (the batch job's chunks, the
task run after an import, the ``detect_anomalies`` command through ``detection_run``): it loads the
chunk's series in a few queries (``selectors.detection_input_for_documents``), runs the Django-free
engine (``results.run_engine``), applies analyst feedback (``feedback``), and replaces the
documents' detections in one transaction (``writing``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
from django.db import DatabaseError
from django.db.models import F, Q
from django.utils import timezone

from anomalies.models import AnomalyFeedback, DetectionStatus, ModelSelectionLog
from anomalies.selectors import DetectionInput, TargetDocument, detection_input_for_documents, feedback_for_series
from anomalies.services.feedback import FeedbackIndex, apply_feedback, split_new_normal
from anomalies.services.learning import LearningOutcome, lines_learn, present_lines, quieted_counts_write
from anomalies.services.options import EngineOptions, _flush_provider, engine_options
from anomalies.services.results import EngineOutput, run_engine
from anomalies.services.summaries import DetectionRunSummary, DocumentOutcome
from anomalies.services.writing import PlannedRow, detection_row, detections_write
from documents.models import ExtractionStatus, Property
from documents.selectors import documents_latest
from kernel.exceptions import ApplicationError
from kernel.flags import FeatureFlags
from kernel.periods import ordinal_from_label

logger = logging.getLogger(__name__)

# Documents per engine call in ``detection_run``: consecutive documents of one property so that a
# series is loaded, scored and written together (DESIGN §9); a property's whole history at once.
RUN_PROPERTIES_PER_GROUP = 4


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


def _detect_chunk(*, document_ids: Sequence[int], options: EngineOptions) -> DetectionRunSummary:
    started = time.perf_counter()
    summary = DetectionRunSummary()
    inp = detection_input_for_documents(document_ids=document_ids)
    requested = [int(d) for d in dict.fromkeys(document_ids)]
    for doc_id in requested:
        reason = _skip_reason(inp, doc_id)
        if reason:
            summary.per_document[doc_id] = DocumentOutcome("skipped", reason)
    live = [d for d in requested if d not in summary.per_document]
    rows_of_doc = _rows_of_documents(inp, live)
    for doc_id in live:
        if doc_id not in rows_of_doc:
            summary.per_document[doc_id] = DocumentOutcome("skipped", "no line items")
    if rows_of_doc:
        _detect_and_write(inp, rows_of_doc, options, summary)
    summary.duration_seconds = time.perf_counter() - started
    return summary


def _skip_reason(inp: DetectionInput, doc_id: int) -> str:
    target = inp.targets.get(doc_id)
    if target is None:
        return "document not found"
    if not target.is_latest:
        return "not the latest version of its document"
    if target.extraction_status == ExtractionStatus.FAILED:
        return "extraction failed"
    return ""


def _rows_of_documents(inp: DetectionInput, doc_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The table rows of each document that has any."""
    if not doc_ids:
        return {}
    order = np.argsort(inp.document_ids, kind="stable")
    sorted_docs = inp.document_ids[order]
    rows_of_doc: dict[int, np.ndarray] = {}
    for doc_id in doc_ids:
        lo, hi = np.searchsorted(sorted_docs, [doc_id, doc_id + 1])
        if lo < hi:
            rows_of_doc[doc_id] = order[lo:hi]
    return rows_of_doc


def _detect_and_write(
    inp: DetectionInput, rows_of_doc: dict[int, np.ndarray], options: EngineOptions, summary: DetectionRunSummary
) -> None:
    learning = FeatureFlags.is_enabled("ACTIVE_LEARNING_ENABLED")
    # The feedback of the whole context, not only of the targets' statements: a new normal accepted
    # on another statement of the property cuts that series for every chunk alike.
    context_pairs = {(int(p), str(t)) for p, t in zip(inp.table.property_ids, inp.table.document_types, strict=True)}
    target_pairs = {(inp.targets[d].property_id, inp.targets[d].document_type) for d in rows_of_doc}
    feedback = FeedbackIndex.build(feedback_for_series(pairs=target_pairs | context_pairs))
    table = split_new_normal(inp.table, feedback) if learning else inp.table
    try:
        output = run_engine(inp, table, rows_of_doc, options)
    except Exception as exc:  # noqa: BLE001 - reported per document; the batch goes on
        logger.exception("detection engine failed on documents %s", sorted(rows_of_doc))
        reason = f"detection failed: {type(exc).__name__}: {exc}"[:300]
        for doc_id in rows_of_doc:
            summary.per_document[doc_id] = DocumentOutcome("failed", reason)
        return
    now = timezone.now()
    planned, applied_feedback, learned = _plan_rows(inp, output, feedback, learning=learning, now=now)
    _write_planned(planned, [ModelSelectionLog(**entry) for entry in output.selections], applied_feedback, now, summary)
    quieted_counts_write(learned)
    summary.series_modelled += output.series_modelled
    _summarise(inp, planned, summary)


def _plan_rows(
    inp: DetectionInput, output: EngineOutput, feedback: FeedbackIndex, *, learning: bool, now: datetime
) -> tuple[dict[int, list[PlannedRow]], set[int], LearningOutcome]:
    """The rows to write per document, with the verdicts applied; the ids of the verdicts applied.

    A verdict on the line itself decides that line; the other flagged lines are judged by what
    the verdicts on similar lines taught (``learning.lines_learn``).
    """
    applied_feedback: set[int] = set()
    judged: list[tuple[TargetDocument, AnomalyFeedback | None, str]] = []
    same_line: set[int] = set()
    for i, scored in enumerate(output.lines):
        target = inp.targets[scored.document_id]
        fb: AnomalyFeedback | None = feedback.by_line.get(
            (target.property_id, target.document_type, target.period_ordinal, scored.account_code)
        )
        status, applied = apply_feedback(scored, fb, scored.amount, learning=learning)
        if applied and fb is not None:
            applied_feedback.add(fb.id)
        if fb is not None and status != DetectionStatus.OPEN:
            same_line.add(i)
        judged.append((target, fb, status))
    learned = lines_learn(
        lines=output.lines,
        line_keys=[
            (target.property_id, target.document_type, scored.account_code, target.period_ordinal)
            for (target, _, _), scored in zip(judged, output.lines, strict=True)
        ],
        present=present_lines(inp, output.lines),
        skip=same_line,
        now=now,
    )
    applied_feedback |= learned.used_verdicts
    planned: dict[int, list[PlannedRow]] = defaultdict(list)
    for i, (scored, (target, fb, status)) in enumerate(zip(output.lines, judged, strict=True)):
        status = learned.statuses.get(i, status)
        planned[scored.document_id].append(PlannedRow(detection_row(target, scored, status, now), scored, fb))
    return planned, applied_feedback, learned


def _write_planned(
    planned: dict[int, list[PlannedRow]],
    selection_logs: list[ModelSelectionLog],
    applied_feedback: set[int],
    now: datetime,
    summary: DetectionRunSummary,
) -> None:
    try:
        detections_write(planned=planned, selection_logs=selection_logs, applied_feedback=applied_feedback, now=now)
    except DatabaseError as exc:
        logger.warning("chunk write failed (%s); writing documents one by one", exc)
        for doc_id in planned:
            try:
                one = {doc_id: planned[doc_id]}
                detections_write(planned=one, selection_logs=[], applied_feedback=applied_feedback, now=now)
            except DatabaseError as doc_exc:
                logger.exception("writing detections of document %s failed", doc_id)
                summary.per_document[doc_id] = DocumentOutcome("failed", f"write failed: {doc_exc}"[:300])


def _summarise(inp: DetectionInput, planned: dict[int, list[PlannedRow]], summary: DetectionRunSummary) -> None:
    property_ids = {inp.targets[d].property_id for d in planned}
    property_codes = dict(Property.objects.filter(id__in=property_ids).values_list("id", "code"))
    for doc_id, rows in planned.items():
        if doc_id in summary.per_document:
            continue
        target = inp.targets[doc_id]
        severities = Counter(row.detection.severity for row in rows if row.detection.is_anomaly)
        flagged = sum(severities.values())
        summary.per_document[doc_id] = DocumentOutcome("ok", "", flagged, dict(severities))
        summary.lines_scored += len(rows)
        summary.insufficient_history += sum(1 for row in rows if row.scored.insufficient_history)
        summary.anomalies += flagged
        for severity, n in severities.items():
            summary.add_count(summary.anomalies_by_severity, severity, n)
        if flagged:
            code = property_codes.get(target.property_id, str(target.property_id))
            summary.add_count(summary.anomalies_by_property, code, flagged)
        for row in rows:
            summary.add_count(summary.detectors, row.detection.detector)
        if target.property_id not in summary.property_ids:
            summary.property_ids.append(target.property_id)
    summary.property_ids.sort()


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
    property_ids = _property_ids(property_codes)
    since_ordinal = _period_ordinal(since, "since")
    until_ordinal = _period_ordinal(until, "until")
    if since_ordinal is not None and until_ordinal is not None and since_ordinal > until_ordinal:
        raise ApplicationError("--since is after --until", field_errors={"since": ["after until"]})

    qs = documents_latest(property_ids=property_ids, period_from_ordinal=since_ordinal, period_to_ordinal=until_ordinal)
    if not all_documents:
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
        groups = list(docs_by_property.values())
        for start in range(0, len(groups), properties_per_group):
            doc_ids = [d for ids in groups[start : start + properties_per_group] for d in ids]
            summary.merge(_detect_chunk(document_ids=doc_ids, options=options))
            done += len(doc_ids)
            if progress:
                progress(done, total)
    finally:
        _flush_provider(options.model_provider)
    return summary


def _property_ids(property_codes: Sequence[str] | None) -> list[int] | None:
    if not property_codes:
        return None
    wanted = list(dict.fromkeys(property_codes))
    found = dict(Property.objects.filter(code__in=wanted).values_list("code", "id"))
    unknown = [c for c in wanted if c not in found]
    if unknown:
        raise ApplicationError(f"unknown property code(s): {', '.join(unknown)}", field_errors={"property": unknown})
    return [found[c] for c in wanted]


def _period_ordinal(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return ordinal_from_label(value)
    except ValueError:
        message = f"--{name} must be YYYY-MM, got {value!r}"
        raise ApplicationError(message, field_errors={name: ["expected YYYY-MM"]}) from None
