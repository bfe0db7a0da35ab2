"""python manage.py refresh_benchmarks: recompute cross_property_benchmarks now (the beat task does it daily)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anomalies.services.benchmarks import portfolio_benchmarks_refresh
from kernel.flags import FeatureDisabled


class Command(BaseCommand):
    help = (
        "Recompute the portfolio benchmarks (per account, month and property type, from the latest statements). "
        "Needs PORTFOLIO_BENCHMARKS_ENABLED=true."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        pass

    def handle(self, *args, **options) -> None:
        try:
            summary = portfolio_benchmarks_refresh()
        except FeatureDisabled as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{summary.rows:,} benchmark rows from {summary.lines:,} lines "
                f"({summary.groups_under_three:,} groups of fewer than 3 properties) in {summary.duration_ms / 1000:.1f} s"
            )
        )
