"""``export_anomalies --output FILE.csv [--all]`` (DESIGN §5: the columns are a contract)."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anomalies.selectors import EXPORT_COLUMNS, export_rows
from kernel.spreadsheet import spreadsheet_row


class Command(BaseCommand):
    help = "Write the flagged lines (or, with --all, every scored line of the latest versions) to a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", required=True, metavar="FILE.csv", help="the CSV file to write")
        parser.add_argument("--all", action="store_true", dest="all_lines", help="every scored line, not only flagged")

    def handle(self, *args, **options) -> None:
        output = Path(options["output"])
        if output.exists() and output.is_dir():
            raise CommandError(f"--output {output} is a directory")
        if not output.parent.exists():
            raise CommandError(f"--output {output}: directory {output.parent} does not exist")
        # Write beside the target and rename, so a reader never sees half a file.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
        count = 0
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(EXPORT_COLUMNS)
                for row in export_rows(all_lines=options["all_lines"]):
                    writer.writerow(_cells(row))
                    count += 1
            os.replace(tmp_name, output)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        what = "scored lines" if options["all_lines"] else "anomalies"
        self.stdout.write(f"Wrote {count} {what} to {output}")


def _cells(row: tuple) -> list[object]:
    """Text from statements is neutralised for spreadsheets; amounts stay numbers (``-12.50``)."""
    code, doc_type, period, account, amount, expected, score, severity, flagged, detector = row
    text = spreadsheet_row([code, doc_type, period, account])
    return [
        *text,
        "" if amount is None else f"{amount:.2f}",
        "" if expected is None else f"{expected:.2f}",
        f"{score:.2f}",
        *spreadsheet_row([severity, "true" if flagged else "false", detector]),
    ]
