from __future__ import annotations

from django.conf import settings

from reims.celery import app


def test_every_beat_entry_names_a_registered_task_on_a_known_queue():
    app.loader.import_default_modules()
    expected = {
        "celery.backend_cleanup",
        "modelcache.tasks.cleanup_model_cache",
        "batch_jobs.tasks.requeue_expired_chunks",
    }
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert expected <= scheduled
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
        assert entry.get("options", {}).get("queue", "default") in {"default", "anomaly"}
