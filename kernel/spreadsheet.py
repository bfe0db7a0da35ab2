"""Cells bound for a spreadsheet (CSV/XLSX exports): statement text must never run as a formula.

OWASP "CSV injection": Excel, LibreOffice and Google Sheets read a text cell that begins with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula. Such text gets a leading
single quote, which every spreadsheet shows as text. Numbers are not text: they pass unchanged,
negative amounts included, so they stay numbers in the sheet.
"""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """``value`` safe to write into a spreadsheet cell: text neutralised, numbers untouched."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_row(values: list[object]) -> list[object]:
    return [spreadsheet_cell(value) for value in values]
