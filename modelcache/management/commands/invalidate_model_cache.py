"""Deactivate cached models so that the next detection retrains them."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from documents.models import Property
from kernel.commands import PROPERTY_HELP, add_property_option, property_codes
from kernel.exceptions import ApplicationError
from kernel.flags import FeatureDisabled, FeatureFlags
from modelcache.services import FLAG, invalidate_cache


class Command(BaseCommand):
    help = "Invalidate cached models of a property, an account code, both, or all of them (--all)."

    def add_arguments(self, parser) -> None:
        add_property_option(parser, help=f"the cached models of these properties; {PROPERTY_HELP}")
        parser.add_argument("--account", metavar="CODE", help="the cached models of this account code")
        parser.add_argument("--all", action="store_true", help="every cached model")
        parser.add_argument("--reason", default="", help="why, recorded on each entry")

    def handle(self, *args, **options) -> None:
        codes, account, everything = property_codes(options), options["account"], options["all"]
        if everything and (codes or account):
            raise CommandError("--all cannot be combined with --property or --account")
        if not (everything or codes or account):
            raise CommandError("nothing to invalidate: give --property CODE, --account CODE or --all")
        try:
            FeatureFlags.require(FLAG)
        except FeatureDisabled as exc:
            raise CommandError(str(exc)) from exc
        found = dict(Property.objects.filter(code__in=codes).values_list("code", "id"))
        unknown = [code for code in codes if code not in found]
        if unknown:
            raise CommandError(f"unknown property code(s): {', '.join(unknown)}")
        reason = "manual: command" + (f" ({options['reason']})" if options["reason"] else "")
        count = 0
        try:
            for property_id in [found[code] for code in codes] or [None]:
                count += invalidate_cache(
                    property_id=property_id, account_code=account, reason=reason, everything=everything
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Invalidated {count} cached model(s).")
