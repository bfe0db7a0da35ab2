"""A user of portfolio A walks every API operation of the OpenAPI schema and every admin page with
portfolio B's ids: nothing of B comes back (DESIGN §11), and what is B's answers 404, never 403.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from anomalies.models import CrossPropertyBenchmark
from reims.roles import ANALYSTS, MANAGERS
from reims.tests.portfolios import B_MARKERS, make_world, portfolio_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def alice(world):
    a, _ = world
    return portfolio_user("alice", groups=(ANALYSTS, MANAGERS), portfolios=(a.portfolio,))


def _leaks(body: bytes) -> list[str]:
    text = body.decode("utf-8", "replace")
    return [marker for marker in B_MARKERS if marker in text]


def _b_id_for(path: str, b) -> int:
    """B's id for a path parameter, by the resource the path names."""
    for prefix, obj in (
        ("/api/v1/anomalies/", b.anomaly),
        ("/api/v1/batch-reprocessing/jobs/", b.job),
        ("/api/v1/documents/", b.document),
        ("/api/v1/model-cache/", b.cache_entry),
    ):
        if path.startswith(prefix):
            return obj.pk
    raise AssertionError(f"no B object known for {path}: add it to the sweep")


def _operations(client: APIClient) -> list[tuple[str, str]]:
    schema = client.get("/api/schema/", {"format": "json"}).json()
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if path.startswith("/api/v1/")
    ]


def test_every_api_operation_with_b_ids_answers_nothing_of_b(world, alice):
    a, b = world
    client = APIClient()
    client.force_authenticate(alice)
    operations = _operations(client)
    assert len(operations) >= 14, operations  # the sweep covers the whole schema
    b_filters = {
        "property": b.property.code,
        "property_id": b.property.pk,
        "property_code": b.property.code,
        "account_code": b.anomaly.account_code,
        "search": b.property.code,
    }
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", str(_b_id_for(template, b)), template) if "{" in template else template
        if method == "GET":
            for params in ({}, b_filters, {"latest": "false", **b_filters}):
                response = client.get(path, params)
                assert response.status_code in (200, 400, 404), (path, params, response.status_code)
                assert not _leaks(response.content), (path, params, _leaks(response.content))
                if "{" in template:
                    assert response.status_code == 404, (path, response.status_code)
        else:
            body = {
                "/api/v1/anomalies/{id}/feedback": {"feedback_type": "confirmed"},
                "/api/v1/batch-reprocessing/reprocess": {"property_ids": [b.property.pk]},
            }.get(template, {})
            response = client.post(path, body, format="json")
            assert not _leaks(response.content), (path, _leaks(response.content))
            assert response.status_code != 403, (path, response.content)
            if "{" in template:
                assert response.status_code == 404, (path, response.status_code, response.content)
            elif template.endswith("/reprocess"):
                assert response.status_code in (400, 404), response.content
                assert str(b.portfolio.code) not in response.content.decode()
    # Nothing B had was changed by those writes.
    b.job.refresh_from_db()
    b.cache_entry.refresh_from_db()
    assert not b.job.cancel_requested and b.cache_entry.is_active
    assert b.anomaly.feedback.count() == 1
    # ... while A's own rows are there.
    listed = client.get("/api/v1/anomalies/").json()["results"]
    assert [row["property_code"] for row in listed] == [a.property.code]


def _admin_urls(b, user) -> list[tuple[str, bool]]:
    """(url, names B's object the user could see were it A's) for every registered model:
    changelist (searched for B), change, history, delete pages of B's row, and autocomplete over
    every relation of the model. A model the user's role cannot view answers 403 for every id."""
    b_rows = {
        type(obj): obj
        for obj in (
            b.property,
            b.document,
            b.line_item,
            b.coordinate,
            b.anomaly,
            b.explanation,
            b.feedback,
            b.selection,
            b.cache_entry,
            b.job,
            b.chunk,
        )
    }
    urls: list[tuple[str, bool]] = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        changelist = reverse("admin:{}_{}_changelist".format(*info))
        urls += [(changelist, False), (f"{changelist}?q={b.property.code[:5]}", False), (f"{changelist}?q=Bravo", False)]
        obj = b_rows.get(model)
        if obj is not None:
            viewable = user.has_perm(f"{info[0]}.view_{info[1]}")
            for view in ("change", "history", "delete"):
                urls.append((reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk]), viewable))
        for field in model._meta.get_fields():
            if field.is_relation and field.many_to_one and field.related_model in admin.site._registry:
                urls.append(
                    (
                        f"/admin/autocomplete/?app_label={info[0]}&model_name={info[1]}&field_name={field.name}&term=B",
                        False,
                    )
                )
    return urls


def test_every_admin_page_with_b_ids_answers_nothing_of_b(world, alice):
    _, b = world
    client = Client()
    client.force_login(alice)
    urls = _admin_urls(b, alice)
    assert len(urls) > 40
    for url, viewable_object in urls:
        response = client.get(url)
        assert not _leaks(response.content), (url, _leaks(response.content))
        assert response.status_code != 500, url
        if viewable_object and url.endswith(("/change/", "/history/")):
            assert response.status_code == 404, (url, response.status_code)
        elif viewable_object:
            assert response.status_code in (403, 404), (url, response.status_code)  # read-only: no delete
    for url in (
        "/admin/",
        "/api/v1/",
        "/admin/documents/documentupload/import/",
        "/admin/batch_jobs/batchreprocessingjob/start/",
    ):
        response = client.get(url)
        assert not _leaks(response.content), (url, _leaks(response.content))


def test_admin_actions_leave_b_untouched(world, alice):
    _, b = world
    client = Client()
    client.force_login(alice)
    response = client.post(
        reverse("admin:anomalies_anomalydetection_changelist") + "?flagged=all",
        {"action": "dismiss_selected", "_selected_action": [b.anomaly.pk]},
    )
    assert response.status_code in (200, 302)
    b.anomaly.refresh_from_db()
    assert b.anomaly.status == "open"
    response = client.post(
        reverse("admin:anomalies_anomalydetection_feedback", args=[b.anomaly.pk]), {"feedback_type": "dismissed"}
    )
    assert response.status_code == 404
    response = client.post(
        reverse("admin:modelcache_anomalymodelcache_changelist"),
        {"action": "invalidate_selected", "_selected_action": [b.cache_entry.pk]},
    )
    b.cache_entry.refresh_from_db()
    assert b.cache_entry.is_active


def test_superuser_sees_both_portfolios(world, admin_client):
    response = admin_client.get(reverse("admin:documents_property_changelist"))
    assert "BRAVO77" in response.content.decode() and "ALPHA01" in response.content.decode()


def test_benchmarks_show_aggregates_only(world, alice, admin_client):
    benchmark = CrossPropertyBenchmark.objects.get()
    url = reverse("admin:anomalies_crosspropertybenchmark_change", args=[benchmark.pk])
    client = Client()
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert "Property count" in page
    assert "Property ids" not in page
    assert "Property ids" in admin_client.get(url).content.decode()
