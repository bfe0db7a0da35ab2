"""What the console reads: an anomaly's series and band, its PDF source, a property's heatmap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anomalies import console, selectors, services
from anomalies.models import AnomalyDetection
from anomalies.selectors import SeriesPoint
from anomalies.tests.conftest import ledger_amounts
from anomalies.tests.factories import LineItemFactory, load_rows, series_rows
from documents.models import DocumentUpload, LineItem, PDFFieldCoordinate

pytestmark = pytest.mark.django_db


@pytest.fixture
def detected(ledger, statistical_only):
    services.detection_run(all_documents=True)
    return AnomalyDetection.objects.get(is_anomaly=True)


def test_series_has_one_point_per_month_with_gaps_and_the_stored_expectations(db, no_model_cache, statistical_only):
    amounts = ledger_amounts()
    amounts["6010-0000"][3] = None  # no repairs line in 2022-04
    load_rows(series_rows(property_code="A1", amounts=amounts, start="2022-01"))
    services.detection_run(all_documents=True)
    detection = AnomalyDetection.objects.get(is_anomaly=True, account_code="6010-0000", period__month=6)

    points = selectors.anomaly_series(detection=detection)

    assert [p.label for p in points] == [f"{2022 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]
    # The absent line is a missing posting: flagged, without an amount, drawn as a line on the chart.
    assert points[3].amount is None and points[3].is_anomaly and points[3].detection_id
    assert points[17].detection_id == detection.id and points[17].is_anomaly
    assert points[17].amount == float(detection.field_value)
    assert points[17].expected == float(detection.expected_value)
    assert sum(p.is_anomaly for p in points) == 2
    chart = console.series_chart(detection=detection)
    assert chart.svg.count('class="anomaly-absent"') == 1 and chart.svg.count('class="anomaly-point"') == 1


def test_series_follows_the_latest_version_only(detected):
    old = detected.document
    DocumentUpload.objects.filter(id=old.id).update(is_latest=False)
    new = DocumentUpload.objects.create(
        property=old.property, document_type=old.document_type, period=old.period, version=2, content_hash="v2"
    )
    LineItem.objects.create(document=new, account_code=detected.account_code, account_name="Repairs", amount=3100)

    points = selectors.anomaly_series(detection=detected)

    month = next(p for p in points if p.label == detected.period.label)
    assert month.amount == 3100.0 and month.detection_id is None  # the new version is not scored yet


def _point(amount, expected, z, flagged=False):
    return SeriesPoint(ordinal=0, label="", amount=amount, expected=expected, z_score=z, is_anomaly=flagged)


def test_expected_band_is_the_flag_distance_in_the_series_own_scale():
    # Ordinary months deviate by 1 or 2 scales of 100; the flagged one must not widen the band.
    points = [
        _point(1100.0, 1000.0, 1.0),
        _point(800.0, 1000.0, -2.0),
        _point(1050.0, 1000.0, 0.5),
        _point(10000.0, 1000.0, 60.0, flagged=True),
        _point(None, None, None),
    ]
    low, high, z_flag = console.expected_band(points, threshold=50.0)
    assert z_flag == pytest.approx(5.0)
    assert high[0] == pytest.approx(1500.0) and low[0] == pytest.approx(500.0)
    assert low[4] is None and high[4] is None
    # A stricter threshold (a higher score to flag) widens the band.
    assert console.expected_band(points, threshold=75.0)[1][0] > high[0]


def test_no_band_without_ordinary_deviations():
    low, high, z_flag = console.expected_band([_point(5.0, 5.0, 0.0), _point(None, None, None)], threshold=None)
    assert z_flag is None and low == [None, None] and high == [None, None]


def test_series_chart_of_a_detection_marks_it_and_explains_its_band(detected):
    chart = console.series_chart(detection=detected)
    assert chart.svg.count('class="anomaly-point"') == 1
    assert 'class="current"' in chart.svg and 'class="expected-band"' in chart.svg
    assert "flag threshold 50" in chart.band_note


def test_factor_rows_read_both_stored_shapes():
    features = [{"feature": "decimal_shift", "value": 0.99, "contribution": 0.62}, {"feature": "yoy_ratio", "value": 9.9}]
    rows = console.factor_rows(features)
    assert rows[0] == {"name": "Looks like a misplaced decimal point", "share": 0.62, "percent": 62, "detail": "yes"}
    assert rows[1]["percent"] is None and rows[1]["detail"] == "9.9× last year's amount"
    local = console.factor_rows([{"feature": "local_residual_z", "value": 22.418, "contribution": 0.2234}])
    assert local[0]["name"] == "Distance from the six surrounding months"
    assert local[0]["detail"] == "22.4× its usual spread above" and local[0]["percent"] == 22
    statement = {
        "statement": {"feature": "statement_arithmetic", "difference": -5980.74, "covered_accounts": ["9310", "9320"]},
        "feedback": {"reason": "ignored"},
    }
    rows = console.factor_rows(statement)
    assert [r["name"] for r in rows] == ["The statement's own arithmetic"]
    assert "difference -5,981" in rows[0]["detail"] and "covered accounts 9310, 9320" in rows[0]["detail"]
    assert console.factor_rows({"features": features})[0]["name"] == "Looks like a misplaced decimal point"
    assert console.factor_rows(["free text"]) == [{"name": "free text", "share": None, "detail": ""}]


def test_source_boxes_put_the_amount_first_and_fall_back_to_the_line_box(detected):
    assert selectors.detection_source_boxes(detection=detected) == []
    LineItem.objects.filter(id=detected.line_item_id).update(page_number=1, x0=10.0, y0=20.0, x1=30.0, y1=40.0)
    detected = AnomalyDetection.objects.select_related("line_item").get(id=detected.id)
    assert selectors.detection_source_boxes(detection=detected)[0]["field"] == "line"
    for field in ("account_code", "amount"):
        PDFFieldCoordinate.objects.create(
            document_id=detected.document_id,
            record_id=detected.line_item_id,
            field_name=field,
            page_number=2,
            x0=1,
            y0=2,
            x1=3,
            y1=4,
            matched_text=field,
        )
    boxes = selectors.detection_source_boxes(detection=detected)
    assert [b["field"] for b in boxes] == ["amount", "account_code"]
    assert boxes[0]["page_number"] == 2 and boxes[0]["matched_text"] == "amount"


def test_an_absent_posting_has_no_source(detected):
    detected.line_item = None
    assert selectors.detection_source_boxes(detection=detected) == []


def test_property_heatmap_has_flagged_series_over_every_month(detected):
    other_doc = DocumentUpload.objects.filter(property=detected.property).exclude(id=detected.document_id).first()
    peak = AnomalyDetection.objects.filter(document=other_doc).first()
    AnomalyDetection.objects.filter(id=peak.id).update(is_anomaly=True, anomaly_score=77.0, severity="high")

    heatmap = selectors.property_anomaly_heatmap(property_id=detected.property_id)

    assert heatmap.periods[0] == "2022-01" and heatmap.periods[-1] == "2023-12" and len(heatmap.periods) == 24
    assert sorted(heatmap.rows) == sorted({("income_statement", "6010-0000"), ("income_statement", peak.account_code)})
    cell = heatmap.cells[(heatmap.rows.index(("income_statement", "6010-0000")), 17)]
    assert (cell.detection_id, cell.severity) == (detected.id, detected.severity)
    assert len(heatmap.cells) == 2
    svg = console.property_heatmap_svg(property_id=detected.property_id)
    assert svg.count("<a href=") == 2 and "IS 6010-0000" in svg


def test_property_heatmap_of_a_property_without_documents_is_empty(db):
    line = LineItemFactory(amount=Decimal("1"))
    DocumentUpload.objects.filter(id=line.document_id).update(is_latest=False)
    assert selectors.property_anomaly_heatmap(property_id=line.document.property_id).is_empty
    assert console.property_heatmap_svg(property_id=line.document.property_id) == ""
