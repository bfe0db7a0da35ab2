"""Reachability checks of the database and the Celery broker, for /healthz."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from reims.celery import app as celery_app


def check_database() -> str | None:
    """Return None when the database answers, else a short reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means unreachable
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None


def check_broker() -> str | None:
    """Return None when the broker accepts a connection, else a short reason."""
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.HEALTHCHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # kombu raises transport-specific errors
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None


def health_report() -> tuple[bool, dict[str, dict[str, object]]]:
    checks = {"database": check_database(), "broker": check_broker()}
    report = {name: {"ok": error is None, **({"error": error} if error else {})} for name, error in checks.items()}
    return all(error is None for error in checks.values()), report
