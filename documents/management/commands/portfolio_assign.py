"""python manage.py portfolio_assign CODE PROPERTY_CODE... — create the portfolio if missing, move the properties."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents.portfolios import portfolio_assign
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Move properties into a portfolio (created when missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code", help="portfolio code")
        parser.add_argument("property_codes", nargs="+", metavar="PROPERTY_CODE", help="the properties to move into it")
        parser.add_argument("--name", default="", help="name of the portfolio when it is created")

    def handle(self, *args, code: str, property_codes: list[str], name: str, **options) -> None:
        try:
            result = portfolio_assign(code=code, property_codes=property_codes, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        created = " (created)" if result.created else ""
        self.stdout.write(f"Portfolio {result.portfolio.code}{created}: {len(result.moved)} propert(y/ies) moved.")
