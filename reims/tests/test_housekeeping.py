"""Finished task results are deleted by Celery's own cleanup after CELERY_RESULT_EXPIRES."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from reims.celery import app


def test_results_expire_after_the_retention_and_beat_runs_celerys_cleanup():
    assert settings.CELERY_RESULT_EXPIRES == timedelta(days=14)
    assert app.conf.result_expires == timedelta(days=14)
    entry = settings.CELERY_BEAT_SCHEDULE["celery.backend_cleanup"]
    assert entry["task"] == "celery.backend_cleanup" and entry["options"]["queue"] == "default"


@pytest.mark.django_db
def test_celery_backend_cleanup_deletes_old_results_and_keeps_recent_ones():
    now = timezone.now()
    for i in range(5):
        TaskResult.objects.create(task_id=f"old-{i}", status="SUCCESS")
    TaskResult.objects.create(task_id="recent", status="SUCCESS")
    # date_done is auto_now: move the old ones back in one update.
    TaskResult.objects.filter(task_id__startswith="old-").update(date_done=now - timedelta(days=20))

    app.loader.import_default_modules()
    app.tasks["celery.backend_cleanup"].apply().get()

    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["recent"]
