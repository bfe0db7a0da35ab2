"""Property-based tests (hypothesis) of the import parsers.

* Whatever the bytes, a reader returns validated rows or raises ImportFileError: never another
  exception (a crash would be a 500 on the upload API).
* Valid generated rows survive a round trip through CSV and XLSX, amounts written in each of the
  documented formats: -1234.50, (1234.50), "1,234.50".
* Periods and property codes are accepted exactly when they have the documented shape.

Example counts are bounded so that the whole module runs in a few seconds.
"""

from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from documents.parsing import (
    DOCUMENT_TYPES,
    PROPERTY_TYPES,
    CanonicalRow,
    ImportFileError,
    Overrides,
    parse_amount,
    parse_period,
    read_rows,
)
from documents.parsing.common import AMOUNT_LIMIT, MAX_ACCOUNT_NAME, PROPERTY_CODE_RE, ImportErrors, build_row
from documents.tests.helpers import HEADER, csv_bytes, xlsx_bytes

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- Strategies -----------------------------------------------------------------------------------
property_codes = st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z")
periods = st.tuples(st.integers(1900, 9999), st.integers(1, 12))
account_codes = st.from_regex(r"\A[0-9]{4}-[0-9]{4}\Z") | st.from_regex(r"\A(RR|MS|CF)-[A-Z]{2,8}(-[A-Z]{2,6})?\Z")
# Printable names without surrounding blanks (the parsers strip cells) and without characters a
# spreadsheet cannot hold (XLSX forbids most control characters).
names = (
    st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=60)
    .map(str.strip)
    .filter(lambda name: name and not name.startswith("="))  # '=...' is a formula in a spreadsheet
)
cents = st.integers(min_value=-(10**15) * 100 + 1, max_value=10**15 * 100 - 1)  # within DECIMAL(18, 2)
amounts = cents.map(lambda c: Decimal(c) / 100)


def plain(amount: Decimal) -> str:
    return f"{amount:.2f}"


def accounting(amount: Decimal) -> str:
    return f"({abs(amount):.2f})" if amount < 0 else f"{amount:.2f}"


def grouped(amount: Decimal) -> str:
    return f"{amount:,.2f}"


AMOUNT_FORMATS = (plain, accounting, grouped)


@st.composite
def documents(draw) -> list[dict]:
    """Rows of one to three documents, each with unique account codes."""
    rows: list[dict] = []
    keys = draw(
        st.lists(st.tuples(property_codes, st.sampled_from(DOCUMENT_TYPES), periods), min_size=1, max_size=3, unique=True)
    )
    for code, document_type, (year, month) in keys:
        name = draw(names)
        kind = draw(st.sampled_from(("", *PROPERTY_TYPES)))
        accounts = draw(st.lists(account_codes, min_size=1, max_size=6, unique=True))
        for account in accounts:
            rows.append(
                {
                    "property_code": code,
                    "property_name": name,
                    "property_type": kind,
                    "document_type": document_type,
                    "period": f"{year:04d}-{month:02d}",
                    "account_code": account,
                    "account_name": draw(names),
                    "amount": draw(amounts),
                    "is_total": draw(st.booleans()),
                }
            )
    return rows


def as_cells(row: dict, amount_format) -> list[str]:
    values = {**row, "amount": amount_format(row["amount"]), "is_total": "true" if row["is_total"] else "false"}
    return [values[name] for name in HEADER]


def as_dict(row: CanonicalRow) -> dict:
    return {
        "property_code": row.property_code,
        "property_name": row.property_name,
        "property_type": row.property_type,
        "document_type": row.document_type,
        "period": row.period,
        "account_code": row.account_code,
        "account_name": row.account_name,
        "amount": row.amount,
        "is_total": row.is_total,
    }


def read_or_refuse(data: bytes, name: str) -> list[CanonicalRow] | None:
    """The parse result, None for an ImportFileError; any other exception fails the test."""
    try:
        rows = read_rows(data, name)
    except ImportFileError as exc:
        message = str(exc)
        assert message.startswith(name) and "\n" not in message  # one line naming the file
        return None
    assert rows and all(isinstance(row, CanonicalRow) for row in rows)
    return rows


