from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from reims.services import task_results_cleanup


@pytest.mark.django_db
def test_old_task_results_are_deleted_and_recent_ones_kept(settings):
    settings.TASK_RESULT_RETENTION_DAYS = 14
    now = timezone.now()
    for i in range(5):
        TaskResult.objects.create(task_id=f"old-{i}", status="SUCCESS")
    TaskResult.objects.create(task_id="recent", status="SUCCESS")
    # date_done is auto_now: move the old ones back in one update.
    TaskResult.objects.filter(task_id__startswith="old-").update(date_done=now - timedelta(days=20))

    assert task_results_cleanup() == 5
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["recent"]
    assert task_results_cleanup() == 0


@pytest.mark.django_db
def test_cleanup_works_in_bounded_slices(monkeypatch):
    monkeypatch.setattr("reims.services.DELETE_SLICE", 2)
    old = timezone.now() - timedelta(days=100)
    for i in range(5):
        TaskResult.objects.create(task_id=f"t{i}", status="SUCCESS")
    TaskResult.objects.update(date_done=old)
    assert task_results_cleanup(older_than_days=30) == 5
    assert not TaskResult.objects.exists()
