"""XLSX with the canonical columns on the first worksheet (header in row 1)."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from documents.parsing.common import (
    CanonicalRow,
    ImportErrors,
    ImportFileError,
    Overrides,
    build_row,
    check_documents,
    check_header,
)

MAX_UNPACKED_BYTES = 512 * 2**20  # a 25 MB workbook of plain rows unpacks to well under this


def _cell_text(name: str, value: object) -> str:
    """A cell as the text the shared validation expects (numbers and dates as Excel shows them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "period" and isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"  # Excel turned '2024-03' into a date
    if isinstance(value, float):
        # Binary floats such as 0.30000000000000004 are read back to the cent they were typed as.
        rounded = round(value, 2)
        if abs(rounded - value) < 1e-6:
            return f"{Decimal(repr(rounded)):f}"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return str(value)


def read_xlsx_rows(
    data: bytes, file: str, *, errors: ImportErrors, overrides: Overrides | None = None
) -> list[CanonicalRow]:
    """Like read_csv_rows: bad rows go to ``errors``; an unreadable workbook raises ImportFileError."""
    overrides = overrides or Overrides()
    overrides.validate(file)
    if not data:
        raise ImportFileError(file, None, None, "empty file")
    try:
        return _read_workbook(data, file, overrides, errors)
    except ImportFileError:
        raise
    except Exception as exc:
        # A damaged archive or XML fails in openpyxl, zipfile or the XML parser with many exception
        # types, at load or (read-only mode parses lazily) while rows are read.
        raise ImportFileError(file, None, None, f"not a readable XLSX workbook ({exc.__class__.__name__})") from None


def _read_workbook(data: bytes, file: str, overrides: Overrides, errors: ImportErrors) -> list[CanonicalRow]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    if unpacked > MAX_UNPACKED_BYTES:
        # A "zip bomb": a small upload that would unpack to gigabytes in memory.
        raise ImportFileError(
            file, None, None, f"workbook unpacks to {unpacked / 2**20:.0f} MB (more than {MAX_UNPACKED_BYTES // 2**20} MB)"
        )
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        records = sheet.iter_rows(values_only=True)
        header: tuple | None = next(records, None)
        if header is None or not any(cell not in (None, "") for cell in header):
            raise ImportFileError(file, None, None, "empty file: the first worksheet has no header row")
        # Trailing empty header cells are formatting, not columns.
        width = max(i for i, cell in enumerate(header) if cell not in (None, "")) + 1
        header = header[:width]

        def label_at(index: int, name: str) -> str:
            return f"{name} ({get_column_letter(index + 1)})"

        names = check_header(file, list(header), overrides=overrides, column_label=label_at)
        letter_of = {name: get_column_letter(i + 1) for i, name in enumerate(names)}

        def label(name: str) -> str:
            return f"{name} ({letter_of[name]})" if name in letter_of else name

        rows: list[CanonicalRow] = []
        for row_number, cells in enumerate(records, start=2):
            cells = tuple(cells[:width]) + (None,) * max(0, width - len(cells))
            if all(cell in (None, "") for cell in cells):
                continue
            values = {name: _cell_text(name, cell) for name, cell in zip(names, cells, strict=True)}
            row = build_row(file, row_number, values, overrides=overrides, errors=errors, column_label=label)
            if row is not None:
                rows.append(row)
    finally:
        workbook.close()
    if not rows and not errors:
        raise ImportFileError(file, None, None, "empty file: a header but no data rows")
    check_documents(file, rows, errors=errors, account_column=label("account_code"))
    return rows
