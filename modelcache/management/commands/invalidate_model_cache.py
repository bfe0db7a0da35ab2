"""Deactivate cached models so that the next detection retrains them."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from documents.models import Property
from kernel.exceptions import ApplicationError
from kernel.flags import FeatureDisabled, FeatureFlags
from modelcache.services import FLAG, invalidate_cache


class Command(BaseCommand):
    help = "Invalidate cached models of a property, an account code, both, or all of them (--all)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--property", metavar="CODE", help="property code")
        parser.add_argument("--account", metavar="CODE", help="account code")
        parser.add_argument("--all", action="store_true", help="every cached model")
        parser.add_argument("--reason", default="", help="recorded on each entry")

    def handle(self, *args, **options) -> None:
        code, account, everything = options["property"], options["account"], options["all"]
        if everything and (code or account):
            raise CommandError("--all cannot be combined with --property or --account")
        if not (everything or code or account):
            raise CommandError("nothing to invalidate: give --property CODE, --account CODE or --all")
        try:
            FeatureFlags.require(FLAG)
        except FeatureDisabled as exc:
            raise CommandError(str(exc)) from exc
        property_id = None
        if code:
            property_id = Property.objects.filter(code=code).values_list("id", flat=True).first()
            if property_id is None:
                raise CommandError(f"unknown property {code!r}")
        reason = "manual: command" + (f" ({options['reason']})" if options["reason"] else "")
        try:
            count = invalidate_cache(property_id=property_id, account_code=account, reason=reason, everything=everything)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Invalidated {count} cached model(s).")
