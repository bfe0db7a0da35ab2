"""Latency of POST /api/v1/batch-reprocessing/reprocess and GET /jobs/{id} with 100,000 documents.

Bulk-creates the documents directly (no line items: only the count matters here), then times the
two requests through Django's test client (full middleware, DRF, authentication, the database, and
the broker send after commit) and prints p50/p99. Target: p99 < 25 ms for both.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reims_bench_api \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \
    /tmp/venv/bin/python benchmarks/batch_api_latency.py

Use a database and a Redis DB of its own: it migrates the database, replaces its documents and
jobs, and purges the broker's queues (no worker runs, so the queued jobs' tasks pile up there).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")
os.environ.setdefault("THROTTLE_JOB_CREATE", "1000000/min")  # measure the endpoint, not the throttle

import django  # noqa: E402

django.setup()
logging.getLogger("reims.events").setLevel(logging.WARNING)  # one line per job would drown the figures

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from batch_jobs.models import BatchReprocessingJob  # noqa: E402
from batch_jobs.selectors import job_documents  # noqa: E402
from documents.models import DocumentType, DocumentUpload, FinancialPeriod, Property  # noqa: E402
from reims.celery import app  # noqa: E402

settings.ALLOWED_HOSTS = ["*"]


def load_documents(target: int) -> None:
    if DocumentUpload.objects.filter(is_latest=True).count() == target:
        return
    DocumentUpload.objects.all().delete()
    Property.objects.all().delete()
    types = list(DocumentType.values)
    months = 120
    properties = -(-target // (len(types) * months))
    periods = []
    for n in range(months):
        year, month = 2015 + n // 12, n % 12 + 1
        period, _ = FinancialPeriod.objects.get_or_create(
            year=year,
            month=month,
            defaults={
                "ordinal": year * 12 + month - 1,
                "start_date": f"{year}-{month:02d}-01",
                "end_date": f"{year}-{month:02d}-28",
            },
        )
        periods.append(period)
    props = Property.objects.bulk_create([Property(code=f"B{n:05d}", name=f"Bench {n}") for n in range(properties)])
    batch: list[DocumentUpload] = []
    created = 0
    for prop in props:
        for doc_type in types:
            for period in periods:
                if created >= target:
                    break
                batch.append(
                    DocumentUpload(
                        property=prop,
                        document_type=doc_type,
                        period=period,
                        content_hash=f"{created:064x}",
                        extraction_status="completed",
                    )
                )
                created += 1
        if len(batch) >= 10000:
            DocumentUpload.objects.bulk_create(batch)
            batch = []
    DocumentUpload.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE document_uploads")  # visibility map: index-only counts
    print(f"created {created} documents over {properties} properties")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def timed(label: str, call, runs: int) -> None:
    for _ in range(10):  # warm connections, caches and the query plans
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    p50, p99 = statistics.median(samples), percentile(samples, 99)
    verdict = "ok" if p99 < 25 else "OVER TARGET"
    print(f"{label:<48} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({runs} requests) {verdict}")


def _manager_of_every_property():
    from django.contrib.auth.models import Group, Permission

    from documents.models import PortfolioGrant, default_portfolio_id
    from reims.roles import MANAGERS, roles_sync

    roles_sync(Group, Permission)
    user, _ = get_user_model().objects.get_or_create(username="bench-manager")
    user.groups.set([Group.objects.get(name=MANAGERS)])
    PortfolioGrant.objects.get_or_create(user=user, portfolio_id=default_portfolio_id())
    return user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument(
        "--as-manager",
        action="store_true",
        help="request as a manager granted the portfolio of every property (measures portfolio scoping) "
        "instead of a superuser",
    )
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    app.control.purge()
    load_documents(args.documents)
    BatchReprocessingJob.objects.all().delete()
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    if args.as_manager:
        user = _manager_of_every_property()
    client = Client()
    client.force_login(user)
    some_property = Property.objects.order_by("code").values_list("id", flat=True)[3]

    if connection.vendor == "postgresql":
        sql, params = job_documents(document_types=["income_statement"]).order_by().values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN SELECT COUNT(*) FROM ({sql}) s", params)
            print("count plan:", " / ".join(row[0].strip() for row in cursor.fetchall()[:4]))

    bodies = {
        "POST reprocess (all documents)": {},
        "POST reprocess (one property)": {"property_ids": [some_property]},
        "POST reprocess (type + 2 years)": {
            "document_types": ["income_statement"],
            "date_range_start": "2018-01-01",
            "date_range_end": "2019-12-31",
        },
    }
    job_ids = []
    for label, body in bodies.items():

        def post(body=body) -> None:
            response = client.post("/api/v1/batch-reprocessing/reprocess", body, content_type="application/json")
            assert response.status_code == 201, response.content
            job_ids.append(response.json()["id"])

        timed(label, post, args.runs)
    total = BatchReprocessingJob.objects.get(pk=job_ids[0]).total_documents
    print(f"total_documents counted at creation: {total}")

    def get() -> None:
        response = client.get(f"/api/v1/batch-reprocessing/jobs/{job_ids[0]}")
        assert response.status_code == 200

    timed("GET job", get, args.runs)
    app.control.purge()


if __name__ == "__main__":
    main()
