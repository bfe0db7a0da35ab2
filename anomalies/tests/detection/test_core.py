"""The numeric core on small hand-made series (no demo generator, no Django)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from anomalies.detection.catalogue import get_available_algorithms
from anomalies.detection.characteristics import series_characteristics
from anomalies.detection.detectors import train_model
from anomalies.detection.engine import detect_anomalies
from anomalies.detection.features import FEATURE_NAMES, AnomalyFeatureEngineer
from anomalies.detection.provider import TrainingProvider
from anomalies.detection.scoring import score_from_z, severity
from anomalies.detection.table import (
    LINE_TABLE_COLUMNS,
    LineTable,
    build_panel,
    line_table_from_rows,
    period_from_string,
)
from anomalies.tests.detection.synthetic_portfolio import generate_synthetic_portfolio

START = period_from_string("2021-01")


def table_of(series: dict[tuple[int, str, str], list[float | None]], totals: dict | None = None) -> LineTable:
    cols: dict[str, list] = {k: [] for k in LINE_TABLE_COLUMNS}
    order = {}
    for (pid, doc, code), values in series.items():
        for t, v in enumerate(values):
            if v is None:
                continue
            pos = order.setdefault((pid, doc, t), 0)
            order[(pid, doc, t)] = pos + 1
            for k, val in (
                ("property_ids", pid),
                ("property_types", "office"),
                ("document_types", doc),
                ("account_codes", code),
                ("periods", START + t),
                ("amounts", v),
                ("is_total", False),
                ("row_order", pos),
            ):
                cols[k].append(val)
    cols["line_ids"] = list(range(len(cols["periods"])))
    return LineTable.from_columns(**cols)


def flagged_periods(result, table: LineTable, code: str) -> list[int]:
    rows = np.flatnonzero(result.is_anomaly & (table.account_codes == code))
    return sorted(int(table.periods[r]) - START for r in rows)


def rent(n: int = 36, base: float = 10_000.0) -> list[float]:
    return [base * 1.03 ** (t // 12) for t in range(n)]


def test_catalogue_comes_from_pyod_knowledge_base() -> None:
    algos = get_available_algorithms()
    assert len(algos) >= 45
    by_name = {a["name"]: a for a in algos}
    assert by_name["ECOD"]["available"] and by_name["ECOD"]["family"] == "probabilistic"
    assert not by_name["AutoEncoder"]["available"]
    assert "torch" in by_name["AutoEncoder"]["unavailable_reason"]
    assert all({"name", "full_name", "family", "cost", "available", "unavailable_reason"} <= set(a) for a in algos)


@pytest.mark.parametrize(
    ("factor", "kind"),
    [(10.0, "decimal_shift"), (-1.0, "sign_flip"), (2.0, "duplicate"), (0.0, "missing"), (0.01, "decimal_shift")],
)
def test_point_errors_on_a_rent_line(factor: float, kind: str) -> None:
    values = rent()
    values[20] *= factor
    table = table_of({(1, "income_statement", "4010-0000"): values})
    result = detect_anomalies(table, use_pyod=False)
    assert flagged_periods(result, table, "4010-0000") == [20]
    (finding,) = result.findings
    assert finding.anomaly_type == kind
    assert finding.detector == "statistical:robust_z"
    assert finding.explanation.sentence
    assert finding.explanation.explanation_method == "rules+contributions"


def test_escalations_and_lumpy_lines_are_normal() -> None:
    insurance = [24_000.0 * 1.05 ** (t // 12) if t % 12 == 5 else 0.0 for t in range(36)]
    tax = [30_000.0 if t % 12 in (3, 9) else 0.0 for t in range(36)]
    table = table_of(
        {
            (1, "income_statement", "4010-0000"): rent(),
            (1, "income_statement", "5020-0000"): insurance,
            (1, "income_statement", "5010-0000"): tax,
        }
    )
    result = detect_anomalies(table, use_pyod=False)
    assert not result.is_anomaly.any()


def test_level_shift_is_flagged_once_at_its_first_month() -> None:
    values = [5_000.0 * (1.5 if t >= 20 else 1.0) for t in range(36)]
    table = table_of({(1, "income_statement", "8020-0000"): values})
    result = detect_anomalies(table, use_pyod=False)
    assert flagged_periods(result, table, "8020-0000") == [20]
    assert result.findings[0].anomaly_type == "level_shift"


def test_level_shift_in_a_noisy_line_is_found_at_its_first_month() -> None:
    """A lasting shift in a line with monthly noise (flat or seasonal): the noise is measured
    inside the segments before and after the change, not over the shifted history."""
    rng = np.random.default_rng(3)
    t = np.arange(48)
    flat = 6_000.0 * (1 + rng.normal(0, 0.06, 48)) * np.where(t >= 22, 1.4, 1.0)
    season = 1 + 0.35 * np.cos(2 * np.pi * (t % 12) / 12)
    utilities = 8_000.0 * season * (1 + rng.normal(0, 0.07, 48)) * np.where(t >= 27, 0.6, 1.0)
    # A cash balance is a random walk: its level wanders, it never shifts.
    cash = 200_000.0 + np.cumsum(rng.normal(0, 6_000.0, 48))
    table = table_of(
        {
            (1, "income_statement", "4030-0000"): list(flat),
            (1, "income_statement", "5030-0000"): list(utilities),
            (1, "balance_sheet", "1010-0000"): list(cash),
        }
    )
    result = detect_anomalies(table, use_pyod=False)
    assert 22 in flagged_periods(result, table, "4030-0000")
    assert 27 in flagged_periods(result, table, "5030-0000")
    types = {(f.account_code, f.period - START): f.anomaly_type for f in result.findings}
    assert "level_shift" in (types[("4030-0000", 22)], types[("5030-0000", 27)])
    assert "level_shift" not in {kind for (code, _), kind in types.items() if code == "1010-0000"}


def test_snow_removal_in_july_is_seasonal() -> None:
    rng = np.random.default_rng(1)
    snow = [float(rng.uniform(2_000, 5_000)) if t % 12 in (11, 0, 1, 2) else 0.0 for t in range(36)]
    snow[18] = 3_000.0  # July of the second year
    table = table_of({(1, "income_statement", "6020-0000"): snow})
    result = detect_anomalies(table, use_pyod=False)
    assert flagged_periods(result, table, "6020-0000") == [18]
    assert result.findings[0].anomaly_type == "seasonal"


def test_misclassification_flags_the_pair_once_each() -> None:
    a, b = rent(base=4_000.0), rent(base=6_000.0)
    b[25] += a[25]
    a[25] = 0.0
    table = table_of({(1, "income_statement", "6040-0000"): a, (1, "income_statement", "6050-0000"): b})
    result = detect_anomalies(table, use_pyod=False)
    assert {f.account_code for f in result.findings} == {"6040-0000", "6050-0000"}
    assert all(f.anomaly_type == "misclassification" and f.related_rows for f in result.findings)


def test_short_nan_zero_and_constant_series_never_crash() -> None:
    table = table_of(
        {
            (1, "income_statement", "4010-0000"): [100.0, 5_000.0, 100.0],  # 3 points: not modelled
            (1, "income_statement", "4020-0000"): [0.0] * 24,
            (1, "income_statement", "4030-0000"): [7.0] * 24,
            (1, "income_statement", "4040-0000"): [float("nan")] * 12 + [5.0] * 12,
            (2, "balance_sheet", "1010-0000"): [1.0],
        }
    )
    result = detect_anomalies(table, use_pyod=True)
    assert not result.is_anomaly.any()
    short = {(h.property_id, h.account_code): h.n_points for h in result.insufficient_history}
    assert short[(1, "4010-0000")] == 3 and short[(2, "1010-0000")] == 1


def test_absent_posting_is_reported_with_row_minus_one() -> None:
    values: list[float | None] = list(rent())
    values[30] = None
    table = table_of(
        {(1, "income_statement", "4010-0000"): values, (1, "income_statement", "4020-0000"): rent(base=3_000.0)}
    )
    result = detect_anomalies(table, use_pyod=False)
    absent = [f for f in result.findings if f.row == -1]
    assert [(f.account_code, f.period - START, f.anomaly_type) for f in absent] == [("4010-0000", 30, "missing")]


def test_features_and_characteristics_are_finite() -> None:
    pf = generate_synthetic_portfolio(properties=2, months=30, seed=3)
    ctx, fs = AnomalyFeatureEngineer().transform_table(line_table_from_rows(pf.rows).table)
    assert fs.values.shape[-1] == len(FEATURE_NAMES) and np.isfinite(fs.values).all()
    chars = series_characteristics(ctx.panel.values[0], fs.values[0])
    assert chars["n_samples"] == 30 and all(np.isfinite(v) for v in chars.values() if isinstance(v, float))
    assert build_panel(line_table_from_rows(pf.rows).table).n_series == ctx.panel.n_series


def test_trained_model_is_picklable_and_scores_all_rows_at_once() -> None:
    x = np.random.default_rng(0).normal(size=(36, 6))
    model = train_model("ECOD", x, seed=0, feature_names=tuple("abcdef"))
    clone = pickle.loads(pickle.dumps(model))
    assert np.allclose(clone.decision_function(x), model.decision_function(x))
    assert model.model_version.endswith(":ECOD") and np.isfinite(model.threshold)


def test_scores_and_severity_scale() -> None:
    assert score_from_z(np.array([5.0]))[0] == pytest.approx(50.0)
    assert severity(95) == "critical" and severity(80) == "high" and severity(65) == "medium" and severity(55) == "low"


def test_pyod_path_records_selection_and_detector(tmp_path) -> None:
    del tmp_path
    values = rent()
    values[20] *= 10
    table = table_of({(1, "income_statement", "4010-0000"): values, (1, "income_statement", "4020-0000"): rent()})
    calls = []

    class Provider(TrainingProvider):
        def get_or_train(self, request, x_train, train):
            calls.append(request)
            return train()

    result = detect_anomalies(table, use_pyod=True, model_provider=Provider())
    # Only the series holding a candidate (the x10 month) is selected, fitted and logged.
    assert [request.series.account_code for request in calls] == ["4010-0000"]
    assert len(result.selections) == 1
    assert flagged_periods(result, table, "4010-0000") == [20]
    assert result.findings[0].detector.startswith("pyod:") and result.findings[0].detector.endswith("+robust_z")
    assert result.selections[0].selection.selected_model in result.selections[0].selection.rule_candidates
