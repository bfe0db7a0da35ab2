"""Project-level writes: housekeeping that belongs to no single app."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_results.models import TaskResult

DELETE_SLICE = 1000


def task_results_cleanup(*, older_than_days: int | None = None) -> int:
    """Delete finished task results older than the retention, in bounded id slices."""
    days = older_than_days if older_than_days is not None else settings.TASK_RESULT_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(
            TaskResult.objects.filter(date_done__lt=cutoff).order_by("id").values_list("id", flat=True)[:DELETE_SLICE]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += TaskResult.objects.filter(id__in=ids).delete()[0]
