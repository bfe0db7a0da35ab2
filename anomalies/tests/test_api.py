"""The anomalies API: list filters, detail with explanation, feedback permissions, catalogue, log."""

from __future__ import annotations

import pytest
from django.urls import reverse

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyFeedback, ModelSelectionLog
from documents.models import PDFFieldCoordinate, Property

pytestmark = pytest.mark.django_db

LIST = "/api/v1/anomalies/"


@pytest.fixture
def detected(ledger, statistical_only):
    services.detection_run(all_documents=True)
    return AnomalyDetection.objects.get(is_anomaly=True)


@pytest.fixture
def client_for(api_client):
    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login


def test_anonymous_users_are_refused(api_client, detected):
    assert api_client.get(LIST).status_code in (401, 403)
    assert api_client.post(f"{LIST}{detected.id}/feedback", {"feedback_type": "confirmed"}).status_code in (401, 403)


def test_list_shows_flagged_lines_by_default(client_for, viewer, detected, shifted_period):
    response = client_for(viewer).get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    item = body["results"][0]
    assert (item["id"], item["property_code"], item["period"]) == (detected.id, "A1", shifted_period)
    assert item["anomaly_type"] == "decimal_shift" and item["is_anomaly"] is True
    assert client_for(viewer).get(LIST, {"is_anomaly": "all"}).json()["count"] == 72
    assert client_for(viewer).get(LIST, {"is_anomaly": "false"}).json()["count"] == 71


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"property": "A1"}, 1),
        ({"property": "B9"}, 0),
        ({"document_type": "income_statement"}, 1),
        ({"document_type": "balance_sheet"}, 0),
        ({"period_from": "2023-06", "period_to": "2023-06"}, 1),
        ({"period_from": "2023-07"}, 0),
        ({"period_to": "2023-05"}, 0),
        ({"min_score": 50}, 1),
        ({"min_score": 99.999}, 0),
        ({"status": "open"}, 1),
        ({"status": "dismissed"}, 0),
        ({"anomaly_type": "decimal_shift"}, 1),
        ({"anomaly_type": "sign_flip"}, 0),
    ],
)
def test_list_filters(client_for, viewer, detected, params, expected):
    response = client_for(viewer).get(LIST, params)
    assert response.status_code == 200, response.json()
    assert response.json()["count"] == expected


def test_list_filters_property_by_id_severity_and_orders(client_for, viewer, detected):
    client = client_for(viewer)
    pid = Property.objects.get(code="A1").id
    assert client.get(LIST, {"property": pid, "is_anomaly": "all"}).json()["count"] == 72
    assert client.get(LIST, {"severity": detected.severity}).json()["count"] == 1
    ordered = client.get(LIST, {"is_anomaly": "all", "ordering": "anomaly_score"}).json()["results"]
    scores = [r["anomaly_score"] for r in ordered]
    assert scores == sorted(scores)
    newest_first = client.get(LIST, {"is_anomaly": "all", "ordering": "-period__ordinal", "page_size": 5})
    assert newest_first.json()["results"][0]["period"] == "2023-12"


def test_bad_filters_answer_400_naming_the_parameter(client_for, viewer, detected):
    client = client_for(viewer)
    for params in ({"period_from": "2023-13"}, {"period_to": "june"}, {"severity": "huge"}, {"min_score": "x"}):
        response = client.get(LIST, params)
        assert response.status_code == 400
        assert set(params) <= set(response.json())


