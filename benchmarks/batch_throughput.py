"""End-to-end throughput of batch reprocessing with real Celery worker processes.

Loads the demo portfolio (documents.demo.generator + documents.services.documents_import) into the
database of DATABASE_URL, then runs the same ``detect_anomalies`` job with one worker process and
with two, and prints documents/minute and the scaling ratio.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reims_bench_batch \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/12 \
    /tmp/venv/bin/python benchmarks/batch_throughput.py --properties 20 --months 36

Use a database and a Redis DB of its own: the benchmark migrates the database, replaces its
documents, and purges the broker's queues.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from batch_jobs import services  # noqa: E402
from batch_jobs.models import BatchReprocessingJob, JobStatus  # noqa: E402
from documents.models import DocumentUpload, Property  # noqa: E402
from reims.celery import app  # noqa: E402
from reims.testing import WorkerProcess  # noqa: E402


def load_portfolio(properties: int, months: int, seed: int) -> int:
    from documents.demo.generator import generate_portfolio
    from documents.services import UploadedSource, documents_import

    Property.objects.all().delete()
    portfolio = generate_portfolio(properties=properties, months=months, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = portfolio.write(tmp)
        started = time.perf_counter()
        summary = documents_import(files=[UploadedSource.from_path(p) for p in paths["statements"]])
        print(f"loaded: {summary.describe()} in {time.perf_counter() - started:.1f}s")
    return DocumentUpload.objects.filter(is_latest=True).count()


def run_job(workers: int, concurrency: int, chunk_size: int) -> tuple[BatchReprocessingJob, float]:
    env = {"BATCH_PROCESSING_CHUNK_SIZE": str(chunk_size)}
    processes = [WorkerProcess(concurrency=concurrency, extra_env=env) for _ in range(workers)]
    try:
        for process in processes:
            process.wait_ready()
        job = services.create_batch_job(
            job_name=f"bench {workers}x{concurrency}",
            property_ids=[],
            date_range_start=None,
            date_range_end=None,
            document_types=[],
            initiated_by=None,
        )
        services.start_batch_job(job=job)
        wall = time.perf_counter()
        while True:
            job.refresh_from_db()
            if job.is_finished:
                break
            time.sleep(0.25)
        wall = time.perf_counter() - wall
    finally:
        for process in processes:
            process.stop()
    if job.status != JobStatus.COMPLETED:
        raise SystemExit(f"job #{job.pk} ended {job.status}: {job.error_message}")
    return job, wall


def report(label: str, job: BatchReprocessingJob, wall: float) -> float:
    seconds = (job.completed_at - job.started_at).total_seconds()
    rate = job.processed_documents / seconds * 60
    anomalies = job.results_summary.get("anomalies", {}).get("total", 0)
    print(
        f"{label:<28} {job.processed_documents:>6} docs in {seconds:6.1f}s (wall {wall:5.1f}s): "
        f"{rate:8.0f} documents/minute; ok {job.successful_documents}, failed {job.failed_documents}, "
        f"skipped {job.skipped_documents}, anomalies {anomalies}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--properties", type=int, default=20)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk-size", type=int, default=None, help="default: BATCH_PROCESSING_CHUNK_SIZE")
    parser.add_argument("--no-load", action="store_true", help="reuse the documents already in the database")
    args = parser.parse_args()
    from django.conf import settings

    chunk_size = args.chunk_size or settings.BATCH_PROCESSING_CHUNK_SIZE
    call_command("migrate", verbosity=0)
    app.control.purge()
    documents = (
        DocumentUpload.objects.filter(is_latest=True).count()
        if args.no_load
        else load_portfolio(args.properties, args.months, args.seed)
    )
    print(f"{documents} latest documents; chunk size {chunk_size}; {os.cpu_count()} CPUs")
    # The first pass trains and caches models; the timed passes then measure steady reprocessing.
    report("warm-up (1 worker)", *run_job(1, 1, chunk_size))
    one = report("1 worker process", *run_job(1, 1, chunk_size))
    two = report("2 worker processes", *run_job(2, 1, chunk_size))
    print(f"scaling 2 vs 1 worker processes: {two / one:.2f}x (target >= 2000 documents/minute)")


if __name__ == "__main__":
    main()
