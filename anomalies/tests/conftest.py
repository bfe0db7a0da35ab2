"""Fixtures of the anomalies app's Django tests (none autouse: other suites share this folder)."""

from __future__ import annotations

import numpy as np
import pytest

from anomalies.tests.factories import UserFactory, load_rows, month_label, series_rows

START = "2022-01"
MONTHS = 24
SHIFT_MONTH = 17  # 2023-06: repairs posted x10 (a decimal shift)


def ledger_amounts(*, seed: int = 3, months: int = MONTHS, shift_month: int | None = SHIFT_MONTH) -> dict[str, list]:
    """Three well-behaved income-statement lines, with one decimal shift on repairs."""
    rng = np.random.default_rng(seed)
    rent = [round(50000.0 * (1.03 if m >= 12 else 1.0), 2) for m in range(months)]
    electricity = [round(8000.0 + 1500.0 * np.cos(2 * np.pi * (m - 6) / 12) + rng.normal(0, 150), 2) for m in range(months)]
    repairs = [round(3000.0 + rng.normal(0, 120), 2) for m in range(months)]
    if shift_month is not None:
        repairs[shift_month] = round(repairs[shift_month] * 10, 2)
    return {"4010-0000": rent, "5010-0000": electricity, "6010-0000": repairs}


@pytest.fixture
def no_model_cache(monkeypatch):
    """Train directly: the in-process model LRU must not carry models between tests."""
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "false")


@pytest.fixture
def ledger(db, no_model_cache) -> dict[tuple[str, str, str], int]:
    """One office property, 24 months of three income-statement lines; repairs x10 in 2023-06."""
    return load_rows(series_rows(property_code="A1", amounts=ledger_amounts(), start=START))


@pytest.fixture
def shifted_period() -> str:
    return month_label(START, SHIFT_MONTH)


@pytest.fixture
def analyst(db):
    return UserFactory(username="ana", feedback_permission=True)


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer")


@pytest.fixture
def statistical_only(monkeypatch):
    """FEATURE_FLAG_PYOD off: the fast statistical detectors (tests of what is around the engine)."""
    monkeypatch.setenv("FEATURE_FLAG_PYOD", "false")


def level_shift_amounts(months: int = MONTHS, step_month: int = 12) -> dict[str, list]:
    """Service contract at 10,000 a month that moves to 16,000 from ``step_month`` on."""
    amounts = ledger_amounts(shift_month=None, months=months)
    amounts["7010-0000"] = [10000.0 if m < step_month else 16000.0 for m in range(months)]
    return amounts
