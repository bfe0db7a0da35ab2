"""Detection passes: ``documents_detect`` (one chunk) and ``detection_run`` (many properties).

``documents_detect`` is the unit of work of every detection path (the batch job's chunks, the
task run after an import, the ``detect_anomalies`` command through ``detection_run``): per property
of its documents it takes the property's context (``context``: the property's lines and the
engine's result over them, computed once per data version and kept by the process), reads its
documents' rows out of it (``results``), applies the analysts' verdicts (``feedback``), and
writes what changed in one transaction (``writing``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError
from django.db.models import F, Q
from django.utils import timezone

from anomalies.models import AnomalyFeedback, DetectionStatus, ModelSelectionLog
from anomalies.selectors import PropertyDataVersion, TargetDocument, property_data_versions, target_documents_get
from anomalies.services.attribution import lines_attribute
from anomalies.services.context import PropertyContext, property_context_get
from anomalies.services.feedback import verdict_apply
from anomalies.services.learning import LearningOutcome, lines_learn, present_lines, quieted_counts_write
from anomalies.services.options import EngineOptions, _flush_provider, engine_options
from anomalies.services.results import EngineOutput, EngineRun, scored_lines, selection_rows
from anomalies.services.summaries import DetectionRunSummary, DocumentOutcome
from anomalies.services.writing import PlannedRow, detections_write, planned_row
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
    requested = [int(d) for d in dict.fromkeys(document_ids)]
    targets = target_documents_get(document_ids=requested)
    by_property: dict[int, list[int]] = defaultdict(list)
    for doc_id in requested:
        reason = _skip_reason(targets.get(doc_id))
        if reason:
            summary.per_document[doc_id] = DocumentOutcome("skipped", reason)
        else:
            by_property[targets[doc_id].property_id].append(doc_id)
    chunk = _ChunkPlan(targets, options, FeatureFlags.is_enabled("ACTIVE_LEARNING_ENABLED"), timezone.now())
    if by_property:
        versions = property_data_versions(property_ids=by_property)
        for property_id, doc_ids in by_property.items():
            _plan_property(chunk, summary, property_id=property_id, doc_ids=doc_ids, version=versions[property_id])
    if chunk.planned:
        selection_logs = [ModelSelectionLog(**entry) for entry in chunk.selections]
        _write_planned(chunk.planned, selection_logs, chunk.applied_feedback, chunk.now, summary)
        quieted_counts_write(chunk.learned)
        _summarise(targets, chunk.planned, summary)
    summary.duration_seconds = time.perf_counter() - started
    return summary


def _skip_reason(target: TargetDocument | None) -> str:
    if target is None:
        return "document not found"
    if not target.is_latest:
        return "not the latest version of its document"
    if target.extraction_status == ExtractionStatus.FAILED:
        return "extraction failed"
    return ""


@dataclass
class _ChunkPlan:
    """A chunk's documents and the pass's settings; what it will write: rows per document, the
    verdicts taken into account, selection logs."""

    targets: dict[int, TargetDocument]
    options: EngineOptions
    learning: bool
    now: datetime
    planned: dict[int, list[PlannedRow]] = field(default_factory=dict)
    applied_feedback: set[int] = field(default_factory=set)
    selections: list[dict] = field(default_factory=list)
    learned: LearningOutcome = field(default_factory=LearningOutcome)


def _plan_property(
    chunk: _ChunkPlan, summary: DetectionRunSummary, *, property_id: int, doc_ids: list[int], version: PropertyDataVersion
) -> None:
    """The rows of the chunk's documents of one property, read out of the property's context."""
    try:
        context, computed = property_context_get(
            property_id=property_id, version=version, options=chunk.options, learning=chunk.learning
        )
        rows_of_doc = context.lines.rows_of_documents(doc_ids)
        run = EngineRun.of(
            lines=context.lines,
            table=context.table,
            result=context.result,
            targets=chunk.targets,
            rows_of_doc=rows_of_doc,
        )
        output = scored_lines(run)
        planned = _plan_rows(chunk, context, output)
    except Exception as exc:  # noqa: BLE001 - reported per document; the batch goes on
        logger.exception("detection failed on documents %s of property %s", doc_ids, property_id)
        reason = f"detection failed: {type(exc).__name__}: {exc}"[:300]
        for doc_id in doc_ids:
            summary.per_document[doc_id] = DocumentOutcome("failed", reason)
        return
    for doc_id in doc_ids:
        if doc_id not in rows_of_doc:
            summary.per_document[doc_id] = DocumentOutcome("skipped", "no line items")
    chunk.planned.update(planned)
    if computed:  # the models selected and trained for this property now, logged once
        chunk.selections += selection_rows(context.result)
    summary.series_modelled += output.series_modelled


def _plan_rows(chunk: _ChunkPlan, context: PropertyContext, output: EngineOutput) -> dict[int, list[PlannedRow]]:
    """The rows to write per document, with the verdicts applied (their ids kept in the chunk).

    A verdict on the line itself decides that line (``feedback.verdict_apply``); the other flagged
    lines are judged by what the verdicts on similar lines taught (``learning.lines_learn``).
    """
    judged: list[tuple[TargetDocument, AnomalyFeedback | None, str]] = []
    same_line: set[int] = set()
    for i, scored in enumerate(output.lines):
        target = chunk.targets[scored.document_id]
        fb: AnomalyFeedback | None = context.feedback.by_line.get(
            (target.property_id, target.document_type, target.period_ordinal, scored.account_code)
        )
        status: str = DetectionStatus.OPEN
        if fb is not None:
            effect = verdict_apply(line=scored, feedback=fb, amount=scored.amount, learning=chunk.learning)
            status = effect.status
            if effect.clears_explanation:
                scored.explanation = None
            if effect.applied:
                chunk.applied_feedback.add(fb.id)
            if status != DetectionStatus.OPEN:
                same_line.add(i)
        judged.append((target, fb, status))
    learned = lines_learn(
        lines=output.lines,
        line_keys=[
            (target.property_id, target.document_type, scored.account_code, target.period_ordinal)
            for (target, _, _), scored in zip(judged, output.lines, strict=True)
        ],
        present=present_lines(context.lines, chunk.targets, output.lines),
        skip=same_line,
        now=chunk.now,
    )
    chunk.applied_feedback |= learned.used_verdicts
    chunk.learned.quieted_by_verdict.update(learned.quieted_by_verdict)
    lines_attribute(lines=output.lines, background=output.background)
    planned: dict[int, list[PlannedRow]] = defaultdict(list)
    for i, (scored, (target, fb, verdict_status)) in enumerate(zip(output.lines, judged, strict=True)):
        row_status = learned.statuses.get(i, verdict_status)
        planned[scored.document_id].append(planned_row(target=target, line=scored, status=row_status, feedback=fb))
    return planned


def _write_planned(
    planned: dict[int, list[PlannedRow]],
    selection_logs: list[ModelSelectionLog],
    applied_feedback: set[int],
    now: datetime,
    summary: DetectionRunSummary,
) -> None:
    try:
        counts = detections_write(planned=planned, selection_logs=selection_logs, applied_feedback=applied_feedback, now=now)
        summary.rows_written += counts.rows_written
    except DatabaseError as exc:
        logger.warning("chunk write failed (%s); writing documents one by one", exc)
        for doc_id in planned:
            try:
                one = {doc_id: planned[doc_id]}
                counts = detections_write(planned=one, selection_logs=[], applied_feedback=applied_feedback, now=now)
                summary.rows_written += counts.rows_written
            except DatabaseError as doc_exc:
                logger.exception("writing detections of document %s failed", doc_id)
                summary.per_document[doc_id] = DocumentOutcome("failed", f"write failed: {doc_exc}"[:300])


def _summarise(
    targets: dict[int, TargetDocument], planned: dict[int, list[PlannedRow]], summary: DetectionRunSummary
) -> None:
    property_ids = {targets[d].property_id for d in planned}
    property_codes = dict(Property.objects.filter(id__in=property_ids).values_list("id", "code"))
    for doc_id, rows in planned.items():
        if doc_id in summary.per_document:
            continue
        target = targets[doc_id]
        severities = Counter(row.severity for row in rows if row.is_anomaly)
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
            summary.add_count(summary.detectors, row.detector)
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
