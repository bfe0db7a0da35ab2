"""Totals through the whole app: learned structure in the API, footing results in the export."""

from __future__ import annotations

import csv
from io import StringIO

import pytest
from django.core.management import call_command

from anomalies.tests.factories import UserFactory, load_rows, month_label
from documents.models import Property

pytestmark = pytest.mark.django_db

START = "2023-01"
MONTHS = 12
BROKEN_MONTH = 7


def statement_rows() -> list[dict]:
    """A ledger in its own codes and order: expenses, their total, revenue, its total."""
    rows = []
    for m in range(MONTHS):
        lines = [("EXP.UTIL", "Utilities", 900.0 + 37 * m), ("EXP.TAX", "Property Tax", 1200.0 + 11 * (m % 3))]
        revenue = [("R-BASE", "Base Rent", 10_000.0 + 50 * m), ("R-PARK", "Parking", 400.0 + 13 * (m % 5))]
        items = [
            *[(c, n, a, False) for c, n, a in lines],
            ("T-EXP", "Total Expenses", sum(a for _, _, a in lines), True),
            *[(c, n, a, False) for c, n, a in revenue],
            ("T-REV", "Total Revenue", sum(a for _, _, a in revenue) + (2_500.0 if m == BROKEN_MONTH else 0.0), True),
        ]
        for code, name, amount, total in items:
            rows.append(
                {
                    "property_code": "S1",
                    "property_type": "office",
                    "document_type": "income_statement",
                    "period": month_label(START, m),
                    "account_code": code,
                    "account_name": name,
                    "amount": round(amount, 2),
                    "is_total": total,
                }
            )
    return rows


@pytest.fixture
def statement(db, no_model_cache, statistical_only):
    load_rows(statement_rows())


def test_export_all_writes_every_total_with_its_footing_result(statement, tmp_path):
    call_command("detect_anomalies", "--no-progress", stdout=StringIO())
    out = tmp_path / "all.csv"
    call_command("export_anomalies", "--output", str(out), "--all", stdout=StringIO())
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == MONTHS * 6  # every line of every month, totals included
    totals = {(r["account_code"], r["period"]): r for r in rows if r["account_code"].startswith("T-")}
    assert len(totals) == 2 * MONTHS
    broken = totals[("T-REV", month_label(START, BROKEN_MONTH))]
    assert broken["is_anomaly"] == "true" and broken["detector"] == "statement:footing"
    assert float(broken["anomaly_score"]) >= 50
    assert float(broken["expected_value"]) == pytest.approx(float(broken["amount"]) - 2_500.0)
    fine = [r for k, r in totals.items() if k != ("T-REV", month_label(START, BROKEN_MONTH))]
    assert {(r["is_anomaly"], r["detector"], r["anomaly_score"]) for r in fine} == {("false", "statement:footing", "0.00")}


def test_the_learned_structure_is_readable_through_the_api(statement, api_client):
    prop = Property.objects.get(code="S1")
    url = f"/api/v1/anomalies/structure?property={prop.id}&document_type=income_statement"
    api_client.force_authenticate(UserFactory(username="outsider", default_portfolio=False))
    assert api_client.get(url).status_code == 404  # outside the user's portfolios reads as missing
    api_client.force_authenticate(UserFactory(username="reader"))  # granted the default portfolio
    response = api_client.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["property_code"] == "S1" and body["months"] == MONTHS
    assert (
        "Total Expenses (T-EXP) = the sum of the 2 lines from the start of the statement (foots in 12 of 12 months)"
        in body["structure"]
    )
    assert (
        "Total Revenue (T-REV) = the sum of the 2 lines after Total Expenses (T-EXP) (foots in 11 of 12 months)"
        in body["structure"]
    )


def test_the_structure_api_names_every_bad_field(api_client):
    api_client.force_authenticate(UserFactory(username="reader"))
    response = api_client.get("/api/v1/anomalies/structure?property=x&document_type=ledger")
    assert response.status_code == 400
    assert set(response.json()) == {"property", "document_type"}
    assert api_client.get("/api/v1/anomalies/structure?property=999&document_type=cash_flow").status_code == 404
