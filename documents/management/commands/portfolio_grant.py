"""python manage.py portfolio_grant USERNAME CODE [--revoke] — give or take away a user's access."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents.portfolios import portfolio_grant_set
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Grant (or with --revoke, take away) a user's access to a portfolio."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the user to grant the portfolio to")
        parser.add_argument("code", help="portfolio code")
        parser.add_argument("--revoke", action="store_true", help="take the access away")

    def handle(self, *args, username: str, code: str, revoke: bool, **options) -> None:
        try:
            changed = portfolio_grant_set(username=username, code=code, granted=not revoke)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        verb = "revoked from" if revoke else "granted to"
        state = "" if changed else " (already so)"
        self.stdout.write(f"Portfolio {code} {verb} {username}{state}.")
