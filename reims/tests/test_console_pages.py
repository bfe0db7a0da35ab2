"""The console and API pages of issue 19: the API root and offline docs, names beside codes, the
dashboard's ranking and the property list's counts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from anomalies.models import AnomalyDetection, DetectionStatus, Severity
from anomalies.tests.factories import DocumentFactory, LineItemFactory, PropertyFactory, period_for
from reims.api import api_endpoints

pytestmark = pytest.mark.django_db


def _flag(
    prop, *, count: int, severity: str = Severity.MEDIUM, status: str = DetectionStatus.OPEN, period: str = "2024-03"
) -> None:
    """``count`` flagged lines on one income statement of ``prop``, each on an account of its own."""
    document = DocumentFactory(property=prop, period=period_for(period))
    for _ in range(count):
        line = LineItemFactory(document=document)
        AnomalyDetection.objects.create(
            line_item=line,
            document=document,
            property=prop,
            document_type=document.document_type,
            period=document.period,
            account_code=line.account_code,
            field_value=Decimal("1000.00"),
            expected_value=Decimal("100.00"),
            anomaly_score=80.0,
            severity=severity,
            is_anomaly=True,
            status=status,
            detector="test",
        )


def test_api_root_lists_every_endpoint_as_json_and_in_the_browsable_api(admin_client, rf):
    response = admin_client.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.json()
    paths = {e["path"] for e in body["endpoints"]}
    for expected in (
        "/api/v1/anomalies/",
        "/api/v1/anomalies/{pk}",
        "/api/v1/anomalies/{pk}/feedback",
        "/api/v1/anomalies/algorithms",
        "/api/v1/batch-reprocessing/reprocess",
        "/api/v1/batch-reprocessing/jobs/{pk}/cancel",
        "/api/v1/documents/",
        "/api/v1/feature-flags/",
        "/api/v1/model-cache/stats",
        "/api/v1/selection-log/",
    ):
        assert expected in paths
    assert len(paths) == len(api_endpoints(request=rf.get("/")))
    by_path = {e["path"]: e for e in body["endpoints"]}
    assert by_path["/api/v1/anomalies/{pk}/feedback"]["methods"] == ["POST"]
    assert by_path["/api/v1/anomalies/"]["url"].endswith("/api/v1/anomalies/")
    assert by_path["/api/v1/anomalies/{pk}"]["url"] is None
    assert body["docs"].endswith("/api/docs/") and body["redoc"].endswith("/api/redoc/")
    browsable = admin_client.get("/api/v1/", HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200 and b"/api/v1/model-cache/stats" in browsable.content


def test_api_root_needs_login(client):
    assert client.get("/api/v1/").status_code in (401, 403)


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_nothing_from_the_network(client, path):
    html = client.get(path).content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("/static/drf_spectacular_sidecar/" in s for s in sources), sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources


def test_dashboard_ranks_properties_by_open_anomalies(admin_client):
    many, critical = PropertyFactory(code="P001"), PropertyFactory(code="P002")
    _flag(many, count=7)
    _flag(critical, count=2, severity=Severity.CRITICAL)
    _flag(critical, count=9, status=DetectionStatus.DISMISSED, period="2024-04")
    for n in range(12):  # more properties than the panel shows, each with 3 critical
        _flag(PropertyFactory(code=f"Q{n:02d}"), count=3, severity=Severity.CRITICAL)
    html = admin_client.get("/admin/").content.decode()
    panel = html.split('id="dash-properties"')[1].split("</section>")[0]
    ranked = re.findall(r">(P\d+|Q\d+)</a>", panel)
    assert ranked[0] == "P001"  # 7 open beats 3 open all critical
    assert "P002" not in ranked  # 2 open (its 9 dismissed ones are not open)


def test_property_list_counts_open_anomalies(admin_client):
    prop = PropertyFactory(code="P001")
    _flag(prop, count=4)
    _flag(prop, count=2, status=DetectionStatus.CONFIRMED, period="2024-04")
    html = admin_client.get(reverse("admin:documents_property_changelist")).content.decode()
    assert "Open anomalies" in html
    cell = html.split('class="field-open_anomaly_count"')[1].split("</td>")[0]
    assert ">4</a>" in cell


def test_account_names_beside_codes_in_list_review_and_api(admin_client):
    prop = PropertyFactory(code="P001")
    _flag(prop, count=1)
    detection = AnomalyDetection.objects.get()
    detection.line_item.account_name = "Base rent — office"
    detection.line_item.save()
    listing = admin_client.get(reverse("admin:anomalies_anomalydetection_changelist")).content.decode()
    assert "Base rent — office" in listing and "Income statement" in listing
    assert ">income_statement<" not in listing
    review = admin_client.get(reverse("admin:anomalies_anomalydetection_change", args=[detection.pk])).content.decode()
    breadcrumb = review.split('class="breadcrumbs"')[1].split("</div>")[0]
    assert "Base rent — office" in breadcrumb and detection.account_code in breadcrumb
    assert 'id="review-account">Base rent — office<' in review
    assert "Direction" not in review  # an internal field with nothing to say to an accountant
    api = admin_client.get(f"/api/v1/anomalies/{detection.pk}").json()
    assert api["account_name"] == "Base rent — office" and api["document_type_label"] == "Income statement"
    assert admin_client.get("/api/v1/anomalies/").json()["results"][0]["account_name"] == "Base rent — office"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/django_celery_results/taskresult/",
        "/admin/django_celery_beat/periodictask/",
        "/admin/django_celery_beat/crontabschedule/",
        "/admin/authtoken/tokenproxy/",
    ],
)
def test_celery_results_schedules_and_tokens_are_for_superusers_only(client, admin_client, roles, path):
    from django.contrib.auth.models import Permission, User

    manager = User.objects.create_user("max", password="pw-12345678", is_staff=True)
    manager.groups.add(roles["managers"])
    # Even a staff user granted every permission of these apps does not see them.
    app_label = path.split("/")[2]
    manager.user_permissions.add(*Permission.objects.filter(content_type__app_label=app_label))
    client.force_login(manager)
    assert client.get(path).status_code == 403
    index = client.get("/admin/").content.decode()
    assert path not in index
    assert admin_client.get(path).status_code == 200
    assert path in admin_client.get("/admin/").content.decode()
