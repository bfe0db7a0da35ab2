"""Throughput and memory of batch reprocessing with real Celery worker processes (issue 16, item 2).

Loads a demo portfolio (default 20 properties x 36 months) into the database of DATABASE_URL, then,
with 2 worker processes (concurrency 1 each) and chunks of BATCH_PROCESSING_CHUNK_SIZE (10):

- cold: fresh worker processes, no cached model, no detection stored (a first pass);
- warm: the same job again on the same (now warm) processes;

and prints documents/minute beside the targets (>= 8,000 cold, >= 15,000 warm), the peak RSS of
every worker process beside its target (<= 600 MB), the job's skipped documents and the load
average. ``--documents 100000`` sizes the portfolio for a 100,000-document job (with 1 % of the
statements emptied, which the job must report as skipped).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reims_bench_batch \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/12 python benchmarks/batch_throughput.py

Use a database and a Redis DB of its own: the benchmark migrates the database, replaces its
documents and detections, and purges the broker's queue.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")

import django  # noqa: E402

django.setup()

import batch_cluster as cluster  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from anomalies.models import AnomalyDetection  # noqa: E402
from batch_jobs.models import BatchReprocessingJob, JobStatus  # noqa: E402
from documents.models import DocumentUpload  # noqa: E402
from modelcache.models import AnomalyModelCache  # noqa: E402
from reims.celery import app  # noqa: E402

TARGET_COLD, TARGET_WARM, TARGET_RSS_MB = 8_000, 15_000, 600
DOCUMENTS_PER_PROPERTY_MONTH = 4.5  # the demo generator's average over its five document types


class PeakMemory:
    """Samples the peak RSS (VmHWM) of each worker process tree while a job runs."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.peaks = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        for pid in self.pids:
            self.peaks[pid] = max(self.peaks[pid], cluster.peak_rss_mb(pid))

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()


def run(label: str, timeout: float) -> BatchReprocessingJob:
    job = cluster.job_wait(cluster.job_submit(f"bench: {label}"), timeout=timeout)
    if job.status != JobStatus.COMPLETED:
        raise SystemExit(f"job #{job.pk} ended {job.status}: {job.error_message}")
    seconds = (job.completed_at - job.started_at).total_seconds()
    rate = job.processed_documents / seconds * 60
    target = TARGET_COLD if label == "cold" else TARGET_WARM
    print(
        f"{label:<5} {job.processed_documents:>7} docs in {seconds:7.1f} s: {rate:8.0f} documents/minute "
        f"(target >= {target:,}) {'PASS' if rate >= target else 'FAIL'}; ok {job.successful_documents}, "
        f"failed {job.failed_documents}, skipped {job.skipped_documents}; {cluster.load_average()}",
        flush=True,
    )
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--properties", type=int, default=20)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--documents", type=int, default=0, help="size the portfolio for about this many documents")
    parser.add_argument(
        "--empty-fraction", type=float, default=None, help="statements emptied (default 1 %% with --documents)"
    )
    parser.add_argument("--no-load", action="store_true", help="reuse the documents already in the database")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    if args.documents:
        args.properties = math.ceil(args.documents / (args.months * DOCUMENTS_PER_PROPERTY_MONTH))
    empty_fraction = args.empty_fraction if args.empty_fraction is not None else (0.01 if args.documents else 0.0)
    call_command("migrate", verbosity=0)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("anomaly")
    if not (args.no_load and DocumentUpload.objects.filter(is_latest=True).exists()):
        cluster.portfolio_load(properties=args.properties, months=args.months, seed=args.seed)
    emptied = cluster.statements_empty(fraction=empty_fraction) if empty_fraction else 0
    documents = DocumentUpload.objects.filter(is_latest=True).count()
    AnomalyDetection.objects.all().delete()
    AnomalyModelCache.objects.all().delete()
    print(
        f"{documents} latest documents ({emptied} statements emptied); chunk size "
        f"{settings.BATCH_PROCESSING_CHUNK_SIZE}; 2 worker processes; {os.cpu_count()} CPUs; {cluster.load_average()}",
        flush=True,
    )
    workers = cluster.workers_start(2)
    try:
        with PeakMemory([w.process.pid for w in workers]) as memory:
            run("cold", args.timeout)
            job = run("warm", args.timeout)
    finally:
        for process in workers:
            process.stop()
    for n, peak in enumerate(memory.peaks.values(), 1):
        verdict = "PASS" if peak <= TARGET_RSS_MB else "FAIL"
        print(f"worker {n} peak RSS {peak:6.0f} MB over {documents} documents (target <= {TARGET_RSS_MB} MB) {verdict}")
    summary = job.results_summary
    print(f"skipped documents reported: {summary['skipped_total']} by reason {summary['skipped_by_reason']}")
    for entry in summary["skipped"][:3]:
        print(f"  e.g. {entry['document']}: {entry['reason']}")


if __name__ == "__main__":
    main()
