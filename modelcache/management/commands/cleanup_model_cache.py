"""Delete expired and inactive cached models (the daily beat task does the same work)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from modelcache.services import cleanup_model_cache


class Command(BaseCommand):
    help = "Delete expired and inactive cached models, in bounded slices."

    def handle(self, *args, **options) -> None:
        deleted = cleanup_model_cache()
        self.stdout.write(f"Deleted {deleted} expired or inactive cached model(s).")
