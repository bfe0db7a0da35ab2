"""Small builders of import files for the tests."""

from __future__ import annotations

import csv
import io

from documents.parsing.common import CANONICAL_COLUMNS

HEADER = CANONICAL_COLUMNS


def statement_rows(
    property_code: str = "P100",
    document_type: str = "income_statement",
    period: str = "2024-01",
    *,
    rent: str = "1000.00",
) -> list[list[str]]:
    """A small income statement whose total foots."""
    total = f"{float(rent.replace(',', '')) + 250:.2f}"
    return [
        [property_code, "Test Plaza", "retail", document_type, period, "4010-0000", "Base Rent", rent, "false"],
        [property_code, "Test Plaza", "retail", document_type, period, "4050-0000", "Other Income", "250.00", "false"],
        [property_code, "Test Plaza", "retail", document_type, period, "4999-0000", "Total Revenue", total, "true"],
    ]


def csv_bytes(rows: list[list[str]], *, header=HEADER, bom: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def xlsx_bytes(rows: list[list[object]], *, header=HEADER) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    if header is not None:
        sheet.append(list(header))
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
