from __future__ import annotations

import pytest

from kernel.flags import FLAGS


@pytest.mark.django_db
def test_dashboard_is_the_admin_index(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    for section in ("dash-severity", "dash-status", "dash-properties", "dash-jobs", "dash-cache", "dash-flags"):
        assert f'id="{section}"' in html
    for flag in FLAGS:
        assert flag.env_var in html
    assert "REIMS Anomaly" in html


@pytest.mark.django_db
def test_dashboard_needs_staff_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
