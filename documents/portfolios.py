"""Services of portfolios and grants: the commands and the admin pages call these and nothing else."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from documents.models import PORTFOLIO_CODE_PATTERN, Portfolio, PortfolioGrant, Property
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
