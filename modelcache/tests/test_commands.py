"""invalidate_model_cache and cleanup_model_cache commands."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from modelcache.models import AnomalyModelCache
from modelcache.tests.helpers import CountingTrainer, PropertyFactory, lookup, series

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio():
    a, b = PropertyFactory(code="P1"), PropertyFactory(code="P2")
    x = series(1)
    for prop in (a, b):
        for account in ("4010", "4020"):
            lookup(prop, x, CountingTrainer(x), account=account, config={})
    return a, b


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def active() -> set[tuple[str, str]]:
    return set(AnomalyModelCache.objects.filter(is_active=True).values_list("property__code", "account_code"))


def test_invalidate_by_property(portfolio):
    assert run("invalidate_model_cache", "--property", "P1").strip() == "Invalidated 2 cached model(s)."
    assert active() == {("P2", "4010"), ("P2", "4020")}
    assert AnomalyModelCache.objects.filter(is_active=False).first().invalidated_reason == "manual: command"


def test_invalidate_by_account_and_both(portfolio):
    assert "Invalidated 1 " in run("invalidate_model_cache", "--property", "P2", "--account", "4020", "--reason", "x")
    assert "Invalidated 1 " in run("invalidate_model_cache", "--account", "4020")
    assert active() == {("P1", "4010"), ("P2", "4010")}


def test_invalidate_all(portfolio):
    assert "Invalidated 4 " in run("invalidate_model_cache", "--all")
    assert active() == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to invalidate"),
        (("--property", "NOPE"), r"unknown property code\(s\): NOPE"),
        (("--all", "--property", "P1"), "--all cannot be combined"),
    ],
)
def test_invalidate_bad_input_exits_non_zero_with_a_reason(portfolio, args, message):
    with pytest.raises(CommandError, match=message):
        run("invalidate_model_cache", *args)
    assert len(active()) == 4


def test_invalidate_with_the_cache_disabled_fails(portfolio, cache_disabled):
    with pytest.raises(CommandError, match="MODEL_CACHE_ENABLED is off"):
        run("invalidate_model_cache", "--all")
    assert len(active()) == 4


def test_cleanup_command_deletes_expired_and_inactive(portfolio):
    run("invalidate_model_cache", "--property", "P1", "--account", "4010")
    AnomalyModelCache.objects.filter(property__code="P2", account_code="4020").update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    assert run("cleanup_model_cache").strip() == "Deleted 2 expired or inactive cached model(s)."
    assert active() == {("P1", "4020"), ("P2", "4010")}
    assert AnomalyModelCache.objects.count() == 2
