"""Beat schedule of batch_jobs; reims/settings.py merges it into CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

BEAT_SCHEDULE = {
    "batch-jobs-requeue-expired-chunks": {
        "task": "batch_jobs.tasks.requeue_expired_chunks",
        # Every minute: expired leases, stalled or timed-out jobs and free slots are handled
        # within a minute plus the lease (BATCH_PROCESSING_LEASE_SECONDS).
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 55},
    },
}
