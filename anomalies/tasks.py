"""Celery tasks of the anomalies app (queue ``anomaly``): thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from anomalies import services
from anomalies.services.benchmarks import portfolio_benchmarks_refresh
from kernel.flags import FeatureFlags


@shared_task(name="anomalies.tasks.detect_documents", acks_late=True)
def detect_documents(document_ids: list[int]) -> dict:
    """Detect anomalies in these documents (e.g. right after an import commits).

    Idempotent: a redelivered task rewrites the same detections. Enqueue it with
    ``transaction.on_commit(lambda: detect_documents.delay(ids))`` so the worker sees the lines.
    """
    summary = services.documents_detect(document_ids=[int(i) for i in document_ids])
    result = summary.as_dict()
    result["per_document"] = {str(k): v.as_dict() for k, v in summary.per_document.items()}
    return result


@shared_task(name="anomalies.tasks.refresh_portfolio_benchmarks")
def refresh_portfolio_benchmarks() -> dict:
    """Beat, daily: recompute cross_property_benchmarks; skipped while PORTFOLIO_BENCHMARKS_ENABLED is off."""
    if not FeatureFlags.is_enabled("PORTFOLIO_BENCHMARKS_ENABLED"):
        return {"skipped": "PORTFOLIO_BENCHMARKS_ENABLED is off"}
    summary = portfolio_benchmarks_refresh()
    return {"rows": summary.rows, "groups_under_three": summary.groups_under_three, "lines": summary.lines}
