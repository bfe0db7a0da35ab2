"""Beat schedule of batch_jobs; reims/settings.py merges it into CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

REAPER_INTERVAL_SECONDS = 15.0

BEAT_SCHEDULE = {
    "batch-jobs-requeue-expired-chunks": {
        "task": "batch_jobs.tasks.requeue_expired_chunks",
        # A dead worker's chunk is handed over within BATCH_PROCESSING_LEASE_SECONDS plus this
        # interval; lost chunk messages are re-sent within one lease of no progress plus this.
        "schedule": REAPER_INTERVAL_SECONDS,
        "options": {"queue": "default", "expires": REAPER_INTERVAL_SECONDS - 1},
    },
}
