"""The cleanup task, its beat entry, and one run on a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.utils import timezone

from modelcache.beat import BEAT_SCHEDULE
from modelcache.models import AnomalyModelCache
from modelcache.tasks import cleanup_model_cache
from modelcache.tests.helpers import CountingTrainer, PropertyFactory, lookup, series
from reims.celery import app


def make_entries(n: int) -> list[AnomalyModelCache]:
    prop = PropertyFactory()
    x = series(1)
    for i in range(n):
        lookup(prop, x, CountingTrainer(x), account=f"9{i:03d}", config={})
    return list(AnomalyModelCache.objects.order_by("pk"))


def test_beat_runs_the_cleanup_daily_on_the_default_queue():
    entry = BEAT_SCHEDULE["model-cache-cleanup"]
    assert entry["task"] == cleanup_model_cache.name == "modelcache.tasks.cleanup_model_cache"
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {40}
    assert entry["options"]["queue"] == "default"
    assert cleanup_model_cache.name in app.tasks
    assert app.amqp.router.route({}, cleanup_model_cache.name)["queue"].name == "default"


@pytest.mark.django_db
def test_task_is_idempotent():
    rows = make_entries(3)
    AnomalyModelCache.objects.filter(pk=rows[0].pk).update(is_active=False)
    assert cleanup_model_cache.apply().get() == 1
    assert cleanup_model_cache.apply().get() == 0
    assert AnomalyModelCache.objects.count() == 2


@pytest.mark.worker
def test_cleanup_runs_on_a_real_worker(celery_worker_process):
    rows = make_entries(4)
    AnomalyModelCache.objects.filter(pk=rows[0].pk).update(is_active=False)
    AnomalyModelCache.objects.filter(pk=rows[1].pk).update(expires_at=timezone.now() - timedelta(hours=1))
    result = cleanup_model_cache.delay()
    assert result.get(timeout=60) == 2
    assert sorted(AnomalyModelCache.objects.values_list("pk", flat=True)) == [rows[2].pk, rows[3].pk]
