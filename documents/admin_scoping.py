"""The admin side of portfolio scoping: every admin page of a property-derived model mixes this in.

Changelists, detail, history and action querysets, list filters over related rows, foreign-key
choices and autocomplete all read ``get_queryset``, so narrowing it is enough. An object outside
the user's portfolios answers 404 (Django's default redirect would name its id on the next page).
"""

from __future__ import annotations

from typing import Any

from django.db.models import ForeignKey, QuerySet
from django.forms import Field, ModelChoiceField
from django.http import Http404, HttpRequest

from documents.scoping import scoped


class PortfolioScopedAdminMixin:
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scoped(super().get_queryset(request), user=request.user)  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any) -> Field | None:
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        if isinstance(formfield, ModelChoiceField):
            formfield.queryset = scoped(formfield.queryset, user=request.user)
        return formfield

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> None:
        raise Http404
