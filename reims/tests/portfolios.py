"""Two portfolios with one property each and a row of every property-derived table (test data).

Portfolio B's rows carry markers (``B_MARKERS``) that occur nowhere in portfolio A's: a response
seen by a user of A that contains one of them has leaked B's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import Group, Permission, User

from anomalies.models import (
    AnomalyDetection,
    AnomalyExplanation,
    AnomalyFeedback,
    CrossPropertyBenchmark,
    FeedbackType,
    ModelSelectionLog,
)
from batch_jobs.models import BatchJobChunk, BatchReprocessingJob
from documents.models import (
    ChartOfAccount,
    DocumentUpload,
    FinancialPeriod,
    LineItem,
    PDFFieldCoordinate,
    Portfolio,
    PortfolioGrant,
    Property,
)
from modelcache.models import AnomalyModelCache
from reims.roles import ANALYSTS, MANAGERS, roles_sync

B_PROPERTY_CODE = "BRAVO77"
B_MARKERS = ("BRAVO77", "Bravo Secret Tower", "9999-BRAVO", "Bravo hidden ledger", "bravo-file.csv", "bravo-model")


@dataclass
class Side:
    """One portfolio's rows, by what the API and the admin call them."""

    portfolio: Portfolio
    property: Property
    document: DocumentUpload
    line_item: LineItem
    coordinate: PDFFieldCoordinate
    anomaly: AnomalyDetection
    explanation: AnomalyExplanation
    feedback: AnomalyFeedback
    selection: ModelSelectionLog
    cache_entry: AnomalyModelCache
    job: BatchReprocessingJob
    chunk: BatchJobChunk


def _period(label: str) -> FinancialPeriod:
    year, month = (int(part) for part in label.split("-"))
    period, _ = FinancialPeriod.objects.get_or_create(
        year=year,
        month=month,
        defaults={
            "ordinal": year * 12 + month - 1,
            "start_date": f"{year:04d}-{month:02d}-01",
            "end_date": f"{year:04d}-{month:02d}-28",
        },
    )
    return period


def make_side(*, portfolio_code: str, property_code: str, name: str, account: str, account_name: str, file: str) -> Side:
    portfolio = Portfolio.objects.create(code=portfolio_code, name=f"{name} owner")
    prop = Property.objects.create(code=property_code, name=name, portfolio=portfolio, property_type="office")
    period = _period("2024-03")
    ChartOfAccount.objects.get_or_create(account_code=account, defaults={"account_name": account_name})
    document = DocumentUpload.objects.create(
        property=prop, document_type="income_statement", period=period, file_name=file, content_hash="0" * 64
    )
    line = LineItem.objects.create(
        document=document, account_code=account, account_name=account_name, amount=Decimal("-12.50")
    )
    coordinate = PDFFieldCoordinate.objects.create(
        document=document,
        record_id=line.id,
        field_name="amount",
        page_number=1,
        x0=1,
        y0=2,
        x1=3,
        y1=4,
        matched_text=account_name,
    )
    anomaly = AnomalyDetection.objects.create(
        line_item=line,
        document=document,
        property=prop,
        document_type="income_statement",
        period=period,
        account_code=account,
        field_value=Decimal("-12.50"),
        anomaly_score=91.0,
        is_anomaly=True,
        severity="high",
        detector="ensemble",
        explanation_text=f"{account_name} jumped",
    )
    explanation = AnomalyExplanation.objects.create(
        anomaly=anomaly, summary=f"{account_name} above its band", root_cause_type="spike", explanation_method="rules"
    )
    feedback = AnomalyFeedback.objects.create(
        anomaly=anomaly,
        property=prop,
        document_type="income_statement",
        period=period,
        account_code=account,
        feedback_type=FeedbackType.CONFIRMED,
        is_anomaly=True,
        notes=f"checked {account_name}",
    )
    selection = ModelSelectionLog.objects.create(
        property=prop, document_type="income_statement", account_code=account, selected_model="HBOS"
    )
    cache_entry = AnomalyModelCache.objects.create(
        model_key=(portfolio_code.lower() * 64)[:64],
        property=prop,
        account_code=account,
        model_type="HBOS",
        model_binary=b"x",
        model_version=f"{file.split('-')[0]}-model",
    )
    job = BatchReprocessingJob.objects.create(job_name=f"{name} rerun", property_ids=[prop.id])
    chunk = BatchJobChunk.objects.create(job=job, index=0, document_ids=[document.id])
    return Side(
        portfolio, prop, document, line, coordinate, anomaly, explanation, feedback, selection, cache_entry, job, chunk
    )


def make_world() -> tuple[Side, Side]:
    """Portfolio A (ALPHA) and portfolio B (BRAVO), and a benchmark made of both."""
    a = make_side(
        portfolio_code="ALPHA",
        property_code="ALPHA01",
        name="Alpha Plaza",
        account="4010-0000",
        account_name="Base Rent",
        file="alpha-file.csv",
    )
    b = make_side(
        portfolio_code="BRAVO",
        property_code=B_PROPERTY_CODE,
        name="Bravo Secret Tower",
        account="9999-BRAVO",
        account_name="Bravo hidden ledger",
        file="bravo-file.csv",
    )
    CrossPropertyBenchmark.objects.create(
        account_code="4010-0000",
        benchmark_period=a.document.period,
        property_group="all",
        mean=1,
        median=1,
        std=0,
        p25=1,
        p75=1,
        p90=1,
        p95=1,
        property_count=2,
        property_ids=[a.property.id, b.property.id],
    )
    return a, b


def portfolio_user(username: str, *, groups: tuple[str, ...], portfolios: tuple[Portfolio, ...]) -> User:
    """A staff user in ``groups`` granted ``portfolios``."""
    roles_sync(Group, Permission)
    user = User.objects.create_user(username, password=f"pw-{username}-1", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    for portfolio in portfolios:
        PortfolioGrant.objects.create(user=user, portfolio=portfolio)
    return user


ROLE_GROUPS = {"analyst": (ANALYSTS,), "manager": (MANAGERS,)}
