"""Factories for the documents a batch job works on (documents' own factories may differ)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.db.models.functions import Now

from batch_jobs.models import BatchJobChunk, BatchReprocessingJob
from documents.models import DocumentUpload, FinancialPeriod, LineItem, Property
from documents.services import financial_periods_upsert


def period(year: int, month: int) -> FinancialPeriod:
    label = f"{year:04d}-{month:02d}"
    return financial_periods_upsert([label])[label]


class PropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Property

    code = factory.Sequence(lambda n: f"P{n:04d}")
    name = factory.LazyAttribute(lambda o: f"Property {o.code}")
    property_type = "office"


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DocumentUpload

    property = factory.SubFactory(PropertyFactory)
    document_type = "income_statement"
    period = factory.LazyFunction(lambda: period(2024, 1))
    content_hash = factory.Sequence(lambda n: f"{n:064x}")
    extraction_status = "completed"


class LineItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LineItem

    document = factory.SubFactory(DocumentFactory)
    account_code = factory.Sequence(lambda n: f"4{n:03d}-0000")
    account_name = "Rent"
    amount = Decimal("1000.00")


def portfolio(
    *, properties: int = 2, months: int = 3, types: tuple[str, ...] = ("income_statement",), lines: int = 1
) -> list[DocumentUpload]:
    """Documents with line items for every property x type x month of 2024 (latest versions)."""
    docs = []
    periods = [period(2024, m) for m in range(1, months + 1)]
    for _ in range(properties):
        prop = PropertyFactory()
        for doc_type in types:
            for per in periods:
                doc = DocumentFactory(property=prop, document_type=doc_type, period=per)
                for n in range(lines):
                    LineItemFactory(document=doc, account_code=f"40{n:02d}-0000")
                docs.append(doc)
    return docs


def job(**kwargs) -> BatchReprocessingJob:
    defaults = {"job_name": "test", "processor": "check_documents"}
    return BatchReprocessingJob.objects.create(**{**defaults, **kwargs})


def task_sends(callbacks) -> list:
    """The on-commit callbacks that send a Celery task (others, such as state-change log lines,
    run on commit too)."""
    return [callback for callback in callbacks if callback.__qualname__.endswith("<locals>.send")]


def expire_lease(chunk: BatchJobChunk) -> None:
    """The state a dead worker leaves: its chunk's lease ran out on the database's clock."""
    BatchJobChunk.objects.filter(pk=chunk.pk).update(lease_expires_at=Now() - timedelta(seconds=1))


def age_job(job: BatchReprocessingJob, *, seconds: float) -> None:
    """The state of a job without progress for ``seconds``: its last update and its chunks' ends
    lie that far back on the database's clock."""
    past = Now() - timedelta(seconds=seconds)
    BatchReprocessingJob.objects.filter(pk=job.pk).update(updated_at=past, started_at=past)
    BatchJobChunk.objects.filter(job=job).exclude(finished_at=None).update(finished_at=past)
