from __future__ import annotations

import pytest

from reims.celery import app as celery_app


def test_healthz_ok_without_login(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.fixture
def unreachable_broker():
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    original = celery_app.conf.broker_write_url
    original_options = celery_app.conf.broker_transport_options
    celery_app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    celery_app.conf.broker_transport_options = {}
    yield
    celery_app.conf.broker_write_url = original
    celery_app.conf.broker_transport_options = original_options


def test_healthz_names_the_broker_when_it_is_down(client, db, unreachable_broker):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True