def test_detail_has_the_explanation_and_pdf_coordinates(client_for, viewer, detected):
    line = detected.line_item
    PDFFieldCoordinate.objects.create(
        document=detected.document,
        record_id=line.id,
        field_name="amount",
        page_number=2,
        x0=100.0,
        y0=200.0,
        x1=160.0,
        y1=212.0,
        confidence=0.97,
    )
    response = client_for(viewer).get(f"{LIST}{detected.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["explanation"]["summary"] == detected.explanation_text
    assert body["explanation"]["root_cause_type"] == "decimal_shift"
    assert body["explanation"]["suggested_actions"] and body["explanation"]["contributing_factors"]
    assert body["explanation"]["explanation_method"] and "computation_time_ms" in body["explanation"]
    assert body["coordinates"]["page_number"] == 2 and body["coordinates"]["x1"] == 160.0
    assert body["contributions"]["features"]
    quiet = AnomalyDetection.objects.filter(is_anomaly=False).first()
    quiet_body = client_for(viewer).get(f"{LIST}{quiet.id}").json()
    assert quiet_body["explanation"] is None and quiet_body["coordinates"] is None
    assert client_for(viewer).get(f"{LIST}999999999").status_code == 404


def test_feedback_needs_the_permission(client_for, viewer, analyst, detected):
    url = f"{LIST}{detected.id}/feedback"
    assert client_for(viewer).post(url, {"feedback_type": "confirmed"}, format="json").status_code == 403
    assert not AnomalyFeedback.objects.exists()

    response = client_for(analyst).post(url, {"feedback_type": "dismissed", "notes": "known"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["anomaly_status"] == "dismissed"
    again = client_for(analyst).post(url, {"feedback_type": "confirmed"}, format="json")
    assert again.status_code == 201 and again.json()["id"] == response.json()["id"]
    assert AnomalyFeedback.objects.get().feedback_type == "confirmed"


def test_feedback_errors(client_for, analyst, detected):
    client = client_for(analyst)
    bad = client.post(f"{LIST}{detected.id}/feedback", {"feedback_type": "maybe"}, format="json")
    assert bad.status_code == 400 and "feedback_type" in bad.json()
    bad_conf = client.post(
        f"{LIST}{detected.id}/feedback", {"feedback_type": "confirmed", "feedback_confidence": 2}, format="json"
    )
    assert bad_conf.status_code == 400 and "feedback_confidence" in bad_conf.json()
    missing = client.post(f"{LIST}999999999/feedback", {"feedback_type": "confirmed"}, format="json")
    assert missing.status_code == 404
    too_long = "x" * (services.FEEDBACK_NOTES_MAX_LENGTH + 1)
    long_notes = client.post(
        f"{LIST}{detected.id}/feedback", {"feedback_type": "confirmed", "notes": too_long}, format="json"
    )
    assert long_notes.status_code == 400 and "notes" in long_notes.json()
    assert not AnomalyFeedback.objects.exists()


def test_algorithms_route_is_not_read_as_an_id(client_for, viewer):
    response = client_for(viewer).get("/api/v1/anomalies/algorithms")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] >= 45 and 0 < body["available"] < body["count"]
    names = {a["name"] for a in body["results"]}
    assert {"IForest", "ECOD", "HBOS"} <= names
    unavailable = [a for a in body["results"] if not a["available"]]
    assert all(a["unavailable_reason"] for a in unavailable)
    only = client_for(viewer).get("/api/v1/anomalies/algorithms", {"available": "true"}).json()
    assert only["count"] == body["available"]


def test_selection_log_is_paginated_and_filterable(client_for, viewer, ledger):
    services.detection_run(all_documents=True)  # PyOD on: each series PyOD refines (gated in) logs its selection
    client = client_for(viewer)
    response = client.get("/api/v1/selection-log/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == ModelSelectionLog.objects.count() >= 1
    entry = body["results"][0]
    assert entry["property_code"] == "A1" and entry["selected_model"] and entry["rule_recommended_models"]
    assert client.get("/api/v1/selection-log/", {"account_code": "6010-0000"}).json()["count"] == 1
    assert client.get("/api/v1/selection-log/", {"property": "A1"}).json()["count"] == body["count"]
    chosen = entry["selected_model"]
    filtered = client.get("/api/v1/selection-log/", {"selected_model": chosen}).json()
    assert filtered["count"] >= 1 and {r["selected_model"] for r in filtered["results"]} == {chosen}


def test_openapi_schema_lists_the_routes(client_for, viewer):
    response = client_for(viewer).get(reverse("schema"), {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/anomalies/",
        "/api/v1/anomalies/{id}",
        "/api/v1/anomalies/{id}/feedback",
        "/api/v1/anomalies/algorithms",
        "/api/v1/selection-log/",
    ):
        assert path in paths
