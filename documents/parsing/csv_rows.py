"""The canonical CSV (DESIGN.md §4): UTF-8 (a UTF-8 byte-order mark is accepted), header row first."""

from __future__ import annotations

import codecs
import csv
import io

from documents.parsing.common import (
    CanonicalRow,
    ImportErrors,
    ImportFileError,
    Overrides,
    build_row,
    check_documents,
    check_header,
)

# Byte-order marks of encodings we refuse, longest first (UTF-32 LE starts like UTF-16 LE).
_FOREIGN_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE"),
)


def decode_utf8(data: bytes, file: str) -> str:
    """UTF-8 text without its BOM; a clear ImportFileError for any other encoding."""
    for bom, name in _FOREIGN_BOMS:
        if data.startswith(bom):
            raise ImportFileError(file, None, None, f"not UTF-8: starts with a {name} byte-order mark; save it as UTF-8")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(
            file,
            line,
            None,
            f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
        ) from None


def read_csv_rows(data: bytes, file: str, *, errors: ImportErrors, overrides: Overrides | None = None) -> list[CanonicalRow]:
    """Parse and validate a whole CSV file; rows are numbered as in a spreadsheet (header = row 1).

    A bad row is added to ``errors`` and reading goes on; a file that cannot be read at all (encoding,
    header, malformed quoting) raises ImportFileError."""
    overrides = overrides or Overrides()
    overrides.validate(file)
    text = decode_utf8(data, file)
    if not text.strip():
        raise ImportFileError(file, None, None, "empty file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        names = check_header(file, header, overrides=overrides)
        rows: list[CanonicalRow] = []
        for cells in reader:
            row_number = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if len(cells) != len(names):
                errors.add(
                    ImportFileError(
                        file,
                        row_number,
                        None,
                        f"expected {len(names)} fields, got {len(cells)} (quote amounts that contain commas)",
                    )
                )
                continue
            row = build_row(file, row_number, dict(zip(names, cells, strict=True)), overrides=overrides, errors=errors)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise ImportFileError(file, reader.line_num, None, f"malformed CSV: {exc}") from None
    if not rows and not errors:
        raise ImportFileError(file, None, None, "empty file: a header but no data rows")
    check_documents(file, rows, errors=errors)
    return rows
