"""The admin pages of the anomalies app, and the verdict actions."""

from __future__ import annotations

import pytest

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyFeedback

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/anomalies/anomalydetection/"


@pytest.fixture
def detected(ledger, statistical_only):
    services.detection_run(all_documents=True)
    return AnomalyDetection.objects.get(is_anomaly=True)


def test_changelist_shows_flagged_lines_by_default(admin_client, detected):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"flagged": "all"}).context["cl"].result_count == 72
    assert admin_client.get(CHANGELIST, {"flagged": "no", "q": "6010"}).context["cl"].result_count == 23
    assert admin_client.get(CHANGELIST, {"severity": detected.severity}).status_code == 200


def test_detail_page_shows_the_sentence_explanation_and_readable_contributions(admin_client, detected):
    response = admin_client.get(f"{CHANGELIST}{detected.id}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "likely decimal shift" in html
    assert "<pre" in html and "features" in html  # contributions as readable JSON
    assert "Suggested actions" in html or "suggested actions" in html


def test_verdict_actions_call_the_feedback_service(admin_client, admin_user, detected):
    response = admin_client.post(CHANGELIST, {"action": "dismiss_selected", "_selected_action": [detected.id]}, follow=True)
    assert response.status_code == 200
    feedback = AnomalyFeedback.objects.get()
    assert feedback.feedback_type == "dismissed" and feedback.user == admin_user
    detected.refresh_from_db()
    assert detected.status == "dismissed"


def test_users_without_the_permission_get_no_verdict_actions(client, viewer, detected):
    from django.contrib.auth.models import Permission

    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_anomalydetection"))
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "dismiss_selected" not in response.content.decode()
    client.post(CHANGELIST, {"action": "dismiss_selected", "_selected_action": [detected.id]})
    assert not AnomalyFeedback.objects.exists()


@pytest.mark.parametrize("page", ["anomalyexplanation", "anomalyfeedback", "modelselectionlog", "crosspropertybenchmark"])
def test_other_pages_are_read_only_lists(admin_client, detected, page):
    response = admin_client.get(f"/admin/anomalies/{page}/")
    assert response.status_code == 200
    assert admin_client.get(f"/admin/anomalies/{page}/add/").status_code == 403
