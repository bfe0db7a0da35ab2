"""Support for the batch benchmark and the fault drill: a demo portfolio in the database, real
worker and beat processes, per-process peak memory, and waiting for a job on the database's state.

Imported by benchmarks/batch_throughput.py and scripts/fault_drill.py after ``django.setup()``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count

from anomalies.models import AnomalyDetection
from batch_jobs import services
from batch_jobs.models import BatchReprocessingJob
from documents.models import DocumentUpload, LineItem, Property
from reims.testing import WorkerProcess, test_database_url

BASE_DIR = Path(settings.BASE_DIR)


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def portfolio_load(*, properties: int, months: int, seed: int) -> int:
    """Replace the database's documents with a generated portfolio; returns the latest documents."""
    from documents.demo.generator import generate_portfolio
    from documents.services import UploadedSource, documents_import

    Property.objects.all().delete()
    portfolio = generate_portfolio(properties=properties, months=months, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = portfolio.write(tmp)
        started = time.perf_counter()
        summary = documents_import(files=[UploadedSource.from_path(p) for p in paths["statements"]])
        print(f"loaded: {summary.describe()} in {time.perf_counter() - started:.1f}s", flush=True)
    return DocumentUpload.objects.filter(is_latest=True).count()


def statements_empty(*, fraction: float, seed: int = 11) -> int:
    """Empty the statements of ``fraction`` of the latest documents (bad input a job must skip)."""
    ids = list(DocumentUpload.objects.filter(is_latest=True).order_by("id").values_list("id", flat=True))
    step = max(int(round(1 / fraction)), 1) if fraction else 0
    chosen = ids[seed % step :: step] if step else []
    for start in range(0, len(chosen), 2000):
        LineItem.objects.filter(document_id__in=chosen[start : start + 2000]).delete()
    return len(chosen)


def job_submit(name: str) -> BatchReprocessingJob:
    return services.job_submit(
        job_name=name,
        property_ids=[],
        date_range_start=None,
        date_range_end=None,
        document_types=[],
        initiated_by=None,
    )


def job_wait(job: BatchReprocessingJob, *, timeout: float, poll: float = 0.25, until=None) -> BatchReprocessingJob:
    """Poll the job's row until it ends (or ``until(job)`` holds); raises after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished or (until is not None and until(job)):
            return job
        time.sleep(poll)
    raise SystemExit(
        f"job #{job.pk} still {job.status} at {job.processed_documents}/{job.total_documents} after {timeout:.0f}s"
    )


def duplicate_detections() -> int:
    """(document, account) pairs with more than one detection row: must be 0."""
    return AnomalyDetection.objects.values("document_id", "account_code").annotate(n=Count("id")).filter(n__gt=1).count()


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


def peak_rss_mb(pid: int) -> float:
    """The largest peak RSS (VmHWM) of one process of ``pid``'s tree, in MB."""
    peak = 0.0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peak


class BeatProcess:
    """``celery -A reims beat`` with the project's schedule (the reaper every 15 s)."""

    def __init__(self, *, extra_env: dict | None = None):
        self.log_path = BASE_DIR / "var" / f"beat-{os.getpid()}-{time.time_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "DATABASE_URL": test_database_url(), **(extra_env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "reims", "beat", "--loglevel", "INFO"],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


def workers_start(count: int, *, concurrency: int = 1, extra_env: dict | None = None) -> list[WorkerProcess]:
    processes = [WorkerProcess(concurrency=concurrency, extra_env=extra_env) for _ in range(count)]
    for process in processes:
        process.wait_ready(timeout=180)
    return processes


def database_connections_terminate() -> int:
    """pg_terminate_backend on every other connection to this database (workers, beat)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]
