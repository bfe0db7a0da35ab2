"""The Django-free readers: every bad input is rejected with one line naming file, row and column."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from documents.models import DocumentType, PropertyType
from documents.parsing import (
    DOCUMENT_TYPES,
    PROPERTY_TYPES,
    ImportFileError,
    Overrides,
    parse_amount,
    read_rows,
)
from documents.tests.helpers import HEADER, csv_bytes, statement_rows, xlsx_bytes


def test_parsing_lists_agree_with_the_models():
    assert set(DOCUMENT_TYPES) == set(DocumentType.values)
    assert set(PROPERTY_TYPES) == set(PropertyType.values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-1234.50", Decimal("-1234.50")),
        ("(1234.50)", Decimal("-1234.50")),
        ("1,234.50", Decimal("1234.50")),
        ("(1,234,567.5)", Decimal("-1234567.50")),
        (" 42 ", Decimal("42.00")),
        (".5", Decimal("0.50")),
        ("0", Decimal("0.00")),
    ],
)
def test_amount_formats(text, expected):
    assert parse_amount(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "12,34.00", "1.234", "NaN", "Infinity", "-(5)", "1e5", "--1", "1 000"])
def test_bad_amounts_are_refused(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def test_csv_reads_rows_with_utf8_bom_and_quoted_thousands():
    rows = statement_rows(rent="1,234.50")
    data = csv_bytes(rows, bom=True)
    parsed = read_rows(data, "good.csv")
    assert [r.account_code for r in parsed] == ["4010-0000", "4050-0000", "4999-0000"]
    assert parsed[0].amount == Decimal("1234.50")
    assert parsed[2].is_total is True
    assert parsed[0].row == 2  # the header is row 1
    assert b'"1,234.50"' in data  # the csv writer quoted it


def _error(data: bytes, name: str = "bad.csv", **kwargs) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        read_rows(data, name, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(name + ": ")
    return caught.value


def _with(row_index: int, column: str, value: str) -> list[list[str]]:
    rows = statement_rows()
    rows[row_index][HEADER.index(column)] = value
    return rows


@pytest.mark.parametrize(
    ("data", "row", "column", "fragment"),
    [
        (csv_bytes(statement_rows(), header=HEADER[:-2] + ("is_total",)), 1, "amount", "missing required column"),
        (csv_bytes([r + ["x"] for r in statement_rows()], header=HEADER + ("colour",)), 1, "colour", "unknown column"),
        (csv_bytes(_with(1, "document_type", "p_and_l")), 3, "document_type", "unknown document type 'p_and_l'"),
        (csv_bytes(_with(0, "period", "2024-13")), 2, "period", "bad period '2024-13'"),
        (csv_bytes(_with(0, "period", "Jan 2024")), 2, "period", "expected YYYY-MM"),
        (csv_bytes(_with(2, "amount", "12abc")), 4, "amount", "not a number"),
        (csv_bytes(_with(1, "account_code", "4010-0000")), 3, "account_code", "appears twice"),
        (csv_bytes(_with(0, "property_code", "bad code!")), 2, "property_code", "bad property code"),
        (csv_bytes(_with(0, "is_total", "maybe")), 2, "is_total", "expected true or false"),
        (csv_bytes(_with(0, "property_type", "castle")), 2, "property_type", "unknown property type"),
        (csv_bytes(_with(0, "account_name", " ")), 2, "account_name", "empty account name"),
    ],
    ids=[
        "missing-column",
        "unknown-column",
        "document-type",
        "period-month",
        "period-format",
        "amount",
        "duplicate-account",
        "property-code",
        "is-total",
        "property-type",
        "empty-name",
    ],
)
def test_csv_bad_input_names_row_and_column(data, row, column, fragment):
    error = _error(data)
    assert (error.row, error.column) == (row, column)
    assert fragment in error.message
    assert f"row {row}, column {column}: " in str(error)


def test_duplicate_account_message_points_at_both_rows():
    error = _error(csv_bytes(_with(1, "account_code", "4010-0000")))
    assert str(error) == (
        "bad.csv: row 3, column account_code: account 4010-0000 appears twice in document "
        "P100 income_statement 2024-01 (first at row 2)"
    )


def test_same_account_in_two_documents_is_fine():
    rows = statement_rows() + statement_rows(period="2024-02")
    assert len(read_rows(csv_bytes(rows), "two.csv")) == 6


@pytest.mark.parametrize("data", [b"", b"   \n", b"\xef\xbb\xbf"])
def test_empty_csv(data):
    assert "empty file" in _error(data).message


def test_header_only_csv_is_empty():
    assert "no data rows" in _error(csv_bytes([])).message


def test_latin1_csv_is_refused_with_byte_and_offset():
    data = csv_bytes(statement_rows()).replace(b"Test Plaza", "Caf\u00e9 Plaza".encode("latin-1"), 1)
    offset = data.index(b"\xe9")
    error = _error(data)
    assert f"not UTF-8 (byte 0xe9 at offset {offset})" in str(error)
    assert error.row == 2


@pytest.mark.parametrize(("encoding", "name"), [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_utf16_and_utf32_byte_order_marks_are_refused(encoding, name):
    data = csv_bytes(statement_rows()).decode().encode(encoding)
    assert f"{name}" in str(_error(data))


def test_wrong_field_count_names_the_row():
    data = csv_bytes(statement_rows()) + b"P100,Test,retail,income_statement,2024-01,4020-0000,x,1,234.00,false\n"
    error = _error(data)
    assert error.row == 5 and "expected 9 fields, got 10" in error.message


def test_unsupported_extension():
    assert "unsupported file type '.txt'" in str(_error(b"x", "notes.txt"))


def test_overrides_fill_missing_columns_and_win_over_values():
    header = tuple(h for h in HEADER if h not in ("property_code", "period"))
    rows = [[c for h, c in zip(HEADER, row, strict=True) if h in header] for row in statement_rows()]
    parsed = read_rows(csv_bytes(rows, header=header), "o.csv", overrides=Overrides(property_code="X1", period="2023-05"))
    assert {(r.property_code, r.period) for r in parsed} == {("X1", "2023-05")}
    parsed = read_rows(csv_bytes(statement_rows()), "o.csv", overrides=Overrides(document_type="cash_flow"))
    assert {r.document_type for r in parsed} == {"cash_flow"}


def test_bad_override_is_refused():
    error = _error(csv_bytes(statement_rows()), overrides=Overrides(period="2024-00"))
    assert error.column == "period"


def test_xlsx_reads_numbers_dates_and_floats():
    rows = statement_rows()
    rows[0][HEADER.index("amount")] = 1000.1 + 0.2  # 1000.3000000000001 as a binary float
    rows[1][HEADER.index("period")] = datetime(2024, 1, 1)  # Excel turned it into a date
    rows[2][HEADER.index("amount")] = 1250.3
    rows[2][HEADER.index("is_total")] = True
    parsed = read_rows(xlsx_bytes(rows), "book.xlsx")
    assert [r.amount for r in parsed] == [Decimal("1000.30"), Decimal("250.00"), Decimal("1250.30")]
    assert {r.period for r in parsed} == {"2024-01"}
    assert parsed[2].is_total


def test_xlsx_errors_name_the_column_letter():
    rows = statement_rows()
    rows[1][HEADER.index("amount")] = "lots"
    error = _error(xlsx_bytes(rows), "book.xlsx")
    assert str(error).startswith("book.xlsx: row 3, column amount (H): not a number")


def test_xlsx_missing_column_and_empty_sheet_and_garbage():
    header = HEADER[:5] + HEADER[6:]
    rows = [row[:5] + row[6:] for row in statement_rows()]
    assert _error(xlsx_bytes(rows, header=header), "b.xlsx").column == "account_code"
    assert "empty file" in _error(xlsx_bytes([], header=None), "e.xlsx").message
    assert "not a readable XLSX" in _error(b"PK\x03\x04 not really", "g.xlsx").message
    assert "empty file" in _error(b"", "z.xlsx").message
