"""Portfolio benchmarks (issue 19, item 9): cross_property_benchmarks per account, month and
property type, per square foot for statement amounts, and the review page's peer sentence."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from anomalies.models import AnomalyDetection, CrossPropertyBenchmark
from anomalies.selectors.benchmarks import benchmark_position
from anomalies.services.benchmarks import portfolio_benchmarks_refresh
from anomalies.tests.factories import DocumentFactory, LineItemFactory, PropertyFactory, period_for
from kernel.flags import FeatureDisabled

pytestmark = pytest.mark.django_db
RENT = "4010-0000"


@pytest.fixture
def enabled(monkeypatch):
    monkeypatch.setenv("PORTFOLIO_BENCHMARKS_ENABLED", "true")


def _statement(code: str, kind: str, area: int | None, rent: str, *, occupancy: str = "0.95") -> AnomalyDetection:
    prop = PropertyFactory(code=code, property_type=kind, area_sqft=area)
    period = period_for("2024-03")
    income = DocumentFactory(property=prop, period=period)
    line = LineItemFactory(document=income, account_code=RENT, account_name="Base rent", amount=Decimal(rent))
    LineItemFactory(document=income, account_code="4999-0000", amount=Decimal(rent), is_total=True)
    roll = DocumentFactory(property=prop, period=period, document_type="rent_roll")
    LineItemFactory(document=roll, account_code="RR-OCCUPANCY-PCT", amount=Decimal(occupancy))
    return AnomalyDetection.objects.create(
        line_item=line,
        document=income,
        property=prop,
        document_type="income_statement",
        period=period,
        account_code=RENT,
        field_value=line.amount,
        anomaly_score=90.0,
        is_anomaly=True,
        detector="test",
    )


@pytest.fixture
def portfolio():
    """Five offices of 10,000 sq ft (rent 1.10 to 1.60 per sq ft, one at 4.80) and two retail properties."""
    offices = [
        _statement(f"O{i}", "office", 10_000, rent)
        for i, rent in enumerate(["11000.00", "12000.00", "14000.00", "16000.00", "48000.00"])
    ]
    _statement("R1", "retail", 5_000, "9000.00")
    retail = _statement("R2", "retail", 5_000, "10000.00")
    _statement("X1", "office", None, "50000.00")  # no area: out of the per-sq-ft figures
    return {"outlier": offices[-1], "retail": retail}


def test_refresh_fills_the_table_per_account_month_and_property_type(enabled, portfolio):
    summary = portfolio_benchmarks_refresh()
    office = CrossPropertyBenchmark.objects.get(account_code=RENT, property_group="office")
    assert office.property_count == 5 and office.median == pytest.approx(1.4)
    assert office.p25 == pytest.approx(1.2) and office.p75 == pytest.approx(1.6)
    assert office.mean == pytest.approx((1.1 + 1.2 + 1.4 + 1.6 + 4.8) / 5)
    assert office.p90 > office.p75 and office.p95 > office.p90 and office.std > 0
    assert CrossPropertyBenchmark.objects.get(account_code=RENT, property_group="all").property_count == 7
    assert CrossPropertyBenchmark.objects.get(account_code=RENT, property_group="retail").property_count == 2
    # Metrics are compared as reported; totals are not benchmarked.
    occupancy = CrossPropertyBenchmark.objects.get(account_code="RR-OCCUPANCY-PCT", property_group="office")
    assert occupancy.median == pytest.approx(0.95) and occupancy.property_count == 6
    assert not CrossPropertyBenchmark.objects.filter(account_code="4999-0000").exists()
    assert summary.rows == CrossPropertyBenchmark.objects.count()
    portfolio_benchmarks_refresh()  # a second run replaces the rows, it does not add to them
    assert CrossPropertyBenchmark.objects.count() == summary.rows


def test_the_review_page_says_where_the_property_stands(enabled, portfolio, admin_client):
    portfolio_benchmarks_refresh()
    position = benchmark_position(detection=portfolio["outlier"])
    assert position.sentence == "Office peers, per sq ft: p25 1.20, p75 1.60; this property 4.80, above p95 (5 properties)."
    html = admin_client.get(reverse("admin:anomalies_anomalydetection_change", args=[portfolio["outlier"].pk])).content
    assert b"Office peers, per sq ft: p25 1.20, p75 1.60; this property 4.80, above p95" in html


def test_a_group_of_fewer_than_three_properties_says_so(enabled, portfolio):
    portfolio_benchmarks_refresh()
    sentence = benchmark_position(detection=portfolio["retail"]).sentence
    assert sentence == "Only 2 retail properties report this account this month: too few to compare (at least 3 needed)."


def test_off_by_default_and_the_command_says_so(portfolio, admin_client):
    with pytest.raises(FeatureDisabled):
        portfolio_benchmarks_refresh()
    with pytest.raises(CommandError, match="PORTFOLIO_BENCHMARKS_ENABLED"):
        call_command("refresh_benchmarks")
    html = admin_client.get(reverse("admin:anomalies_anomalydetection_change", args=[portfolio["outlier"].pk])).content
    assert b"Portfolio benchmarks are off (PORTFOLIO_BENCHMARKS_ENABLED)" in html
