"""The demo portfolio: deterministic, realistic, with labels that point at what was injected."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from documents.demo.generator import ANOMALY_KINDS, HISTORY_MONTHS, generate_portfolio, total_prefix
from documents.parsing import read_rows
from documents.parsing.common import CANONICAL_COLUMNS


@pytest.fixture(scope="module")
def portfolio():
    return generate_portfolio(properties=40, months=48, seed=7)


@pytest.fixture(scope="module")
def documents(portfolio):
    grouped = defaultdict(dict)
    for row in portfolio.rows:
        grouped[(row["property_code"], row["document_type"], row["period"])][row["account_code"]] = row
    return grouped


@pytest.fixture(scope="module")
def labelled(portfolio):
    return {(lab["property_code"], lab["document_type"], lab["period"]) for lab in portfolio.labels}


def _cents(amount: float) -> int:
    return round(amount * 100)


def test_same_seed_same_portfolio_other_seed_other_portfolio():
    a = generate_portfolio(properties=3, months=20, seed=5)
    b = generate_portfolio(properties=3, months=20, seed=5)
    c = generate_portfolio(properties=3, months=20, seed=6)
    assert a.rows == b.rows and a.labels == b.labels
    assert a.rows != c.rows


def test_shape_types_and_row_keys(portfolio, documents):
    assert len(documents) == 40 * 48 * 5
    assert {row["period"] for row in portfolio.rows} >= {"2021-01", "2024-12"}
    assert len({p["property_type"] for p in portfolio.properties}) >= 5
    areas = [p["area_sqft"] for p in portfolio.properties]
    assert max(areas) > 3 * min(areas)
    assert tuple(portfolio.rows[0]) == CANONICAL_COLUMNS
    assert all(row["amount"] == round(row["amount"], 2) for row in portfolio.rows[:5000])


def test_every_kind_is_injected_about_twenty_times_after_the_history(portfolio, documents):
    kinds = Counter(label["anomaly_kind"] for label in portfolio.labels)
    assert set(kinds) == set(ANOMALY_KINDS)
    assert all(count >= 20 for count in kinds.values()), kinds
    affected = {(lab["property_code"], lab["document_type"], lab["period"]) for lab in portfolio.labels}
    assert len(affected) / len(documents) < 0.03
    first_allowed = f"{2021 + HISTORY_MONTHS // 12}-{HISTORY_MONTHS % 12 + 1:02d}"
    assert min(label["period"] for label in portfolio.labels) >= first_allowed


def test_labels_point_at_rows_except_absent_missing_ones(portfolio, documents):
    absent = 0
    for label in portfolio.labels:
        document = documents[(label["property_code"], label["document_type"], label["period"])]
        row = document.get(label["account_code"])
        if row is None:
            assert label["anomaly_kind"] == "missing"
            absent += 1
            continue
        assert row["is_total"] == (label["anomaly_kind"] == "footing")
    assert absent > 0
    misclassified = Counter(
        (lab["property_code"], lab["period"]) for lab in portfolio.labels if lab["anomaly_kind"] == "misclassification"
    )
    assert set(misclassified.values()) == {2}  # both accounts labelled


def _footing_errors(document: dict) -> list[str]:
    wrong = []
    for code, row in document.items():
        prefix = total_prefix(code)
        if prefix is None:
            continue
        assert row["is_total"]
        members = sum(_cents(r["amount"]) for c, r in document.items() if c.startswith(prefix) and not r["is_total"])
        if members != _cents(row["amount"]):
            wrong.append(code)
    return wrong


def test_totals_foot_everywhere_except_footing_anomalies(portfolio, documents):
    footing = {
        (lab["property_code"], lab["document_type"], lab["period"], lab["account_code"])
        for lab in portfolio.labels
        if lab["anomaly_kind"] == "footing"
    }
    found = set()
    for key, document in documents.items():
        found |= {(*key, code) for code in _footing_errors(document)}
    assert found == footing


def test_assets_equal_liabilities_plus_equity_and_cash_rolls_forward(documents, labelled):
    checked = 0
    for (code, document_type, period), document in documents.items():
        if document_type != "balance_sheet" or (code, document_type, period) in labelled:
            continue
        assets, liabilities, equity = (_cents(document[c]["amount"]) for c in ("1999-0000", "2999-0000", "3999-0000"))
        assert assets == liabilities + equity
        checked += 1
    assert checked > 1800
    cash = documents[("P001", "balance_sheet", "2022-06")]["1110-0000"]["amount"]
    before = documents[("P001", "balance_sheet", "2022-05")]["1110-0000"]["amount"]
    change = documents[("P001", "cash_flow", "2022-06")]["9999-0000"]["amount"]
    assert _cents(cash) - _cents(before) == _cents(change)


def test_snow_only_in_winter_and_landscaping_only_in_season(portfolio, documents):
    seasonal = {(lab["property_code"], lab["period"], lab["account_code"]) for lab in portfolio.labels}
    snow_months, landscaping_months = Counter(), Counter()
    for (code, document_type, period), document in documents.items():
        if document_type != "income_statement":
            continue
        month = int(period[5:])
        for account, months in (("6020-0000", snow_months), ("6030-0000", landscaping_months)):
            row = document.get(account)
            if row and row["amount"] != 0 and (code, period, account) not in seasonal:
                months[month] += 1
    assert set(snow_months) == {12, 1, 2, 3}
    assert set(landscaping_months) == set(range(4, 11))


def test_mortgage_amortises_and_agrees_with_the_statements(documents, labelled):
    rows = [documents[("P002", "mortgage_statement", f"{2021 + m // 12}-{m % 12 + 1:02d}")] for m in range(48)]
    balances = [_cents(r["MS-PRINCIPAL-BALANCE"]["amount"]) for r in rows]
    rate = rows[0]["MS-INTEREST-RATE"]["amount"] / 100
    for previous, current, row in zip(balances, balances[1:], rows[1:], strict=False):
        interest = _cents(row["MS-INTEREST-PAID"]["amount"])
        principal = _cents(row["MS-PRINCIPAL-PAID"]["amount"])
        if ("P002", "mortgage_statement", row["MS-PRINCIPAL-PAID"]["period"]) in labelled:
            continue
        assert current < previous and previous - principal == current
        assert abs(interest - round(previous * rate / 12)) <= 1
        assert principal + interest == _cents(row["MS-TOTAL-PAYMENT"]["amount"])
    period = "2023-03"
    if not {("P002", t, period) for t in ("balance_sheet", "mortgage_statement", "income_statement")} & labelled:
        bs, ms = documents[("P002", "balance_sheet", period)], documents[("P002", "mortgage_statement", period)]
        assert bs["2510-0000"]["amount"] == ms["MS-PRINCIPAL-BALANCE"]["amount"]
        assert documents[("P002", "income_statement", period)]["7030-0000"]["amount"] == ms["MS-INTEREST-PAID"]["amount"]


def test_rent_roll_is_consistent(documents, labelled):
    for (code, document_type, period), document in list(documents.items())[:4000]:
        if document_type != "rent_roll" or (code, document_type, period) in labelled:
            continue
        total, occupied = document["RR-UNITS-TOTAL"]["amount"], document["RR-UNITS-OCCUPIED"]["amount"]
        assert abs(document["RR-OCCUPANCY-PCT"]["amount"] - round(100 * occupied / total, 2)) < 0.006
        income = documents[(code, "income_statement", period)]
        if (code, "income_statement", period) not in labelled:
            assert document["RR-MONTHLY-RENT"]["amount"] == income["4010-0000"]["amount"]


def test_lumpy_tax_and_insurance_and_management_fee_share(documents, labelled):
    tax_months, months_with_insurance = defaultdict(set), Counter()
    for (code, document_type, period), document in documents.items():
        if document_type != "income_statement" or (code, document_type, period) in labelled:
            continue
        if document["7010-0000"]["amount"]:
            tax_months[code].add(int(period[5:]))
        if document["7020-0000"]["amount"]:
            months_with_insurance[code] += 1
        fee, revenue = document["8010-0000"]["amount"], document["4999-0000"]["amount"]
        assert 0.029 <= fee / revenue <= 0.051
    assert {len(months) for months in tax_months.values()} == {2, 4}  # 2 or 4 instalments a year
    assert max(months_with_insurance.values()) <= 4  # once a year


def test_written_csvs_import_cleanly(tmp_path):
    small = generate_portfolio(properties=2, months=14, seed=1)
    paths = small.write(tmp_path)
    parsed = [row for path in paths["statements"] for row in read_rows(path.read_bytes(), path.name)]
    assert len(parsed) == len(small.rows)
    assert sum(r.amount for r in parsed) == sum(Decimal(f"{r['amount']:.2f}") for r in small.rows)
    assert (tmp_path / "labels.csv").read_text().startswith("property_code,document_type,period,account_code,anomaly_kind")


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_portfolio(properties=0, months=12, seed=1)
    with pytest.raises(ValueError):
        generate_portfolio(properties=1, months=12, seed=1, start="2021-13")
    assert generate_portfolio(properties=1, months=12, seed=1).labels == []  # no history, no anomalies
