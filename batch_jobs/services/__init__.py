"""Writes of the batch_jobs app, by concept.

PostgreSQL is the source of truth. A job's documents are split into ``BatchJobChunk`` rows when it
starts (``jobs``); each chunk is run by exactly one Celery task (its ``task_id``), which leases the
chunk, keeps the lease alive with a heartbeat while it runs (``leases``), processes it and marks it
done together with its counts in one transaction (``chunks``). The beat reaper (``reaper``) hands
the chunks of dead workers to new tasks and re-sends chunks whose messages a broker lost. Broker
side effects happen after commit only (``dispatch``). Locks are always taken chunk first, then job.

- ``jobs``: job_submit, job_cancel, job_run (start, chunk and fan out), finishing a job.
- ``chunks``: chunk_process (claim, run with per-document isolation, record), job_run_inline.
- ``leases``: lease and heartbeat durations on the database's clock, the heartbeat thread.
- ``reaper``: chunks_requeue_expired, the beat task's body.
- ``dispatch``: sending and revoking tasks once a transaction commits.
"""

from batch_jobs.services.chunks import ClaimedChunk, chunk_process, job_run_inline, run_processor
from batch_jobs.services.jobs import FLAG, job_cancel, job_run, job_submit
from batch_jobs.services.leases import lease_seconds
from batch_jobs.services.reaper import chunks_requeue_expired

__all__ = [
    "FLAG",
    "ClaimedChunk",
    "chunk_process",
    "chunks_requeue_expired",
    "job_cancel",
    "job_run",
    "job_run_inline",
    "job_submit",
    "lease_seconds",
    "run_processor",
]
