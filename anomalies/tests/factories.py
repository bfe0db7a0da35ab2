"""Factories for the anomalies tests, and a bulk loader of canonical rows (DESIGN §4).

``load_rows`` writes properties, periods, documents and line items straight from canonical row
dicts (the demo generator's ``Portfolio.rows``) in a few bulk inserts, so that tests and the
timing script can build a portfolio of thousands of documents in seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from documents.models import (
    DocumentUpload,
    ExtractionStatus,
    FinancialPeriod,
    LineItem,
    Property,
    PropertyType,
)
from documents.services import financial_periods_upsert
from kernel.periods import label_from_ordinal, ordinal_from_label
from reims.testing import grant_default_portfolio


def period_for(label: str) -> FinancialPeriod:
    return financial_periods_upsert([label])[label]


def month_label(start: str, offset: int) -> str:
    return label_from_ordinal(ordinal_from_label(start) + offset)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"analyst{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @factory.post_generation
    def feedback_permission(self, create: bool, extracted: bool | None, **kwargs) -> None:
        if create and extracted:
            self.user_permissions.add(Permission.objects.get(codename="add_anomalyfeedback"))

    @factory.post_generation
    def default_portfolio(self, create: bool, extracted: bool | None, **kwargs) -> None:
        if create and extracted is not False:
            grant_default_portfolio(self)


class PropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Property
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"T{n:03d}")
    name = factory.LazyAttribute(lambda p: f"Test property {p.code}")
    property_type = PropertyType.OFFICE


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DocumentUpload

    property = factory.SubFactory(PropertyFactory)
    document_type = "income_statement"
    period = factory.LazyFunction(lambda: period_for("2024-01"))
    version = 1
    is_latest = True
    content_hash = factory.Sequence(lambda n: hashlib.sha256(str(n).encode()).hexdigest())
    extraction_status = ExtractionStatus.COMPLETED


class LineItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LineItem

    document = factory.SubFactory(DocumentFactory)
    account_code = factory.Sequence(lambda n: f"5{n % 1000:03d}-0000")
    account_name = factory.LazyAttribute(lambda li: f"Account {li.account_code}")
    amount = Decimal("100.00")
    row_order = factory.Sequence(lambda n: n)


def load_rows(rows: Iterable[Mapping]) -> dict[tuple[str, str, str], int]:
    """Bulk-load canonical rows; returns {(property_code, document_type, period): document id}."""
    rows = list(rows)
    properties: dict[str, Property] = {}
    for row in rows:
        code = row["property_code"]
        if code not in properties:
            properties[code] = Property.objects.get_or_create(
                code=code,
                defaults={"name": row.get("property_name") or code, "property_type": row.get("property_type") or ""},
            )[0]
    periods = {label: period_for(label) for label in sorted({r["period"] for r in rows})}
    grouped: dict[tuple[str, str, str], list[Mapping]] = {}
    for row in rows:
        grouped.setdefault((row["property_code"], row["document_type"], row["period"]), []).append(row)
    documents = [
        DocumentUpload(
            property=properties[code],
            document_type=doc_type,
            period=periods[label],
            version=1,
            is_latest=True,
            content_hash=hashlib.sha256(f"{code}|{doc_type}|{label}".encode()).hexdigest(),
            extraction_status=ExtractionStatus.COMPLETED,
            line_count=len(lines),
        )
        for (code, doc_type, label), lines in grouped.items()
    ]
    DocumentUpload.objects.bulk_create(documents, batch_size=2000)
    ids = {}
    line_items = []
    for document, (key, lines) in zip(documents, grouped.items(), strict=True):
        ids[key] = document.id
        for position, row in enumerate(lines):
            line_items.append(
                LineItem(
                    document_id=document.id,
                    account_code=row["account_code"],
                    account_name=row.get("account_name") or row["account_code"],
                    amount=Decimal(str(round(float(row["amount"]), 2))),
                    is_total=bool(row.get("is_total", False)),
                    row_order=position,
                )
            )
    LineItem.objects.bulk_create(line_items, batch_size=5000)
    return ids


def series_rows(
    *,
    property_code: str,
    amounts: Mapping[str, Iterable[float]],
    start: str = "2022-01",
    document_type: str = "income_statement",
    property_type: str = "office",
) -> list[dict]:
    """Canonical rows for a few accounts of one document type, one amount per month from ``start``."""
    out = []
    for account, values in amounts.items():
        for offset, amount in enumerate(values):
            if amount is None:
                continue
            out.append(
                {
                    "property_code": property_code,
                    "property_type": property_type,
                    "document_type": document_type,
                    "period": month_label(start, offset),
                    "account_code": account,
                    "account_name": f"Account {account}",
                    "amount": amount,
                    "is_total": False,
                }
            )
    out.sort(key=lambda r: (r["period"], r["account_code"]))
    return out
