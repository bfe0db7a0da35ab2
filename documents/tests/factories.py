"""factory-boy factories of the documents substrate (also usable by other apps' tests)."""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal

import factory

from documents.models import DocumentUpload, ExtractionStatus, FinancialPeriod, LineItem, Property


class PropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Property
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"F{n:04d}")
    name = factory.LazyAttribute(lambda o: f"Property {o.code}")
    property_type = "office"
    area_sqft = 100_000


class FinancialPeriodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FinancialPeriod
        django_get_or_create = ("ordinal",)

    year = 2024
    month = factory.Sequence(lambda n: n % 12 + 1)
    ordinal = factory.LazyAttribute(lambda o: o.year * 12 + o.month - 1)
    start_date = factory.LazyAttribute(lambda o: date(o.year, o.month, 1))
    end_date = factory.LazyAttribute(lambda o: date(o.year, o.month, calendar.monthrange(o.year, o.month)[1]))


class DocumentUploadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DocumentUpload

    property = factory.SubFactory(PropertyFactory)
    document_type = "income_statement"
    period = factory.SubFactory(FinancialPeriodFactory)
    version = 1
    is_latest = True
    content_hash = factory.Sequence(lambda n: f"{n:064x}")
    extraction_status = ExtractionStatus.COMPLETED


class LineItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LineItem

    document = factory.SubFactory(DocumentUploadFactory)
    account_code = factory.Sequence(lambda n: f"{4000 + n % 5000:04d}-0000")
    account_name = "Account"
    amount = Decimal("1000.00")
    row_order = factory.Sequence(lambda n: n)
