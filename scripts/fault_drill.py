"""Fault drill of batch reprocessing (issue 17), driven by scripts/fault_drill.sh.

On PostgreSQL and a Redis server of the drill's own (never a shared one: fault 2 kills it), with
two real worker processes and a real beat, runs one undisturbed job, then one job per fault, each
injected once the job has processed a given share of its documents:

1. a worker SIGKILLed, main process and children;
2. the broker killed and restarted empty;
3. every database connection of the workers and beat terminated (pg_terminate_backend).

For each it prints the recovery time (fault, or broker back, to job completed; target <= 90 s),
processed/total and the duplicate detections (target 0), with the load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")

import django  # noqa: E402

django.setup()

import batch_cluster as cluster  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from batch_jobs.models import BatchJobChunk, BatchReprocessingJob, ChunkStatus, JobStatus  # noqa: E402
from documents.models import DocumentUpload  # noqa: E402

TARGET_SECONDS = 90


class RedisServer:
    """A throw-away redis-server without persistence: restarted, it comes back empty."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise SystemExit(f"redis-server on port {self.port} did not start")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def handover_wait(job: BatchReprocessingJob, check, *, timeout: float) -> float:
    """Seconds until ``check()`` holds (the fault's work is picked up again) or the job ends."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        job.refresh_from_db()
        if job.is_finished or check():
            break
        time.sleep(0.2)
    return time.monotonic() - started


def report(
    label: str, job: BatchReprocessingJob, *, fault_at: float, injected: str, handover: float, expected: float
) -> bool:
    job.refresh_from_db()
    recovery = (job.completed_at.timestamp() - fault_at) if job.completed_at else float("nan")
    retried = BatchJobChunk.objects.filter(job=job, attempts__gt=1).count()
    duplicates = cluster.duplicate_detections()
    ok = job.status == JobStatus.COMPLETED and job.processed_documents == job.total_documents and not duplicates
    ok = ok and recovery <= TARGET_SECONDS
    print(
        f"{label}: {injected}\n"
        f"  work picked up again {handover:5.1f} s after it; job {job.status} {recovery:5.1f} s after it "
        f"(target <= {TARGET_SECONDS} s; {expected:5.1f} s of work were left at the pace before the fault)\n"
        f"  processed {job.processed_documents}/{job.total_documents} (failed {job.failed_documents}); "
        f"duplicate detections {duplicates} (target 0); chunks run more than once {retried}; "
        f"{cluster.load_average()} -> {'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def fault_inject(fault: int, job: BatchReprocessingJob, *, workers: list, redis: RedisServer) -> tuple[float, str, Callable]:
    """Inject one fault; returns when (epoch s), what, and a check that the fault's work was picked up."""
    chunks = BatchJobChunk.objects.filter(job=job)
    if fault == 1:
        dead = workers[0].name
        held = list(chunks.filter(status=ChunkStatus.LEASED, leased_by__startswith=dead).values_list("pk", flat=True))
        workers[0].kill()

        def check() -> bool:  # every chunk the dead worker held is leased by another or finished
            return not chunks.filter(pk__in=held, leased_by__startswith=dead).exists()

        return time.time(), "worker SIGKILLed (main process and children)", check
    if fault == 2:
        pending = dict(chunks.filter(status=ChunkStatus.PENDING).values_list("pk", "task_id"))
        redis.kill()
        redis.start()

        def check() -> bool:  # the reaper re-sent the lost chunk messages under new task ids
            return chunks.filter(pk__in=list(pending)).exclude(task_id__in=list(pending.values())).exists()

        return time.time(), "broker killed and restarted empty (timed from its return)", check
    before = job.processed_documents
    count = cluster.database_connections_terminate()

    def check() -> bool:  # progress again, past the chunks that were in flight
        job.refresh_from_db()
        return job.processed_documents > before + 20

    return time.time(), f"{count} database connections terminated", check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--properties", type=int, default=20)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-load", action="store_true", help="reuse the documents already in the database")
    parser.add_argument("--at", type=float, default=0.25, help="inject each fault at this share of the job")
    parser.add_argument("--faults", default="1,2,3")
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("the drill runs on PostgreSQL: set DATABASE_URL")
    redis = RedisServer(args.redis_port)
    redis.start()
    call_command("migrate", verbosity=0)
    if not (args.no_load and DocumentUpload.objects.filter(is_latest=True).exists()):
        cluster.portfolio_load(properties=args.properties, months=args.months, seed=args.seed)
    workers = cluster.workers_start(2)
    beat = cluster.BeatProcess()
    results = []
    try:
        started = time.monotonic()
        job = cluster.job_wait(cluster.job_submit("drill: undisturbed"), timeout=args.timeout)
        print(
            f"undisturbed: {job.processed_documents} documents in {time.monotonic() - started:.1f} s "
            f"with 2 worker processes; {cluster.load_average()}",
            flush=True,
        )

        def at_share(j: BatchReprocessingJob) -> bool:
            return j.status == JobStatus.RUNNING and j.processed_documents >= args.at * j.total_documents

        for fault in [int(f) for f in args.faults.split(",")]:
            job = cluster.job_wait(cluster.job_submit(f"drill: fault {fault}"), timeout=args.timeout, until=at_share)
            where = f"at {job.processed_documents}/{job.total_documents}"
            pace = job.processed_documents / max((timezone.now() - job.started_at).total_seconds(), 1e-3)
            expected = (job.total_documents - job.processed_documents) / pace
            fault_at, injected, check = fault_inject(fault, job, workers=workers, redis=redis)
            injected = f"{injected} {where}"
            handover = handover_wait(job, check, timeout=args.timeout)
            cluster.job_wait(job, timeout=args.timeout)
            results.append(
                report(f"fault {fault}", job, fault_at=fault_at, injected=injected, handover=handover, expected=expected)
            )
            if fault == 1:
                workers[0].stop()
                workers[0] = cluster.workers_start(1)[0]
    finally:
        beat.stop()
        for process in workers:
            process.stop()
        redis.kill()
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
