"""Cross-statement reconciliation on a hand-made property (no generator)."""

from __future__ import annotations

import numpy as np

from anomalies.detection.engine import detect_anomalies
from anomalies.tests.detection.test_core import flagged_periods, table_of


def _deposits_property(n: int = 36, seed: int = 2) -> tuple[list[float], list[float]]:
    """A security-deposit balance that random-walks and the cash-flow line reporting its change."""
    rng = np.random.default_rng(seed)
    balance = list(np.round(50_000 + np.cumsum(rng.choice([0.0, 0.0, 850.0, -850.0], n) * rng.uniform(0.5, 3, n)), 2))
    change = [round(balance[t] - balance[t - 1], 2) if t else 0.0 for t in range(n)]
    return balance, change


def test_small_mixed_sign_line_error_is_blamed_by_the_broken_identity() -> None:
    balance, change = _deposits_property()
    t = next(i for i in range(20, 36) if abs(change[i]) > 100)
    change[t] = round(change[t] * 10, 2)  # decimal shift on the cash-flow line only
    table = table_of({(1, "balance_sheet", "2120-0000"): balance, (1, "cash_flow", "9170-0000"): change})
    result = detect_anomalies(table, use_pyod=False)
    assert flagged_periods(result, table, "9170-0000") == [t]
    assert flagged_periods(result, table, "2120-0000") == []
    (finding,) = [f for f in result.findings if f.account_code == "9170-0000"]
    assert finding.anomaly_type == "decimal_shift"


def test_lumpy_changes_confirmed_by_the_balance_sheet_stay_quiet() -> None:
    balance, change = _deposits_property(seed=5)
    table = table_of({(1, "balance_sheet", "2120-0000"): balance, (1, "cash_flow", "9170-0000"): change})
    result = detect_anomalies(table, use_pyod=False)
    assert not result.is_anomaly.any()


def test_stock_point_error_breaks_two_changes_and_is_blamed_once() -> None:
    balance, change = _deposits_property(seed=9)
    balance[24] = -balance[24]  # sign flip on the balance sheet only
    table = table_of({(1, "balance_sheet", "2120-0000"): balance, (1, "cash_flow", "9170-0000"): change})
    result = detect_anomalies(table, use_pyod=False)
    assert flagged_periods(result, table, "2120-0000") == [24]
    assert flagged_periods(result, table, "9170-0000") == []
