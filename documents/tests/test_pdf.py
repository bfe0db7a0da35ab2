"""PDF round trip on files our own renderer makes: values, totals, coordinates, header overrides."""

from __future__ import annotations

import io
from decimal import Decimal

import pdfplumber
import pytest
from reportlab.pdfgen.canvas import Canvas

from documents.demo.generator import generate_portfolio
from documents.demo.pdf_render import render_document_pdf
from documents.models import DocumentUpload, LineItem, PDFFieldCoordinate
from documents.parsing import ImportFileError, Overrides, read_rows
from documents.services import DocumentImportError, UploadedSource, documents_import


@pytest.fixture(scope="module")
def portfolio():
    return generate_portfolio(properties=1, months=2, seed=11)


def _pdf(rows) -> bytes:
    buffer = io.BytesIO()
    render_document_pdf(rows, buffer)
    return buffer.getvalue()


def test_every_document_type_round_trips_with_totals(portfolio):
    for document_type in ("income_statement", "balance_sheet", "cash_flow", "rent_roll", "mortgage_statement"):
        rows = portfolio.document_rows("P001", document_type, "2021-02")
        parsed = read_rows(_pdf(rows), f"{document_type}.pdf")
        assert [(r.account_code, r.account_name, r.amount, r.is_total) for r in parsed] == [
            (r["account_code"], r["account_name"], Decimal(f"{r['amount']:.2f}"), r["is_total"]) for r in rows
        ]
        first = parsed[0]
        assert (first.property_code, first.document_type, first.period) == ("P001", document_type, "2021-02")
        assert first.property_name == rows[0]["property_name"] and first.property_type == rows[0]["property_type"]


def test_coordinates_match_the_words_on_the_page(portfolio):
    rows = portfolio.document_rows("P001", "income_statement", "2021-02")
    data = _pdf(rows)
    parsed = read_rows(data, "is.pdf")
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        words = pdf.pages[0].extract_words()
    for row in parsed:
        amount_box = row.fields["amount"]
        word = next(w for w in words if w["text"] == amount_box.text and abs(w["top"] - amount_box.y0) < 0.1)
        assert (amount_box.x0, amount_box.x1) == (round(word["x0"], 2), round(word["x1"], 2))
        assert row.box.page == 1 and row.box.x0 <= amount_box.x0 < amount_box.x1 <= row.box.x1
        assert row.box.y0 < row.box.y1  # top-left origin: y grows downwards
        assert row.fields["account_code"].text == row.account_code
        assert row.confidence == 0.99
    # Rows go down the page in order.
    tops = [row.box.y0 for row in parsed]
    assert tops == sorted(tops)


def test_long_documents_continue_on_more_pages():
    rows = [
        {
            "property_code": "L1",
            "property_name": "Long",
            "property_type": "office",
            "document_type": "income_statement",
            "period": "2024-01",
            "account_code": f"{5000 + i:04d}-0000",
            "account_name": f"Expense {i}",
            "amount": -float(i) - 0.25,
            "is_total": False,
        }
        for i in range(90)
    ]
    parsed = read_rows(_pdf(rows), "long.pdf")
    assert len(parsed) == 90 and [r.box.page for r in parsed] == sorted(r.box.page for r in parsed)
    assert parsed[-1].box.page == 3  # about 45 lines a page, the header repeated on each
    assert parsed[3].amount == Decimal("-3.25")  # rendered as (3.25)


def test_import_writes_line_item_coordinates_and_pdf_field_coordinates(db, portfolio):
    rows = portfolio.document_rows("P001", "rent_roll", "2021-01")
    summary = documents_import(files=[UploadedSource("rr.pdf", _pdf(rows))])
    document = DocumentUpload.objects.get(id=summary.document_ids[0])
    assert document.source_format == "pdf" and document.line_count == len(rows)
    item = LineItem.objects.get(document=document, account_code="RR-OCCUPANCY-PCT")
    assert item.page_number == 1 and item.extraction_confidence == 0.99
    assert None not in (item.x0, item.y0, item.x1, item.y1)
    coordinates = {c.field_name: c for c in PDFFieldCoordinate.objects.filter(record_id=item.id)}
    assert set(coordinates) == {"account_code", "account_name", "amount"}
    amount = coordinates["amount"]
    assert (amount.table_name, amount.extraction_method, amount.document_id) == ("line_items", "pdfplumber", document.id)
    assert Decimal(amount.matched_text.replace(",", "")) == item.amount
    assert amount.confidence == 0.99 and amount.x1 == item.x1
    assert PDFFieldCoordinate.objects.filter(document=document).count() == 3 * len(rows)


