"""Broker side effects of batch jobs, always after the transaction that decided them commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from django.db import transaction
from kombu.exceptions import ChannelError

logger = logging.getLogger(__name__)


def job_task_send_on_commit(*, job_id: int, task_id: str) -> None:
    def send() -> None:
        from batch_jobs.tasks import reprocess_documents_batch

        reprocess_documents_batch.apply_async(args=[job_id], task_id=task_id)

    transaction.on_commit(send)


def chunk_tasks_send_on_commit(*, chunks: Sequence[tuple[int, str]]) -> None:
    """Send one ``process_batch_chunk`` per (chunk id, task id), in the given order."""
    if not chunks:
        return
    chunks = list(chunks)

    def send() -> None:
        from batch_jobs.tasks import process_batch_chunk

        for chunk_id, task_id in chunks:
            process_batch_chunk.apply_async(args=[chunk_id], task_id=task_id)

    transaction.on_commit(send)


def tasks_revoke_on_commit(*, task_ids: Iterable[str]) -> None:
    ids = [t for t in task_ids if t]
    if not ids:
        return

    def revoke() -> None:
        from reims.celery import app

        try:
            # Skips tasks not yet started; never terminate: the cancel flag stops the rest.
            app.control.revoke(ids)
        except Exception as exc:  # e.g. a broker without broadcast support
            logger.warning("could not revoke %d chunk tasks: %s", len(ids), exc)

    transaction.on_commit(revoke)


def chunk_queue_depth() -> int | None:
    """Messages waiting in the chunk tasks' broker queue; 0 when the queue is gone (a broker that
    restarted empty), None when the broker cannot be asked."""
    from batch_jobs.tasks import process_batch_chunk
    from reims.celery import app

    queue = app.amqp.router.route({}, process_batch_chunk.name)["queue"].name
    try:
        with app.connection_for_read() as conn:
            try:
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                return 0  # no such queue: nothing waits in it
    except Exception as exc:  # the broker is unreachable: decide on the next pass
        logger.warning("could not read the depth of queue %r: %s", queue, exc)
        return None
