"""``python manage.py reprocess [filters] [--wait]``: create a batch job, queue it, optionally follow it."""

from __future__ import annotations

import re
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batch_jobs import services
from batch_jobs.models import BatchReprocessingJob, ExtractionStatusFilter, JobStatus
from documents.models import DocumentType, Property
from kernel.commands import PROPERTY_HELP, add_property_option, property_codes
from kernel.exceptions import ApplicationError
from kernel.flags import FeatureDisabled

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month(value: str, option: str) -> date:
    match = _MONTH.match(value or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise CommandError(f"{option} must be YYYY-MM, got {value!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def render_bar(job: BatchReprocessingJob, width: int = 30) -> str:
    pct = job.progress_pct
    filled = int(width * min(pct, 100.0) / 100)
    eta = f" eta {job.estimated_completion_at:%H:%M:%S}" if job.estimated_completion_at and not job.is_finished else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {pct:5.1f}% "
        f"{job.processed_documents}/{job.total_documents} docs, {job.failed_documents} failed ({job.status}){eta}"
    )


class Command(BaseCommand):
    help = "Create a batch reprocessing job over the latest documents matching the filters and queue it."

    def add_arguments(self, parser: CommandParser) -> None:
        add_property_option(parser, help=f"only these properties; {PROPERTY_HELP}")
        parser.add_argument("--since", metavar="YYYY-MM", help="first period (inclusive)")
        parser.add_argument("--until", metavar="YYYY-MM", help="last period (inclusive)")
        parser.add_argument(
            "--document-type",
            action="append",
            default=[],
            choices=DocumentType.values,
            metavar="TYPE",
            help=f"only this document type (repeat for several): {', '.join(DocumentType.values)}",
        )
        parser.add_argument(
            "--status-filter",
            default=ExtractionStatusFilter.ALL,
            choices=ExtractionStatusFilter.values,
            metavar="STATUS",
            help=f"only documents whose extraction status is this: {', '.join(ExtractionStatusFilter.values)} (default all)",
        )
        parser.add_argument("--name", default="", help="job name (default: one made from the filters)")
        parser.add_argument("--wait", action="store_true", help="follow the job with a progress bar until it ends")
        parser.add_argument(
            "--inline",
            action="store_true",
            help="run the job's chunks in this process (no worker needed), then print its summary",
        )
        parser.add_argument("--poll", type=float, default=1.0, help="seconds between progress updates (--wait)")
        parser.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")

    def handle(self, *args, **options) -> None:
        since = _month(options["since"], "--since") if options["since"] else None
        until = _month(options["until"], "--until") if options["until"] else None
        codes = property_codes(options)
        found = dict(Property.objects.filter(code__in=codes).values_list("code", "id"))
        unknown = [c for c in codes if c not in found]
        if unknown:
            raise CommandError(f"unknown property code(s): {', '.join(unknown)}")
        try:
            job = services.job_submit(
                job_name=options["name"],
                property_ids=[found[c] for c in codes],
                date_range_start=since,
                date_range_end=until,
                document_types=options["document_type"],
                extraction_status_filter=options["status_filter"],
                initiated_by=None,
            )
        except FeatureDisabled as exc:
            raise CommandError(str(exc))
        except ApplicationError as exc:
            detail = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.field_errors.items())
            raise CommandError(detail or exc.message)
        self.stdout.write(f"Job #{job.pk} '{job.job_name}' queued over {job.total_documents} documents.")
        if options["inline"]:
            services.job_run_inline(job_id=job.pk)
            self._follow(job, poll=options["poll"], timeout=options["timeout"])
        elif options["wait"]:
            self._follow(job, poll=options["poll"], timeout=options["timeout"])

    def _follow(self, job: BatchReprocessingJob, *, poll: float, timeout: float | None) -> None:
        started = time.monotonic()
        live = self.stdout.isatty()
        last = ""
        while True:
            job.refresh_from_db()
            line = render_bar(job)
            if line != last:
                # A live bar on a terminal (carriage return), one line per change otherwise.
                self.stdout.write(f"\r{line}" if live else line, ending="" if live else "\n")
                self.stdout.flush()
                last = line
            if job.is_finished:
                break
            if timeout is not None and time.monotonic() - started > timeout:
                if live:
                    self.stdout.write("")
                raise CommandError(f"job #{job.pk} still {job.status} after {timeout:.0f}s (it goes on in the background)")
            time.sleep(poll)
        if live:
            self.stdout.write("")
        self._summary(job)
        if job.status == JobStatus.FAILED:
            raise CommandError(f"job #{job.pk} failed: {job.error_message or 'see its results summary'}")
        if job.status == JobStatus.CANCELLED:
            raise CommandError(f"job #{job.pk} was cancelled after {job.processed_documents} documents")

    def _summary(self, job: BatchReprocessingJob) -> None:
        summary = job.results_summary or {}
        anomalies = summary.get("anomalies", {})
        self.stdout.write(
            f"Job #{job.pk} {job.status} in {job.duration_seconds or 0:.1f}s: "
            f"{job.processed_documents}/{job.total_documents} documents, {job.successful_documents} ok, "
            f"{job.failed_documents} failed, {job.skipped_documents} skipped; "
            f"{anomalies.get('total', 0)} anomalies"
        )
        by_severity = anomalies.get("by_severity") or {}
        if by_severity:
            order = ["critical", "high", "medium", "low"]
            parts = [f"{s} {by_severity[s]}" for s in order if s in by_severity]
            self.stdout.write("  by severity: " + ", ".join(parts))
        by_property = anomalies.get("by_property") or {}
        if by_property:
            top = sorted(by_property.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            self.stdout.write("  top properties: " + ", ".join(f"{code} {n}" for code, n in top))
        for failure in summary.get("failures", [])[:10]:
            self.stdout.write(f"  failed document {failure.get('document', failure['document_id'])}: {failure['reason']}")
        for reason, count in list(summary.get("skipped_by_reason", {}).items())[:10]:
            self.stdout.write(f"  skipped {count} document(s): {reason}")
        if summary.get("failures_total", 0) > 10:
            self.stdout.write(f"  ... {summary['failures_total'] - 10} more failures (see the admin)")
