"""python manage.py import_documents PATH... — CSV, XLSX and text PDFs (DESIGN.md §4)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from documents.models import DocumentType
from documents.parsing import SUPPORTED_EXTENSIONS
from documents.services import DocumentImportError, ImportSummary, UploadedSource, documents_import
from kernel.commands import add_property_option, bars_with_logs, property_codes
from kernel.exceptions import ApplicationError

PROGRESS_THRESHOLD = 50  # documents: smaller imports finish before a bar would help


def collect_paths(paths: list[str]) -> list[Path]:
    """Files as given, and the supported files under each directory (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith(".")
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{raw}: no such file or directory")
    return found


def import_paths(
    paths: list[Path], *, overrides: dict | None = None, progress: bool = True, stderr=None, detect: bool = True
) -> ImportSummary:
    """Import files through documents_import with optional tqdm bars; CommandError listing every
    error (one per line, up to 100, then "and N more") when the call is rejected."""
    bars: dict[str, tqdm] = {}

    def report(phase: str, done: int, total: int) -> None:
        if not progress or (phase == "write" and total < PROGRESS_THRESHOLD) or (phase == "parse" and total < 5):
            return
        bar = bars.get(phase)
        if bar is None:
            unit = "file" if phase == "parse" else "doc"
            label = "Reading" if phase == "parse" else "Writing"
            bar = bars[phase] = tqdm(total=total, desc=label, unit=unit, file=stderr, leave=False)
        bar.update(done - bar.n)

    try:
        sources = [UploadedSource.from_path(path) for path in paths]
        with bars_with_logs():
            return documents_import(files=sources, overrides=overrides, progress=report, channel="command", detect=detect)
    except DocumentImportError as exc:
        lines = exc.lines if exc.errors.total == 1 else [exc.errors.summary(), *exc.lines]
        raise CommandError("\n".join(lines)) from None
    except ApplicationError as exc:
        raise CommandError(exc.message) from None
    finally:
        for bar in bars.values():
            bar.close()


class Command(BaseCommand):
    help = (
        "Import statements (canonical CSV, XLSX, text PDF; directories are searched for them). "
        "All files of one call are imported together or not at all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories searched for them")
        add_property_option(parser, help="property code (one): fills or overrides the files'")
        parser.add_argument(
            "--document-type",
            choices=DocumentType.values,
            metavar="TYPE",
            help=f"fills or overrides the files' document type: {', '.join(DocumentType.values)}",
        )
        parser.add_argument("--period", metavar="YYYY-MM", help="fills or overrides the files' period")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--no-detect",
            action="store_true",
            help="do not queue detection of the imported documents (default: queued on the anomaly queue)",
        )

    def handle(self, *args, **options) -> None:
        paths = collect_paths(options["paths"])
        if not paths:
            raise CommandError(f"no .csv, .xlsx or .pdf files under {' '.join(options['paths'])}")
        overrides = {
            "property_code": next(iter(property_codes(options, at_most=1)), None),
            "document_type": options["document_type"],
            "period": options["period"],
        }
        summary = import_paths(
            paths,
            overrides=overrides,
            progress=not options["no_progress"],
            stderr=self.stderr._out,
            detect=not options["no_detect"],
        )
        self.stdout.write(self.style.SUCCESS(f"Imported {summary.describe()}"))
