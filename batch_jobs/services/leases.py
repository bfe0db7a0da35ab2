"""Chunk leases on the database's clock, kept alive by a heartbeat while a chunk runs.

A worker that leases a chunk holds it for ``BATCH_PROCESSING_LEASE_SECONDS``; a thread of the
worker process renews the lease every ``BATCH_PROCESSING_HEARTBEAT_SECONDS`` while the chunk runs.
A worker that dies (SIGKILL, machine gone) stops renewing, so its chunks are free for the reaper
within one lease plus one reaper period, however long a chunk takes. Every lease time is computed
and compared by the database (``Now()``), never by a worker's own clock: a worker whose clock is
off cannot steal a live lease or keep a dead one.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Expression
from django.db.models.functions import Now

from batch_jobs.models import BatchJobChunk, ChunkStatus

logger = logging.getLogger(__name__)


def lease_seconds() -> int:
    """How long a chunk stays leased without a heartbeat before the reaper may hand it over."""
    return settings.BATCH_PROCESSING_LEASE_SECONDS


def heartbeat_seconds() -> int:
    """How often a running chunk's lease is renewed (below the lease; settings check it)."""
    return settings.BATCH_PROCESSING_HEARTBEAT_SECONDS


def max_chunk_attempts() -> int:
    """Deliveries of one chunk before it is given up as failed (bounds a poison chunk)."""
    return settings.BATCH_PROCESSING_MAX_CHUNK_ATTEMPTS


def lease_expiry() -> Expression:
    """The database's now plus one lease."""
    return Now() + timedelta(seconds=lease_seconds())


def since(seconds: float) -> Expression:
    """The database's now minus ``seconds``."""
    return Now() - timedelta(seconds=seconds)


class LeaseHeartbeat:
    """One daemon thread per worker process renewing the leases of the chunks that process runs.

    ``hold`` registers a chunk when its task leases it and ``drop`` removes it when the task ends,
    however it ends. The thread starts on the first ``hold`` (in the pool child, after the fork),
    opens a database connection of its own only when there is a lease to renew, and closes it after
    each beat, so a terminated connection costs one missed beat, never a stuck thread.
    """

    def __init__(self) -> None:
        self._held: dict[int, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, *, chunk_id: int, task_id: str) -> None:
        with self._lock:
            self._held[chunk_id] = task_id
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="batch-lease-heartbeat", daemon=True)
                self._thread.start()

    def drop(self, *, chunk_id: int) -> None:
        with self._lock:
            self._held.pop(chunk_id, None)

    def renew(self) -> int:
        """Push the leases of the held chunks one lease past the database's now; returns how many."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return 0
        return BatchJobChunk.objects.filter(
            pk__in=list(held), task_id__in=list(held.values()), status=ChunkStatus.LEASED
        ).update(lease_expires_at=lease_expiry())

    def _run(self) -> None:
        stop = threading.Event()  # never set: the thread lives as long as its process
        while not stop.wait(heartbeat_seconds()):
            try:
                self.renew()
            except DatabaseError as exc:
                logger.warning("lease heartbeat failed (the reaper may hand the chunk over): %s", exc)
            finally:
                connection.close()


heartbeat = LeaseHeartbeat()
