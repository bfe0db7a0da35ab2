"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reims.testing import WorkerProcess


@pytest.fixture
def celery_worker_process(transactional_db) -> Iterator[WorkerProcess]:
    """A real Celery worker process consuming the project's queues against the test database.

    Tests using it must be marked ``worker``: they run in their own, non-parallel pytest pass so
    that two worker processes never consume each other's tasks from the shared broker.
    """
    worker = WorkerProcess()
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def admin_api_client(admin_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def roles(db):
    """The analysts and managers groups (a transactional test's flush may have emptied them)."""
    from django.contrib.auth.models import Group, Permission

    from reims.roles import roles_sync

    roles_sync(Group, Permission)
    return {group.name: group for group in Group.objects.all()}