# --- Nothing crashes -------------------------------------------------------------------------------
@FAST
@given(data=st.binary(max_size=2000), name=st.sampled_from(["f.csv", "f.xlsx", "f.pdf", "f.CSV", "f.txt", "f"]))
@example(data=b"\xff\xfe\x00\x00", name="f.csv")
@example(data=b"PK\x03\x04", name="f.xlsx")
@example(data=b"%PDF-1.4\n%%EOF", name="f.pdf")
def test_arbitrary_bytes_are_read_or_refused_with_import_file_error(data, name):
    read_or_refuse(data, name)


@FAST
@given(text=st.text(max_size=1000))
@example(text='property_code,document_type\n"unterminated')
@example(text="\x00,\x00\n")
def test_arbitrary_text_as_csv_is_read_or_refused(text):
    read_or_refuse(text.encode("utf-8", "surrogatepass"), "f.csv")


# Text a spreadsheet cell can hold (XLSX forbids most control characters).
cells = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30) | st.sampled_from(
    ["", "(1.00)", "1,234.50", "-0", "true", "2024-13", "P1", "rent_roll"]
)


@FAST
@given(
    header=st.permutations(HEADER).flatmap(lambda names: st.integers(1, len(names)).map(lambda n: list(names[:n]))),
    body=st.lists(st.lists(cells, min_size=0, max_size=10), max_size=8),
)
def test_csv_with_canonical_header_and_arbitrary_cells_is_read_or_refused(header, body):
    read_or_refuse(csv_bytes(body, header=header), "f.csv")


WORKBOOK_MEMBERS = ["[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml", "_rels/.rels"]


@SLOW
@given(
    members=st.dictionaries(
        st.sampled_from(WORKBOOK_MEMBERS),
        st.binary(max_size=300) | st.just(b"<?xml version='1.0'?><x/>"),
        max_size=5,
    )
)
def test_zip_archives_that_are_not_workbooks_are_refused(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    assert read_or_refuse(buffer.getvalue(), "f.xlsx") is None


@SLOW
@given(body=st.lists(st.lists(st.none() | st.integers() | st.floats() | st.booleans() | cells, max_size=10), max_size=6))
def test_xlsx_with_arbitrary_cells_is_read_or_refused(body):
    read_or_refuse(xlsx_bytes(body), "f.xlsx")


# --- Round trips -----------------------------------------------------------------------------------
@FAST
@given(rows=documents(), amount_format=st.sampled_from(AMOUNT_FORMATS))
def test_valid_rows_round_trip_through_csv(rows, amount_format):
    parsed = read_rows(csv_bytes([as_cells(row, amount_format) for row in rows]), "f.csv")
    assert [as_dict(row) for row in parsed] == rows
    assert [row.row for row in parsed] == list(range(2, len(rows) + 2))  # spreadsheet row numbers


@SLOW
@given(rows=documents(), amount_format=st.sampled_from(AMOUNT_FORMATS))
def test_valid_rows_round_trip_through_xlsx(rows, amount_format):
    parsed = read_rows(xlsx_bytes([as_cells(row, amount_format) for row in rows]), "f.xlsx")
    assert [as_dict(row) for row in parsed] == rows


@SLOW
@given(rows=documents(), amounts=st.lists(st.integers(-(10**15) + 1, 10**15 - 1).map(lambda c: Decimal(c) / 100)))
def test_numeric_xlsx_cells_round_trip(rows, amounts):
    # Excel users type amounts as numbers, not text: floats must come back as the cents typed.
    # A number cell holds 15 significant digits (as in Excel), hence amounts below 10^13.
    typed = [amounts[index] if index < len(amounts) else Decimal("0.10") for index in range(len(rows))]
    cells = [[*as_cells(row, plain)[:7], float(amount), row["is_total"]] for row, amount in zip(rows, typed, strict=True)]
    parsed = read_rows(xlsx_bytes(cells), "f.xlsx")
    assert [row.amount for row in parsed] == typed


@FAST
@given(amount=amounts, amount_format=st.sampled_from(AMOUNT_FORMATS), padding=st.sampled_from(["", " ", "  "]))
@example(amount=Decimal("-1234.50"), amount_format=plain, padding="")
@example(amount=Decimal("-1234.50"), amount_format=accounting, padding="")
@example(amount=Decimal("1234.50"), amount_format=grouped, padding="")
def test_amount_formats_parse_to_the_same_decimal(amount, amount_format, padding):
    assert parse_amount(f"{padding}{amount_format(amount)}{padding}") == amount


@FAST
@given(text=st.text(max_size=25))
@example(text="1,23.00")
@example(text="(-1.00)")
@example(text="1.234")
@example(text="1e5")
@example(text="NaN")
@example(text="١٢٣")  # Arabic-Indic digits are digits to Python, not to a statement
def test_parse_amount_returns_a_bounded_two_place_decimal_or_value_error(text):
    try:
        value = parse_amount(text)
    except ValueError:
        return
    assert isinstance(value, Decimal) and value.is_finite()
    assert value == value.quantize(Decimal("0.01")) and abs(value) < AMOUNT_LIMIT
    assert re.fullmatch(r"\s*\(?\s*-?[0-9,]*\.?[0-9]{0,2}\s*\)?\s*", text)  # only the documented characters


@FAST
@given(amount=st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=Decimal("1e16")))
def test_amounts_beyond_the_column_are_refused(amount):
    with pytest.raises(ValueError, match="too large"):
        parse_amount(f"{amount:.2f}")


