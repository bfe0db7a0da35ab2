"""What a chunk of a batch job does to its documents, by job ``processor`` name.

The shipped processor is ``detect_anomalies``: it calls the anomalies app's
``documents_detect(document_ids=...)``, which replaces each document's detections in a transaction
and reports one outcome per document. ``check_documents`` is a cheap processor of our own that
checks each document still exists and has line items (useful to validate filters on a large
backfill before running detection over it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.db.models import Count

from documents.models import DocumentUpload


@dataclass(frozen=True)
class DocumentResult:
    """One document's outcome inside a chunk (mirrors the detection service's DocumentOutcome)."""

    status: str  # 'ok' | 'failed' | 'skipped'
    reason: str = ""
    anomalies: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)


OK, FAILED, SKIPPED = "ok", "failed", "skipped"

ChunkProcessor = Callable[[Sequence[int]], Mapping[int, DocumentResult]]
_REGISTRY: dict[str, ChunkProcessor] = {}


def register_processor(name: str) -> Callable[[ChunkProcessor], ChunkProcessor]:
    def decorator(func: ChunkProcessor) -> ChunkProcessor:
        _REGISTRY[name] = func
        return func

    return decorator


def get_processor(name: str) -> ChunkProcessor:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"unknown batch processor {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def processor_names() -> list[str]:
    return sorted(_REGISTRY)


class DetectionOutcome(Protocol):
    """One document's outcome as the anomalies app's detection service reports it."""

    status: str
    reason: str
    anomalies: int
    by_severity: Mapping[str, int]


class DetectionRun(Protocol):
    per_document: Mapping[int, DetectionOutcome]


@register_processor("detect_anomalies")
def detect_anomalies(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    # Imported here: the anomalies app imports heavy numeric libraries we do not need at start-up.
    from anomalies.services import documents_detect

    run: DetectionRun = documents_detect(document_ids=list(document_ids))
    return {
        int(document_id): DocumentResult(
            status=outcome.status,
            reason=outcome.reason,
            anomalies=outcome.anomalies,
            by_severity=dict(outcome.by_severity),
        )
        for document_id, outcome in run.per_document.items()
    }


@register_processor("check_documents")
def check_documents(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    """ok when the document exists with line items, skipped when it has none, failed when gone."""
    line_counts = dict(
        DocumentUpload.objects.filter(id__in=document_ids).annotate(n=Count("line_items")).values_list("id", "n")
    )
    results: dict[int, DocumentResult] = {}
    for document_id in document_ids:
        if document_id not in line_counts:
            results[document_id] = DocumentResult(FAILED, "document no longer exists")
        elif line_counts[document_id] == 0:
            results[document_id] = DocumentResult(SKIPPED, "document has no line items")
        else:
            results[document_id] = DocumentResult(OK)
    return results
