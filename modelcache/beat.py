"""Beat schedule of modelcache; reims/settings.py merges it into CELERY_BEAT_SCHEDULE.

Settings line: ``from modelcache.beat import BEAT_SCHEDULE as _MODEL_CACHE_BEAT`` then
``CELERY_BEAT_SCHEDULE.update(_MODEL_CACHE_BEAT)``. Nothing here imports Django models.
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "model-cache-cleanup": {
        "task": "modelcache.tasks.cleanup_model_cache",
        # Daily, off the hour of the task-result cleanup (03:15).
        "schedule": crontab(hour=3, minute=40),
        "options": {"queue": "default", "expires": 6 * 3600},
    },
}
