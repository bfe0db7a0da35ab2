"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reims.testing import WorkerProcess


@pytest.fixture(autouse=True)
def fresh_detection_contexts() -> Iterator[None]:
    """No property's detection context is carried from one test to the next: a rolled-back test's
    ids are reused by the next one, so a data version could match data it was not computed on."""
    from anomalies.services.context import context_cache_clear

    context_cache_clear()
    yield


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


@pytest.fixture
def browser():
    """Headless Chromium through Selenium; skipped where it is not installed, except in CI."""
    import os
    from pathlib import Path

    from reims.testing import CHROMEDRIVER_PATH, chromium_binary, headless_chromium

    if not chromium_binary() or not Path(CHROMEDRIVER_PATH).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: scripts/install_browser.sh installs them")
        pytest.skip("chromium/chromedriver not installed (scripts/install_browser.sh)")
    driver = headless_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(request):
    """Save a PNG of the browser's page as a test artifact under var/test-artifacts/screenshots/."""
    from reims.testing import SCREENSHOT_DIR

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(driver, name: str) -> str:
        path = SCREENSHOT_DIR / f"{request.node.name}-{name}.png"
        driver.save_screenshot(str(path))
        return str(path)

    return take


@pytest.fixture
def event_lines():
    """The JSON lines written on the reims.events logger during the test, as dicts (parsed from
    the text the project's JsonFormatter writes, so a line that is not one JSON object fails)."""
    import io
    import json
    import logging

    from kernel.logging import EVENT_LOGGER_NAME, JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    event_logger = logging.getLogger(EVENT_LOGGER_NAME)
    event_logger.addHandler(handler)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    try:
        yield lines
    finally:
        event_logger.removeHandler(handler)
