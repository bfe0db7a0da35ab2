"""Housekeeping tasks of the model cache (queue ``default``: CELERY_TASK_DEFAULT_QUEUE, no route)."""

from __future__ import annotations

from celery import shared_task

from modelcache import services


@shared_task(name="modelcache.tasks.cleanup_model_cache")
def cleanup_model_cache() -> int:
    """Delete expired and inactive cached models (idempotent: a re-run finds nothing to delete)."""
    return services.cleanup_model_cache()
