"""Fixtures of the documents tests: throttle histories start empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import caches

from kernel.throttles import THROTTLE_CACHE_ALIAS


@pytest.fixture(autouse=True)
def _fresh_throttle_history() -> Iterator[None]:
    # Histories are keyed by user id, and SQLite reuses ids after a rollback: start each test clean.
    caches[THROTTLE_CACHE_ALIAS].clear()
    yield
    caches[THROTTLE_CACHE_ALIAS].clear()
