"""Fixtures of the documents tests: throttle histories start empty, event lines are captured."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import caches

from reims.logging import EVENT_LOGGER_NAME, JsonFormatter
from reims.throttles import THROTTLE_CACHE_ALIAS


@pytest.fixture(autouse=True)
def _fresh_throttle_history() -> Iterator[None]:
    # Histories are keyed by user id, and SQLite reuses ids after a rollback: start each test clean.
    caches[THROTTLE_CACHE_ALIAS].clear()
    yield
    caches[THROTTLE_CACHE_ALIAS].clear()


@pytest.fixture
def event_lines() -> Iterator[Callable[[], list[dict]]]:
    """The JSON lines written on the reims.events logger during the test, as dicts (parsed from
    the text the project's JsonFormatter writes, so a line that is not one JSON object fails)."""
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
