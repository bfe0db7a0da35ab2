"""``detect_anomalies [--property CODE...] [--since YYYY-MM] [--until YYYY-MM] [--all]``."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anomalies import services
from kernel.commands import PROPERTY_HELP, add_property_option, bars_with_logs, property_codes
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Detect anomalies in-process. Without --all only documents not detected since their upload "
        "are processed; --since/--until (YYYY-MM) bound the periods scored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_property_option(parser, help=f"only these properties; {PROPERTY_HELP}")
        parser.add_argument("--since", metavar="YYYY-MM", help="first period scored (inclusive)")
        parser.add_argument("--until", metavar="YYYY-MM", help="last period scored (inclusive)")
        parser.add_argument("--all", action="store_true", dest="all_documents", help="redo documents already detected")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options) -> None:
        from tqdm import tqdm

        bar = None
        show_bar = not options["no_progress"]

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if not show_bar or not total:
                return
            if bar is None:
                bar = tqdm(total=total, unit="doc", desc="detecting", file=sys.stderr, dynamic_ncols=True)
            bar.update(done - bar.n)

        codes = property_codes(options)
        try:
            with bars_with_logs():
                summary = services.detection_run(
                    property_codes=codes or None,
                    since=options["since"],
                    until=options["until"],
                    all_documents=options["all_documents"],
                    progress=progress,
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            if bar is not None:
                bar.close()

        if not summary.per_document:
            self.stdout.write("Nothing to do: no document in scope needs detection (use --all to redo them).")
            return
        data = summary.as_dict()
        severities = ", ".join(f"{k} {v}" for k, v in sorted(data["anomalies_by_severity"].items())) or "none"
        detectors = ", ".join(f"{k} {v}" for k, v in sorted(data["detectors"].items())) or "none"
        self.stdout.write(
            f"Documents: {data['documents']} ({data['documents_ok']} ok, {data['documents_failed']} failed, "
            f"{data['documents_skipped']} skipped) over {len(data['property_ids'])} properties in "
            f"{data['duration_seconds']:.1f}s"
        )
        self.stdout.write(
            f"Lines scored: {data['lines_scored']} ({data['insufficient_history']} with insufficient history); "
            f"series modelled: {data['series_modelled']}"
        )
        self.stdout.write(f"Anomalies: {data['anomalies']} ({severities})")
        self.stdout.write(f"Rows written: {data['rows_written']} (detections and explanations that changed)")
        self.stdout.write(f"Detectors: {detectors}")
        for doc_id, reason in sorted(summary.failures.items())[:20]:
            self.stdout.write(f"  failed document {doc_id}: {reason}")
        if summary.documents_failed:
            raise CommandError(f"{summary.documents_failed} document(s) failed")
