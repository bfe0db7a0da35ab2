"""Who sees which properties (DESIGN §11): the one place where portfolio scoping is decided.

Superusers see everything. Every other user sees the properties of the portfolios granted to them
(``PortfolioGrant``) and whatever derives from those properties. Each model that derives from a
property declares the path to it once, with ``PropertyScopedQuerySet.for_path``; every selector,
API view and admin page narrows through ``visible_to(user)`` and nothing else.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from django.apps import apps
from django.db import connection, models
from django.db.models import QuerySet

# documents.models builds its managers from this module: models are looked up when a query runs.

NOT_IN_PORTFOLIOS = "property not in your portfolios"


def sees_everything(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.is_superuser)


def granted_portfolio_ids(user: Any) -> QuerySet:
    """The portfolio ids granted to ``user``, as a subquery (none for anonymous users)."""
    grants = apps.get_model("documents", "PortfolioGrant").objects
    if user is None or not user.is_authenticated:
        return grants.none().values("portfolio_id")
    return grants.filter(user_id=user.pk).values("portfolio_id")


def scope_to_user(queryset: QuerySet, *, user: Any, property_path: str) -> QuerySet:
    """``queryset`` narrowed to rows whose property (reached by ``property_path``) ``user`` may see."""
    if sees_everything(user):
        return queryset
    if user is None or not user.is_authenticated:
        return queryset.none()
    prefix = f"{property_path}__" if property_path else ""
    return queryset.filter(**{f"{prefix}portfolio_id__in": granted_portfolio_ids(user)})


def properties_visible_to(user: Any) -> QuerySet:
    return scope_to_user(apps.get_model("documents", "Property").objects.all(), user=user, property_path="")


class PropertyScopedQuerySet(models.QuerySet):
    """A queryset of rows that belong to one property; ``property_path`` says how to reach it."""

    property_path: ClassVar[str] = "property"

    def visible_to(self, user: Any) -> Self:
        return scope_to_user(self, user=user, property_path=self.property_path)

    @classmethod
    def for_path(cls, property_path: str) -> type[PropertyScopedQuerySet]:
        return type(f"PropertyScopedQuerySet_{property_path}", (cls,), {"property_path": property_path})


def scoped(queryset: QuerySet, *, user: Any) -> QuerySet:
    """Any queryset narrowed for ``user``: property-scoped models by their path, the chart of
    accounts to the accounts of visible lines; other models (periods, counters) are shared."""
    if isinstance(queryset, PropertyScopedQuerySet | PropertyListScopedQuerySet | ParentScopedQuerySet):
        return queryset.visible_to(user)
    label = queryset.model._meta.label
    if label == "documents.Property":
        return scope_to_user(queryset, user=user, property_path="")
    if label == "documents.ChartOfAccount" and not sees_everything(user):
        visible_codes = apps.get_model("documents", "LineItem").objects.visible_to(user).values("account_code")
        return queryset.filter(account_code__in=visible_codes)
    return queryset


def property_ids_outside(*, user: Any, property_ids: list[int]) -> list[int]:
    """Those of ``property_ids`` the user may not see (unknown ids included): say neither which nor whose."""
    if sees_everything(user):
        return []
    visible = set(properties_visible_to(user).filter(id__in=property_ids).values_list("id", flat=True))
    return [pid for pid in property_ids if pid not in visible]


class PropertyListScopedQuerySet(models.QuerySet):
    """Rows that name their properties in a JSON list (a job's ``property_ids``).

    A row is visible when it names properties and the user sees every one of them; an empty list
    means every property, so only superusers see such rows. PostgreSQL checks it in the query
    (jsonb ``<@``); SQLite, which has no such lookup, checks the lists in Python.
    """

    property_ids_field: ClassVar[str] = "property_ids"

    def visible_to(self, user: Any) -> Self:
        if sees_everything(user):
            return self
        if user is None or not user.is_authenticated:
            return self.none()
        visible = sorted(properties_visible_to(user).values_list("id", flat=True))
        if connection.vendor == "postgresql":
            # jsonb containment (<@) in the query itself: a job's page reads one row, not the table.
            field = self.property_ids_field
            return self.filter(**{f"{field}__contained_by": visible}).exclude(**{field: []})
        rows = self.values_list("pk", self.property_ids_field)
        return self.filter(pk__in=[pk for pk, ids in rows if ids and set(ids) <= set(visible)])


class ParentScopedQuerySet(models.QuerySet):
    """Rows visible when their parent (the foreign key ``parent_field``) is visible."""

    parent_field: ClassVar[str] = ""

    def visible_to(self, user: Any) -> Self:
        if sees_everything(user):
            return self
        parent = self.model._meta.get_field(self.parent_field).related_model
        return self.filter(**{f"{self.parent_field}__in": scoped(parent.objects.all(), user=user)})

    @classmethod
    def for_parent(cls, parent_field: str) -> type[ParentScopedQuerySet]:
        return type(f"ParentScopedQuerySet_{parent_field}", (cls,), {"parent_field": parent_field})


class _System:
    """The caller of a management command or a worker task: no login, sees every property."""

    is_active = True
    is_superuser = True
    is_authenticated = False  # not a login: never recorded as a row's user
    pk = None

    def __repr__(self) -> str:
        return "SYSTEM"


#: Pass as ``user`` from commands and tasks, which act for the operator, not for a login.
SYSTEM = _System()
