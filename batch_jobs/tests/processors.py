"""Chunk processors used only by the tests: registered in the test process by conftest.py and in
worker processes through ``worker_settings.py`` (CELERY_IMPORTS)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence

from batch_jobs.processors import DocumentResult, check_documents, register_processor
from documents.models import DocumentUpload


def _marked(document_ids: Sequence[int], mark: str) -> set[int]:
    return set(DocumentUpload.objects.filter(id__in=document_ids, file_name=mark).values_list("id", flat=True))


@register_processor("test_fail_marked")
def fail_marked(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    """Raises when a document named BAD is in the batch, like a detector choking on one document."""
    if _marked(document_ids, "BAD"):
        raise ValueError("cannot parse amounts of a BAD document")
    return check_documents(document_ids)


@register_processor("test_slow_check")
def slow_check(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    time.sleep(0.15)
    return check_documents(document_ids)


@register_processor("test_kill_marked")
def kill_marked(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    """SIGKILLs its own worker process whenever a POISON document is in the chunk."""
    if _marked(document_ids, "POISON"):
        os.kill(os.getpid(), signal.SIGKILL)
    return check_documents(document_ids)


@register_processor("test_slow_detect")
def slow_detect(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    """The real detection, slowed down so that a test can kill its worker mid-job."""
    from batch_jobs.processors import detect_anomalies

    time.sleep(0.3)
    return detect_anomalies(document_ids)


@register_processor("test_hang_once_detect")
def hang_once_detect(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    """The real detection, except that the first delivery of a chunk holding a HANG document
    blocks for good (a worker wedged mid-chunk, until the test kills it); later deliveries run.

    "First" is decided by a marker file in BATCH_TEST_MARKER_DIR, created exclusively, so every
    worker process of one test agrees on it.
    """
    from batch_jobs.processors import detect_anomalies

    for document_id in _marked(document_ids, "HANG"):
        marker = os.path.join(os.environ["BATCH_TEST_MARKER_DIR"], f"hang-{document_id}")
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        threading.Event().wait()  # never set: only SIGKILL ends this delivery
    return detect_anomalies(document_ids)


_CONNECTION_LOST: set[int] = set()


@register_processor("test_connection_lost_once")
def connection_lost_once(document_ids: Sequence[int]) -> dict[int, DocumentResult]:
    """The first run of a chunk in this process loses its database connection mid-chunk."""
    from django.db import OperationalError

    if document_ids[0] not in _CONNECTION_LOST:
        _CONNECTION_LOST.add(document_ids[0])
        raise OperationalError("terminating connection due to administrator command")
    return check_documents(document_ids)
