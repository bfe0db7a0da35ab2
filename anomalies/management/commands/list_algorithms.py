"""``list_algorithms``: the detector catalogue from PyOD's knowledge base."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from anomalies.detection.catalogue import get_available_algorithms


class Command(BaseCommand):
    help = "List every detector PyOD knows (plus ours): name, family, cost, and whether it can run here."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--available", action="store_true", help="only those that can run here")

    def handle(self, *args, **options) -> None:
        algorithms = get_available_algorithms()
        if options["available"]:
            algorithms = [a for a in algorithms if a["available"]]
        rows = [
            (a["name"], a["family"] or "-", a["cost"], "yes" if a["available"] else f"no: {a['unavailable_reason']}")
            for a in sorted(algorithms, key=lambda a: (not a["available"], a["family"], a["name"]))
        ]
        header = ("name", "family", "cost", "available")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(3)]
        line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
        self.stdout.write(line.format(*header))
        self.stdout.write(line.format(*("-" * w for w in widths), "-" * 9))
        for row in rows:
            self.stdout.write(line.format(*row))
        available = sum(1 for a in algorithms if a["available"])
        self.stdout.write(f"{len(algorithms)} algorithms, {available} available here")
