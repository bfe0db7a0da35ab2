"""Housekeeping tasks of the project itself (queue ``default``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="reims.tasks.ping")
def ping(value: str = "pong") -> str:
    """A round trip through the broker and the result backend (used by health tests)."""
    return value