# --- Periods ------------------------------------------------------------------------------------------
@FAST
@given(period=periods)
def test_valid_periods_parse(period):
    year, month = period
    assert parse_period(f"{year:04d}-{month:02d}") == (year, month)


@FAST
@given(text=st.text(max_size=12) | st.from_regex(r"\A[0-9]{4}-[0-9]{2}\Z"))
@example(text="2024-00")
@example(text="2024-13")
@example(text="1899-12")
@example(text="2024-1")
@example(text="２０２４-０１")
def test_period_is_accepted_exactly_when_well_formed(text):
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text.strip())
    valid = bool(match) and 1 <= int(match.group(2)) <= 12 and int(match.group(1)) >= 1900
    try:
        year, month = parse_period(text)
    except ValueError as exc:
        assert not valid, text
        assert "period" in str(exc)
    else:
        assert valid, text
        assert (year, month) == (int(match.group(1)), int(match.group(2)))


# --- Property codes -----------------------------------------------------------------------------------
def _row(property_code: str) -> dict[str, str]:
    return {
        "property_code": property_code,
        "document_type": "income_statement",
        "period": "2024-01",
        "account_code": "4010-0000",
        "account_name": "Base Rent",
        "amount": "1.00",
    }


@FAST
@given(code=property_codes)
def test_documented_property_codes_are_accepted(code):
    assert build_row("f.csv", 2, _row(code), overrides=Overrides(), errors=ImportErrors()).property_code == code


@FAST
@given(code=st.text(max_size=25))
@example(code="P1' OR '1'='1")
@example(code="P" * 21)
@example(code="P１")
@example(code="P100\n")
def test_property_code_is_accepted_exactly_when_it_matches_the_documented_pattern(code):
    documented = re.fullmatch(r"[A-Za-z0-9_-]{1,20}", code.strip(), flags=re.ASCII) is not None
    errors = ImportErrors()
    row = build_row("f.csv", 2, _row(code), overrides=Overrides(), errors=errors)
    if row is None:
        assert not documented, code
        [error] = errors.listed
        assert error.column == "property_code" and error.row == 2
    else:
        assert documented and not errors, code
        assert PROPERTY_CODE_RE.match(row.property_code)


@FAST
@given(name=st.text(min_size=MAX_ACCOUNT_NAME + 1, max_size=MAX_ACCOUNT_NAME + 50))
def test_overlong_account_names_are_refused(name):
    assume(len(name.strip()) > MAX_ACCOUNT_NAME)
    errors = ImportErrors()
    assert build_row("f.csv", 2, {**_row("P1"), "account_name": name}, overrides=Overrides(), errors=errors) is None
    expected = f"f.csv: row 2, column account_name: longer than {MAX_ACCOUNT_NAME} characters"
    assert [str(e) for e in errors.listed] == [expected]
