"""Portfolios: the data migration, the portfolio_assign / portfolio_grant commands and their admin pages."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from documents.models import DEFAULT_PORTFOLIO_CODE, Portfolio, PortfolioGrant, Property
from documents.scoping import properties_visible_to

BEFORE = [("documents", "0002_latest_type_period_index")]
AFTER = [("documents", "0003_portfolios")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_migration_places_existing_properties_in_the_default_portfolio_and_reverses():
    try:
        old_apps = _migrate(BEFORE)
        old_apps.get_model("documents", "Property").objects.create(code="OLD1", name="Before portfolios")
        new_apps = _migrate(AFTER)
        moved = new_apps.get_model("documents", "Property").objects.get(code="OLD1")
        assert moved.portfolio.code == DEFAULT_PORTFOLIO_CODE
        back = _migrate(BEFORE)
        assert back.get_model("documents", "Property").objects.filter(code="OLD1").exists()
    finally:
        call_command("migrate", verbosity=0)


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_portfolio_assign_creates_the_portfolio_and_moves_the_properties():
    Property.objects.create(code="P1")
    Property.objects.create(code="P2")
    assert _run("portfolio_assign", "OWNER1", "P1", "P2").strip() == "Portfolio OWNER1 (created): 2 propert(y/ies) moved."
    assert set(Portfolio.objects.get(code="OWNER1").properties.values_list("code", flat=True)) == {"P1", "P2"}
    assert _run("portfolio_assign", "OWNER1", "P1").strip() == "Portfolio OWNER1: 0 propert(y/ies) moved."


@pytest.mark.django_db
def test_portfolio_assign_refuses_unknown_properties_and_moves_none():
    Property.objects.create(code="P1")
    with pytest.raises(CommandError, match=r"^Unknown property code\(s\): NOPE\.$"):
        _run("portfolio_assign", "OWNER1", "P1", "NOPE")
    assert Property.objects.get(code="P1").portfolio.code == DEFAULT_PORTFOLIO_CODE
    assert not Portfolio.objects.filter(code="OWNER1").exists()


@pytest.mark.django_db
def test_portfolio_grant_gives_and_revokes_access():
    user = User.objects.create_user("ana")
    Property.objects.create(code="P1")
    call_command("portfolio_assign", "OWNER1", "P1", stdout=StringIO())
    assert _run("portfolio_grant", "ana", "OWNER1").strip() == "Portfolio OWNER1 granted to ana."
    assert list(properties_visible_to(user).values_list("code", flat=True)) == ["P1"]
    assert _run("portfolio_grant", "ana", "OWNER1", "--revoke").strip() == "Portfolio OWNER1 revoked from ana."
    assert not properties_visible_to(user).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "code", "reason"),
    [("ghost", DEFAULT_PORTFOLIO_CODE, "Unknown user: ghost."), ("ana", "NOPE", "Unknown portfolio: NOPE.")],
)
def test_portfolio_grant_of_an_unknown_user_or_portfolio_exits_non_zero(username, code, reason):
    User.objects.create_user("ana")
    Portfolio.objects.get_or_create(code=DEFAULT_PORTFOLIO_CODE)
    with pytest.raises(CommandError) as raised:
        _run("portfolio_grant", username, code)
    assert str(raised.value) == reason
    assert not PortfolioGrant.objects.exists()


@pytest.mark.django_db
def test_superusers_assign_and_grant_in_the_admin_and_nobody_else_sees_those_pages(admin_client, client):
    Property.objects.create(code="P1")
    user = User.objects.create_user("ana", is_staff=True)
    response = admin_client.post(
        reverse("admin:documents_portfolio_add"),
        {"code": "OWNER1", "name": "Owner one", "move_properties": [Property.objects.get(code="P1").pk]},
    )
    assert response.status_code == 302, response.content
    assert Property.objects.get(code="P1").portfolio.code == "OWNER1"
    owner = Portfolio.objects.get(code="OWNER1")
    response = admin_client.post(reverse("admin:documents_portfoliogrant_add"), {"user": user.pk, "portfolio": owner.pk})
    assert response.status_code == 302
    grant = PortfolioGrant.objects.get(user=user, portfolio=owner)
    response = admin_client.post(reverse("admin:documents_portfoliogrant_delete", args=[grant.pk]), {"post": "yes"})
    assert response.status_code == 302 and not PortfolioGrant.objects.exists()
    client.force_login(user)
    assert client.get(reverse("admin:documents_portfolio_changelist")).status_code == 403
    assert client.get(reverse("admin:documents_portfoliogrant_changelist")).status_code == 403
