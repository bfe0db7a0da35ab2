"""A task goes through the real broker to a real worker process; its result lands in the database."""

from __future__ import annotations

import pytest
from django_celery_results.models import TaskResult

from reims.tasks import ping


@pytest.mark.worker
def test_task_runs_on_real_worker_and_result_is_stored(celery_worker_process):
    result = ping.delay("hello")
    assert result.get(timeout=60) == "hello"
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "reims.tasks.ping"
    assert "hello" in stored.result