def _text_pdf(lines: list[str], *, bold: bool = False) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    y = 800
    for line in lines:
        canvas.setFont("Helvetica-Bold" if bold and "Total" in line else "Helvetica", 10)
        x = 50
        for part in line.split("|"):
            canvas.drawString(x, y, part)
            x += 150
        y -= 14
    canvas.save()
    return buffer.getvalue()


def test_missing_header_is_filled_by_overrides_and_refused_without_them():
    data = _text_pdf(["4010-0000|Base Rent|1,000.00", "4999-0000|Total Revenue|1,000.00"])
    with pytest.raises(ImportFileError) as caught:
        read_rows(data, "nohead.pdf")
    assert str(caught.value) == "nohead.pdf: column property_code: no 'Property:' header line and no --property given"
    parsed = read_rows(data, "nohead.pdf", overrides=Overrides("P9", "income_statement", "2024-04"))
    assert [(r.property_code, r.document_type, r.period) for r in parsed] == [("P9", "income_statement", "2024-04")] * 2
    # No bold anywhere: the name marks the total.
    assert [r.is_total for r in parsed] == [False, True]


def test_pdf_bad_inputs_name_page_line_and_column():
    header = ["Property: P1", "Document: income_statement", "Period: 2024-01"]
    with pytest.raises(ImportFileError) as caught:
        read_rows(_text_pdf([*header, "4010-0000|Base Rent|12x.00"]), "a.pdf")
    assert str(caught.value) == "a.pdf: page 1, line 4, column amount: not a number: '12x.00'"
    with pytest.raises(ImportFileError) as caught:
        read_rows(_text_pdf(["Property: P1", "Document: p_and_l", "Period: 2024-01", "4010-0000|Rent|1.00"]), "b.pdf")
    assert str(caught.value).startswith("b.pdf: page 1, line 2, column document_type: unknown document type 'p_and_l'")
    with pytest.raises(ImportFileError) as caught:
        read_rows(_text_pdf(["Property: P1", "Document: cash_flow", "Period: 2024-13", "4010-0000|Rent|1.00"]), "c.pdf")
    assert str(caught.value).startswith("c.pdf: page 1, line 3, column period: bad period '2024-13'")
    lines = [*header, "4010-0000|Rent|1.00", "4010-0000|Rent again|2.00"]
    with pytest.raises(ImportFileError) as caught:
        read_rows(_text_pdf(lines), "d.pdf")
    assert "d.pdf: page 1, line 5, column account_code: account 4010-0000 appears twice" in str(caught.value)


def test_pdf_without_text_layer_is_refused_and_nothing_written(db):
    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    canvas.rect(50, 50, 300, 300, fill=1)  # a "scan": shapes, no text
    canvas.save()
    with pytest.raises(DocumentImportError) as caught:
        documents_import(files=[UploadedSource("scan.pdf", buffer.getvalue())])
    assert str(caught.value) == "scan.pdf: PDF has no text layer (a scanned image?); only text PDFs can be imported"
    assert DocumentUpload.objects.count() == 0


def test_not_a_pdf_and_empty_pdf():
    with pytest.raises(ImportFileError, match="not a readable PDF"):
        read_rows(b"%PDF-1.4 garbage", "x.pdf")
    with pytest.raises(ImportFileError, match="empty file"):
        read_rows(b"", "y.pdf")
    with pytest.raises(ImportFileError, match="no line items found"):
        read_rows(_text_pdf(["Property: P1", "Just a letter"]), "z.pdf")
