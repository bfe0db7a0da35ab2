"""Beat schedule of the anomalies app; reims/settings.py merges it into CELERY_BEAT_SCHEDULE.

Nothing here imports Django models.
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "portfolio-benchmarks-refresh": {
        "task": "anomalies.tasks.refresh_portfolio_benchmarks",
        # Daily after the night's imports and reprocessing; the task does nothing while the flag is off.
        "schedule": crontab(hour=4, minute=10),
        "options": {"queue": "default", "expires": 6 * 3600},
    },
}
