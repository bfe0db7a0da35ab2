"""HTTP API and admin of the model cache."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from rest_framework.test import APIClient

from modelcache.models import AnomalyModelCache
from modelcache.services import default_cache
from modelcache.tests.helpers import CountingTrainer, PropertyFactory, lookup, series
from reims.testing import grant_default_portfolio

pytestmark = pytest.mark.django_db
LIST = "/api/v1/model-cache/"
STATS = "/api/v1/model-cache/stats"


def invalidate_url(pk: int) -> str:
    return f"/api/v1/model-cache/{pk}/invalidate"


def make_entries(prop, accounts=("4010", "4020", "4030"), lookups_each=1):
    x = series(1)
    for account in accounts:
        for _ in range(lookups_each):
            lookup(prop, x, CountingTrainer(x), account=account, config={})
    return list(AnomalyModelCache.objects.filter(property=prop).order_by("account_code"))


def client_for(*, perms: tuple[str, ...] = ()) -> APIClient:
    user = grant_default_portfolio(User.objects.create_user(f"user{User.objects.count()}", password="x"))
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_anonymous_gets_401_or_403(api_client):
    assert api_client.get(LIST).status_code in (401, 403)
    assert api_client.get(STATS).status_code in (401, 403)
    assert api_client.post(invalidate_url(1)).status_code in (401, 403)


def test_list_is_paginated_filtered_and_never_sends_the_binary(admin_api_client, settings):
    a, b = PropertyFactory(code="AAA"), PropertyFactory(code="BBB")
    make_entries(a)
    entries_b = make_entries(b, accounts=("4010",))
    AnomalyModelCache.objects.filter(pk=entries_b[0].pk).update(is_active=False)

    body = admin_api_client.get(LIST).json()
    assert body["count"] == 4 and len(body["results"]) == 4
    first = body["results"][0]
    assert "model_binary" not in first
    assert first["size_kb"] == round(first["size_bytes"] / 1024, 1)
    assert first["model_metadata"]["library_versions"]["pyod"]

    assert admin_api_client.get(LIST, {"property": "AAA"}).json()["count"] == 3
    assert admin_api_client.get(LIST, {"property_id": b.pk}).json()["count"] == 1
    assert admin_api_client.get(LIST, {"account_code": "4010"}).json()["count"] == 2
    assert admin_api_client.get(LIST, {"model_type": "HBOS"}).json()["count"] == 4
    assert admin_api_client.get(LIST, {"model_type": "IForest"}).json()["count"] == 0
    assert admin_api_client.get(LIST, {"is_active": "false"}).json()["results"][0]["property_code"] == "BBB"
    assert body["next"] is None and body["previous"] is None  # paginated (API_PAGE_SIZE per page)
    assert admin_api_client.get(LIST, {"page": 2}).status_code == 404


def test_stats_report_hit_rate_per_tier(admin_api_client):
    prop = PropertyFactory()
    make_entries(prop, accounts=("4010", "4020"), lookups_each=4)  # 2 misses then 6 LRU hits
    default_cache().flush_usage()
    body = admin_api_client.get(STATS).json()
    everyone = body["all_processes"]
    assert everyone["lookups"] == 8
    assert everyone["lru"] == {"hits": 6, "misses": 2, "hit_rate": 0.75}
    assert everyone["db"] == {"hits": 0, "misses": 2, "hit_rate": 0.0}
    assert everyone["overall_hit_rate"] == 0.75 and everyone["trained"] == 2
    assert body["entries"]["active"] == 2 and body["entries"]["uses"] == 6
    assert body["enabled"] is True and body["lru"]["entries"] == 2


def test_invalidate_needs_the_change_permission(admin_api_client):
    entry = make_entries(PropertyFactory(), accounts=("4010",))[0]
    reader = client_for()
    assert reader.get(LIST).status_code == 200
    assert reader.post(invalidate_url(entry.pk)).status_code == 403

    writer = client_for(perms=("change_anomalymodelcache",))
    response = writer.post(invalidate_url(entry.pk), {"reason": "bad month imported"}, format="json")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    entry.refresh_from_db()
    assert not entry.is_active and entry.invalidated_reason.startswith("manual: bad month imported (by user")


def test_invalidate_unknown_is_404_and_already_inactive_is_409(admin_api_client):
    entry = make_entries(PropertyFactory(), accounts=("4010",))[0]
    assert admin_api_client.post(invalidate_url(999_999)).status_code == 404
    assert admin_api_client.post(invalidate_url(entry.pk)).status_code == 200
    again = admin_api_client.post(invalidate_url(entry.pk))
    assert again.status_code == 409 and "already inactive" in again.json()["detail"]


def test_disabled_cache_answers_503_on_invalidate_but_still_lists(admin_api_client, monkeypatch):
    entry = make_entries(PropertyFactory(), accounts=("4010",))[0]
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "false")
    response = admin_api_client.post(invalidate_url(entry.pk))
    assert response.status_code == 503 and response.json()["flag"] == "MODEL_CACHE_ENABLED"
    entry.refresh_from_db()
    assert entry.is_active
    assert admin_api_client.get(LIST).json()["count"] == 1
    assert admin_api_client.get(STATS).json()["enabled"] is False


def test_urls_are_named_in_the_api_namespace():
    assert reverse("api:model-cache-list") == LIST
    assert reverse("api:model-cache-stats") == STATS
    assert reverse("api:model-cache-invalidate", args=[3]) == invalidate_url(3)


# --- Admin ---------------------------------------------------------------------------------------


def test_admin_changelist_shows_hit_rate_size_and_filters(admin_client):
    prop = PropertyFactory(code="ADM1")
    make_entries(prop, accounts=("4010", "4020"), lookups_each=2)
    default_cache().flush_usage()
    response = admin_client.get("/admin/modelcache/anomalymodelcache/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Hit rate (all processes, as flushed): <strong>50.0 %</strong>" in html
    assert "Size (KB)" in html and "Uses / day" in html and "ADM1" in html
    assert admin_client.get("/admin/modelcache/anomalymodelcache/", {"q": "4020"}).context["cl"].result_count == 1
    assert admin_client.get("/admin/modelcache/anomalymodelcache/", {"is_active__exact": "0"}).status_code == 200


def test_admin_detail_is_read_only_with_readable_metadata_and_no_binary(admin_client):
    entry = make_entries(PropertyFactory(), accounts=("4010",))[0]
    response = admin_client.get(f"/admin/modelcache/anomalymodelcache/{entry.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<pre" in html and "library_versions" in html
    assert "model_binary" not in html and 'name="account_code"' not in html
    assert admin_client.get("/admin/modelcache/anomalymodelcache/add/").status_code == 403


def test_admin_invalidate_action(admin_client):
    entries = make_entries(PropertyFactory())
    response = admin_client.post(
        "/admin/modelcache/anomalymodelcache/",
        {"action": "invalidate_selected", "_selected_action": [e.pk for e in entries[:2]]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Invalidated 2 cached model(s)." in response.content.decode()
    assert sorted(AnomalyModelCache.objects.filter(is_active=True).values_list("pk", flat=True)) == [entries[2].pk]
