"""python manage.py generate_demo_portfolio --properties N --months M --seed S --output DIR [--load]"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents.demo.generator import generate_portfolio
from documents.demo.pdf_render import render_sample_pdfs
from documents.management.commands.import_documents import import_paths
from documents.services import properties_update_details

SAMPLE_PDFS = 5


class Command(BaseCommand):
    help = (
        "Generate a realistic demo portfolio with injected, labelled anomalies: DIR/statements/*.csv, "
        "DIR/labels.csv, DIR/properties.csv and a few PDFs in DIR/pdf/. --load imports them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--properties", type=int, default=12, help="number of properties (default 12)")
        parser.add_argument("--months", type=int, default=36, help="months of statements per property (default 36)")
        parser.add_argument("--seed", type=int, default=7, help="random seed: the same seed gives the same portfolio")
        parser.add_argument("--start", default="2021-01", help="first period, YYYY-MM (default 2021-01)")
        parser.add_argument("--output", default="var/demo", help="directory to write into (default var/demo)")
        parser.add_argument("--load", action="store_true", help="import the CSVs and the sample PDFs")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--no-detect", action="store_true", help="with --load: do not queue detection of the imported documents"
        )

    def handle(self, *args, **options) -> None:
        if options["properties"] < 1 or options["months"] < 1:
            raise CommandError("--properties and --months must be at least 1")
        started = time.perf_counter()
        try:
            portfolio = generate_portfolio(
                properties=options["properties"], months=options["months"], seed=options["seed"], start=options["start"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        output = Path(options["output"])
        written = portfolio.write(output)
        # The sample PDFs re-render rows that are also in the CSVs. --load imports them FIRST, so
        # their versions (with page coordinates) are the ones kept: the CSV rows of those documents
        # are identical content and leave them unchanged.
        pdfs = render_sample_pdfs(portfolio.rows, output / "pdf", count=SAMPLE_PDFS)
        self.stdout.write(
            f"Generated {len(portfolio.properties)} properties x {options['months']} months: "
            f"{len(portfolio.rows)} line items, {len(portfolio.labels)} labelled anomalies, "
            f"{len(pdfs)} PDFs in {output} ({time.perf_counter() - started:.1f} s)"
        )
        if options["load"]:
            progress = not options["no_progress"]
            detect = not options["no_detect"]
            pdf_summary = import_paths(pdfs, progress=progress, stderr=self.stderr._out, detect=detect)
            self.stdout.write(self.style.SUCCESS(f"Imported PDFs: {pdf_summary.describe()}"))
            summary = import_paths(list(written["statements"]), progress=progress, stderr=self.stderr._out, detect=detect)
            properties_update_details(details=portfolio.properties)
            self.stdout.write(self.style.SUCCESS(f"Imported CSVs: {summary.describe()}"))
