"""Services of portfolios and grants: the commands and the admin pages call these and nothing else."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from documents.models import PORTFOLIO_CODE_PATTERN, Portfolio, PortfolioGrant, Property, default_portfolio_id
from documents.parsing import CanonicalRow, ImportErrors, ImportFileError
from documents.scoping import NOT_IN_PORTFOLIOS, granted_portfolio_ids, properties_visible_to, sees_everything
from kernel.exceptions import ApplicationError
from kernel.logging import log_event


class PortfolioError(ApplicationError):
    pass


@dataclass(frozen=True)
class AssignResult:
    portfolio: Portfolio
    created: bool
    moved: list[str]


@transaction.atomic
def portfolio_assign(*, code: str, property_codes: Sequence[str], name: str = "") -> AssignResult:
    """Create portfolio ``code`` when missing and move the properties into it (all or none)."""
    if not property_codes:
        raise PortfolioError("Name at least one property code.")
    properties = {p.code: p for p in Property.objects.select_for_update().filter(code__in=list(property_codes))}
    unknown = [c for c in property_codes if c not in properties]
    if unknown:
        raise PortfolioError(f"Unknown property code(s): {', '.join(sorted(set(unknown)))}.")
    if not re.fullmatch(PORTFOLIO_CODE_PATTERN, code):
        raise PortfolioError(f"Bad portfolio code {code!r}: 1-30 letters, digits, '_' or '-'.")
    portfolio, created = Portfolio.objects.get_or_create(code=code, defaults={"name": name or code})
    moved = sorted(c for c, p in properties.items() if p.portfolio_id != portfolio.pk)
    Property.objects.filter(code__in=moved).update(portfolio=portfolio)
    log_event("portfolio_assign", portfolio=portfolio.code, created=created, moved=moved)
    return AssignResult(portfolio=portfolio, created=created, moved=moved)


@transaction.atomic
def portfolio_grant_set(*, username: str, code: str, granted: bool = True) -> bool:
    """Give (``granted``) or take away a user's access to a portfolio; True when something changed."""
    user: Any = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise PortfolioError(f"Unknown user: {username}.")
    portfolio = Portfolio.objects.filter(code=code).first()
    if portfolio is None:
        raise PortfolioError(f"Unknown portfolio: {code}.")
    if granted:
        _, changed = PortfolioGrant.objects.get_or_create(user=user, portfolio=portfolio)
    else:
        changed = PortfolioGrant.objects.filter(user=user, portfolio=portfolio).delete()[0] > 0
    log_event("portfolio_grant", user_id=user.pk, portfolio=portfolio.code, granted=granted, changed=changed)
    return changed


# --- Imports: who may write which property -------------------------------------------------------


def import_access_errors(*, files: Sequence[tuple[str, Sequence[CanonicalRow]]], user: Any | None) -> ImportErrors:
    """The rows an uploader may not write, one line per property (its first row): an existing
    property outside their portfolios, or a new one in a portfolio not granted to them. Commands
    (no user) and superusers import anywhere. No line says whose a property is."""
    errors = ImportErrors()
    if user is None or sees_everything(user):
        return errors
    codes = {row.property_code for _, rows in files for row in rows}
    existing = set(Property.objects.filter(code__in=codes).values_list("code", flat=True))
    visible = set(properties_visible_to(user).filter(code__in=codes).values_list("code", flat=True))
    granted = set(Portfolio.objects.filter(id__in=granted_portfolio_ids(user)).values_list("code", flat=True))
    reported: set[str] = set()
    for file_name, rows in files:
        for row in rows:
            if row.property_code in reported:
                continue
            if row.property_code in existing:
                if row.property_code not in visible:
                    errors.add(ImportFileError(file_name, row.row, "property_code", NOT_IN_PORTFOLIOS))
                    reported.add(row.property_code)
            elif not granted or (row.portfolio_code and row.portfolio_code not in granted):
                errors.add(ImportFileError(file_name, row.row, "portfolio_code", "portfolio not in your portfolios"))
                reported.add(row.property_code)
    return errors


def portfolio_for_new_property(portfolio_code: str, *, user: Any | None) -> int:
    """Where a property first seen goes: the row's portfolio_code (created when missing: only
    commands and superusers get this far with an unknown code), else the uploader's first granted
    portfolio, else the default portfolio."""
    if portfolio_code:
        portfolio, _ = Portfolio.objects.get_or_create(code=portfolio_code, defaults={"name": portfolio_code})
        return portfolio.pk
    if user is not None and not sees_everything(user):
        granted = Portfolio.objects.filter(id__in=granted_portfolio_ids(user)).order_by("code").first()
        if granted is not None:
            return granted.pk
    return default_portfolio_id()
