from __future__ import annotations

import pytest

from modelcache.services import reset_model_cache


@pytest.fixture(autouse=True)
def _fresh_model_cache(monkeypatch):
    """Each test starts with an empty in-process tier and the cache enabled."""
    monkeypatch.delenv("MODEL_CACHE_ENABLED", raising=False)
    reset_model_cache()
    yield
    reset_model_cache()


@pytest.fixture
def cache_disabled(monkeypatch):
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "false")
