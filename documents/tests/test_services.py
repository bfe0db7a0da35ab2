"""documents_import: versioning, idempotency, all-or-nothing, upserts; and the selectors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from documents.models import (
    AccountType,
    ChartOfAccount,
    DocumentUpload,
    ExtractionStatus,
    FinancialPeriod,
    LineItem,
    Property,
)
from documents.scoping import SYSTEM
from documents.selectors import document_list, documents_latest, line_item_list
from documents.services import (
    DocumentImportError,
    UploadedSource,
    account_type_for,
    documents_import,
    properties_update_details,
)
from documents.tests.factories import DocumentUploadFactory, LineItemFactory, PropertyFactory
from documents.tests.helpers import HEADER, csv_bytes, statement_rows
from kernel.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


def _import(*files: tuple[str, bytes], **kwargs):
    return documents_import(files=[UploadedSource(name, data) for name, data in files], **kwargs)


def _counts() -> tuple[int, int, int, int]:
    return (
        Property.objects.count(),
        DocumentUpload.objects.count(),
        LineItem.objects.count(),
        ChartOfAccount.objects.count(),
    )


def test_first_import_writes_documents_line_items_periods_and_accounts():
    rows = statement_rows() + statement_rows(period="2024-02") + statement_rows("P200", "cash_flow", "2024-01")
    summary = _import(("jan.csv", csv_bytes(rows)))

    assert (summary.files, summary.documents_new, summary.documents_changed, summary.documents_unchanged) == (1, 3, 0, 0)
    assert summary.line_items_written == 9
    assert sorted(summary.document_ids) == sorted(DocumentUpload.objects.values_list("id", flat=True))
    document = DocumentUpload.objects.get(property__code="P100", period__ordinal=2024 * 12, document_type="income_statement")
    assert (document.version, document.is_latest, document.extraction_status) == (1, True, ExtractionStatus.COMPLETED)
    assert (document.line_count, document.file_name, document.source_format) == (3, "jan.csv", "csv")
    assert len(document.content_hash) == 64 and len(document.file_hash) == 64
    items = list(document.line_items.order_by("row_order"))
    assert [(i.account_code, i.amount, i.is_total) for i in items] == [
        ("4010-0000", Decimal("1000.00"), False),
        ("4050-0000", Decimal("250.00"), False),
        ("4999-0000", Decimal("1250.00"), True),
    ]
    period = FinancialPeriod.objects.get(year=2024, month=2)
    assert (str(period.start_date), str(period.end_date), period.ordinal) == ("2024-02-01", "2024-02-29", 2024 * 12 + 1)
    prop = Property.objects.get(code="P100")
    assert (prop.name, prop.property_type) == ("Test Plaza", "retail")
    total = ChartOfAccount.objects.get(account_code="4999-0000")
    assert (total.account_type, total.is_total) == (AccountType.REVENUE, True)


def test_identical_content_is_a_no_op_even_reordered_or_from_another_file():
    _import(("a.csv", csv_bytes(statement_rows())))
    before = _counts()
    summary = _import(("b.csv", csv_bytes(list(reversed(statement_rows())))))
    assert (summary.documents_new, summary.documents_changed, summary.documents_unchanged) == (0, 0, 1)
    assert summary.line_items_written == 0 and summary.document_ids == []
    assert _counts() == before
    assert DocumentUpload.objects.get().file_name == "a.csv"


def test_changed_content_makes_a_new_latest_version():
    first = _import(("a.csv", csv_bytes(statement_rows())))
    summary = _import(("a.csv", csv_bytes(statement_rows(rent="1100.00"))))
    assert (summary.documents_new, summary.documents_changed) == (0, 1)
    old, new = DocumentUpload.objects.order_by("version")
    assert old.id == first.document_ids[0] and summary.changed_document_ids == [new.id]
    assert (old.version, old.is_latest, new.version, new.is_latest) == (1, False, 2, True)
    assert new.line_items.get(account_code="4010-0000").amount == Decimal("1100.00")
    assert old.line_items.get(account_code="4010-0000").amount == Decimal("1000.00")  # history kept
    # Back to the first content: that is a change against the latest, so version 3.
    _import(("a.csv", csv_bytes(statement_rows())))
    assert list(DocumentUpload.objects.filter(is_latest=True).values_list("version", flat=True)) == [3]


def test_same_document_twice_in_one_import_keeps_one_latest():
    summary = _import(("a.csv", csv_bytes(statement_rows())), ("b.csv", csv_bytes(statement_rows(rent="5.00"))))
    assert (summary.documents_new, summary.documents_changed) == (1, 1)
    latest = DocumentUpload.objects.get(is_latest=True)
    assert (latest.version, latest.file_name) == (2, "b.csv")
    assert DocumentUpload.objects.count() == 2


@pytest.mark.parametrize(
    "bad",
    [
        csv_bytes(statement_rows(), header=HEADER[:-2] + ("is_total",)),
        csv_bytes([r if i else r[:4] + ["2024-13"] + r[5:] for i, r in enumerate(statement_rows())]),
        csv_bytes([r if i else r[:7] + ["ten"] + r[8:] for i, r in enumerate(statement_rows())]),
        b"",
        "property_code\n\u00e9".encode("latin-1"),
    ],
    ids=["missing-column", "bad-period", "non-numeric", "empty", "latin-1"],
)
def test_a_bad_file_rejects_the_whole_import_and_writes_nothing(bad):
    _import(("seed.csv", csv_bytes(statement_rows(period="2023-12"))))
    before = _counts()
    good = ("good.csv", csv_bytes(statement_rows("P300")))
    with pytest.raises(DocumentImportError) as caught:
        _import(good, ("bad.csv", bad))
    assert str(caught.value).startswith("bad.csv: ")
    assert caught.value.field_errors == {"file": [caught.value.message]}
    assert _counts() == before  # not even good.csv, which came first


def test_no_files_is_an_application_error():
    with pytest.raises(ApplicationError):
        documents_import(files=[])


def test_property_name_and_type_are_taken_when_first_seen_and_blanks_filled_later():
    PropertyFactory(code="P100", name="", property_type="")
    _import(("a.csv", csv_bytes(statement_rows())))
    prop = Property.objects.get(code="P100")
    assert (prop.name, prop.property_type) == ("Test Plaza", "retail")
    renamed = [[r[0], "Other Name", "office", *r[3:]] for r in statement_rows(period="2024-05")]
    _import(("b.csv", csv_bytes(renamed)))
    prop.refresh_from_db()
    assert (prop.name, prop.property_type) == ("Test Plaza", "retail")


def test_uploaded_by_is_recorded(admin_user):
    _import(("a.csv", csv_bytes(statement_rows())), uploaded_by=admin_user)
    assert DocumentUpload.objects.get().uploaded_by == admin_user


def test_progress_reports_parse_and_write_phases():
    events = []
    _import(("a.csv", csv_bytes(statement_rows())), progress=lambda *event: events.append(event))
    assert events == [("parse", 1, 1), ("write", 1, 1)]


def test_overrides_as_a_dict():
    _import(("a.csv", csv_bytes(statement_rows())), overrides={"property_code": "OVR", "period": "2022-02"})
    document = DocumentUpload.objects.select_related("property", "period").get()
    assert (document.property.code, document.period.label) == ("OVR", "2022-02")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("1110-0000", AccountType.ASSET),
        ("2510-0000", AccountType.LIABILITY),
        ("3999-0000", AccountType.EQUITY),
        ("4010-0000", AccountType.REVENUE),
        ("5010-0000", AccountType.EXPENSE),
        ("8999-0000", AccountType.EXPENSE),
        ("9110-0000", AccountType.CASH_FLOW),
        ("CF-OPERATING", AccountType.CASH_FLOW),
        ("RR-OCCUPANCY-PCT", AccountType.METRIC),
        ("MS-INTEREST-RATE", AccountType.METRIC),
        ("0100-0000", AccountType.OTHER),
        ("misc", AccountType.OTHER),
    ],
)
def test_account_type_from_code(code, expected):
    assert account_type_for(code) == expected


def test_properties_update_details():
    PropertyFactory(code="P100", area_sqft=None, address="")
    assert properties_update_details(details=[{"property_code": "P100", "area_sqft": 12345, "address": "1 Main St"}]) == 1
    prop = Property.objects.get(code="P100")
    assert (prop.area_sqft, prop.address) == (12345, "1 Main St")


def test_document_list_filters_and_latest_by_default():
    rows = statement_rows() + statement_rows(period="2024-03") + statement_rows("P200", "cash_flow", "2024-02")
    _import(("a.csv", csv_bytes(rows)))
    _import(("b.csv", csv_bytes(statement_rows(rent="9.00"))))
    assert document_list(user=SYSTEM).count() == 3
    assert document_list(user=SYSTEM, filters={"latest": False}).count() == 4
    assert document_list(user=SYSTEM, filters={"property": "P200"}).get().document_type == "cash_flow"
    assert document_list(user=SYSTEM, filters={"document_type": "income_statement"}).count() == 2
    assert document_list(user=SYSTEM, filters={"document_type": ["cash_flow", "income_statement"]}).count() == 3
    assert [
        d.period.label for d in document_list(user=SYSTEM, filters={"period_from": "2024-02", "period_to": "2024-02"})
    ] == ["2024-02"]
    assert document_list(user=SYSTEM, filters={"extraction_status": "failed"}).count() == 0
    with pytest.raises(ApplicationError) as caught:
        document_list(user=SYSTEM, filters={"period_from": "2024-1"})
    assert "period_from" in caught.value.field_errors


def test_documents_latest_and_line_items_in_order():
    old = DocumentUploadFactory(is_latest=False, version=1)
    new = DocumentUploadFactory(property=old.property, period=old.period, version=2)
    LineItemFactory(document=new, row_order=2, account_code="4999-0000")
    LineItemFactory(document=new, row_order=1, account_code="4010-0000")
    assert list(documents_latest(property_ids=[old.property_id])) == [new]
    assert list(documents_latest(property_ids=[old.property_id], document_types=["cash_flow"])) == []
    ordinal = old.period.ordinal
    assert list(documents_latest(period_from_ordinal=ordinal, period_to_ordinal=ordinal)) == [new]
    assert list(documents_latest(period_from_ordinal=ordinal + 1)) == []
    # A failed extraction is out of scope unless asked for by name.
    DocumentUpload.objects.filter(id=new.id).update(extraction_status="failed")
    assert list(documents_latest(property_ids=[old.property_id])) == []
    assert list(documents_latest(property_ids=[old.property_id], extraction_statuses=["failed"])) == [new]
    assert [i.account_code for i in line_item_list(document_ids=[new.id])] == ["4010-0000", "4999-0000"]
