"""Text PDFs in the documented statement layout, read with pdfplumber.

Layout (``documents/demo/pdf_render.py`` writes exactly this; other producers may too):

* Header lines, anywhere before or between the account lines, repeated identically on later
  pages if at all::

      Property: <code> — <name>        (the name and its dash are optional; '-' or '–' also work)
      Type: <property_type>            (optional)
      Document: <document_type>        (e.g. income_statement; 'Income statement' also works)
      Period: YYYY-MM

* One line per line item: ``<account_code>  <account_name>  <amount>``. The account code is the
  first word (``4010-0000``, ``RR-OCCUPANCY-PCT``...), the amount the last (``1,234.50``,
  ``-1234.50`` or ``(1,234.50)``), the words between them are the name.
* A line item is a total (``is_total``) when its words are set in a bold font (font name
  containing "Bold"). Only when the file uses no bold font at all (a producer without bold) is
  a line item whose name starts with "Total" taken as a total instead.
* Every other line (titles, column headings, page footers) is ignored.

Coordinates are pdfplumber's, in PDF points with the origin at the TOP-left of the page:
``x0``/``x1`` are the left/right edges, ``y0`` is the words' ``top`` and ``y1`` their ``bottom``
(y grows downwards). Pages are numbered from 1.

Confidence: the text layer is read exactly, so confidence measures agreement with the layout:
0.99 for a clean row, less 0.2 when the row's words are not on one baseline and less 0.1 when
they mix font sizes.

``--property``, ``--document-type`` and ``--period`` (``Overrides``) win over the header and fill
it in when it is missing.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pdfplumber

from documents.parsing.common import (
    DOCUMENT_TYPES,
    PROPERTY_CODE_RE,
    PROPERTY_TYPES,
    CanonicalRow,
    FieldBox,
    ImportErrors,
    ImportFileError,
    Overrides,
    build_row,
    cell_repr,
    check_documents,
    parse_amount,
    parse_period,
)

_ACCOUNT_CODE_RE = re.compile(r"^(?:[0-9]{3,}(?:[-.][0-9]+)*|[A-Z]{2,}(?:-[A-Z0-9]+)+)$")
_HEADER_RE = {
    "property": re.compile(r"^Property:\s*(?P<code>\S+)(?:\s+[—–-]\s*(?P<name>.*))?$", re.IGNORECASE),
    "type": re.compile(r"^Type:\s*(?P<value>.+)$", re.IGNORECASE),
    "document": re.compile(r"^Document:\s*(?P<value>.+)$", re.IGNORECASE),
    "period": re.compile(r"^Period:\s*(?P<value>\S+)$", re.IGNORECASE),
}
_DOCUMENT_LABELS = {"cash_flow_statement": "cash_flow"}
LINE_TOLERANCE = 3.0  # points: words whose tops differ by less are on one line
BASE_CONFIDENCE = 0.99


@dataclass
class _Line:
    page: int
    number: int  # 1-based among the text lines of its page
    words: list[dict]

    @property
    def text(self) -> str:
        return " ".join(word["text"] for word in self.words)

    @property
    def where(self) -> str:
        return f"page {self.page}, line {self.number}"


def _box(words: list[dict], page: int) -> FieldBox:
    return FieldBox(
        page=page,
        x0=round(min(w["x0"] for w in words), 2),
        y0=round(min(w["top"] for w in words), 2),
        x1=round(max(w["x1"] for w in words), 2),
        y1=round(max(w["bottom"] for w in words), 2),
        text=" ".join(w["text"] for w in words),
    )


def _lines(pdf: pdfplumber.PDF) -> tuple[list[_Line], int]:
    lines: list[_Line] = []
    char_count = 0
    for page_number, page in enumerate(pdf.pages, start=1):
        char_count += len(page.chars)
        words = page.extract_words(extra_attrs=["fontname", "size"], keep_blank_chars=False)
        words.sort(key=lambda w: (round(w["top"], 1), w["x0"]))
        current: list[dict] = []
        for word in words:
            if current and abs(word["top"] - current[0]["top"]) > LINE_TOLERANCE:
                lines.append(_Line(page_number, 0, sorted(current, key=lambda w: w["x0"])))
                current = []
            current.append(word)
        if current:
            lines.append(_Line(page_number, 0, sorted(current, key=lambda w: w["x0"])))
    numbers: dict[int, int] = {}
    for line in lines:
        numbers[line.page] = numbers.get(line.page, 0) + 1
        line.number = numbers[line.page]
    return lines, char_count


def _normalise_document_type(text: str) -> str:
    value = re.sub(r"[\s-]+", "_", text.strip().lower())
    return _DOCUMENT_LABELS.get(value, value)


def _check_property_code(text: str) -> None:
    if not PROPERTY_CODE_RE.match(text):
        raise ValueError(f"bad property code {text!r} (1-20 letters, digits, '_' or '-')")


def _confidence(words: list[dict]) -> float:
    confidence = BASE_CONFIDENCE
    if max(w["bottom"] for w in words) - min(w["bottom"] for w in words) > 1.5:
        confidence -= 0.2
    if len({round(w.get("size") or 0, 1) for w in words}) > 1:
        confidence -= 0.1
    return round(confidence, 2)


def read_pdf_rows(data: bytes, file: str, *, errors: ImportErrors, overrides: Overrides | None = None) -> list[CanonicalRow]:
    """Bad account lines go to ``errors``; an unreadable PDF or a bad header raises ImportFileError."""
    overrides = overrides or Overrides()
    overrides.validate(file)
    lines = _text_lines(data, file)
    header, header_where, items = _header_and_items(lines, file, errors)
    if not items and not errors:
        raise ImportFileError(file, None, None, "no line items found (expected lines '<account_code> <name> <amount>')")
    if not any("bold" in str(w.get("fontname", "")).lower() for line in lines for w in line.words):
        # A producer that uses no bold font at all: fall back to the names ("Total Revenue").
        items = [
            (line, values, boxes, values["account_name"].lower().startswith("total")) for line, values, boxes, _ in items
        ]
    fields = _document_fields(file, header, header_where, overrides)
    rows: list[CanonicalRow] = []
    for line, values, boxes, is_total in items:
        row = build_row(
            file, line.where, {**fields, **values, "is_total": str(is_total)}, overrides=overrides, errors=errors
        )
        if row is None:
            continue
        row.box = _box(line.words, line.page)
        row.fields = boxes
        row.confidence = _confidence(line.words)
        rows.append(row)
    check_documents(file, rows, errors=errors)
    return rows


def _text_lines(data: bytes, file: str) -> list[_Line]:
    """The PDF's lines of words; ImportFileError for an empty, unreadable or scanned file."""
    if not data:
        raise ImportFileError(file, None, None, "empty file")
    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:  # pdfminer raises many types for a damaged or non-PDF file
        raise ImportFileError(file, None, None, f"not a readable PDF ({exc.__class__.__name__})") from None
    try:
        try:
            lines, char_count = _lines(pdf)
        except Exception as exc:
            raise ImportFileError(file, None, None, f"not a readable PDF ({exc.__class__.__name__})") from None
    finally:
        pdf.close()
    if char_count == 0:
        raise ImportFileError(file, None, None, "PDF has no text layer (a scanned image?); only text PDFs can be imported")
    return lines


_Item = tuple[_Line, dict[str, str], dict[str, FieldBox], bool]


def _header_and_items(
    lines: list[_Line], file: str, errors: ImportErrors
) -> tuple[dict[str, str], dict[str, str], list[_Item]]:
    """The header values (and where each was read) and the account lines; bad account lines go to errors."""
    header: dict[str, str] = {}
    header_where: dict[str, str] = {}

    def set_header(key: str, value: str, line: _Line) -> None:
        if key in header and header[key] != value:
            raise ImportFileError(
                file, line.where, key, f"header says {value!r} but {header_where[key]} said {header[key]!r}"
            )
        header.setdefault(key, value)
        header_where.setdefault(key, line.where)

    items: list[_Item] = []
    for line in lines:
        header_values = _header_values(line.text)
        if header_values is not None:
            for key, value in header_values:
                set_header(key, value, line)
            continue
        item = _account_item(line, file, errors)
        if item is not None:
            items.append(item)
    return header, header_where, items


def _header_values(text: str) -> list[tuple[str, str]] | None:
    """The (column, value) pairs a header line gives, or None when it is not a header line."""
    for key, pattern in _HEADER_RE.items():
        match = pattern.match(text)
        if not match:
            continue
        if key == "property":
            name = match.group("name")
            return [("property_code", match.group("code"))] + ([("property_name", name.strip())] if name else [])
        if key == "type":
            return [("property_type", match.group("value").strip().lower().replace(" ", "_"))]
        if key == "document":
            return [("document_type", _normalise_document_type(match.group("value")))]
        return [("period", match.group("value"))]
    return None


def _account_item(line: _Line, file: str, errors: ImportErrors) -> _Item | None:
    """An account line's values and boxes; None for other lines, and for a bad one (added to errors)."""
    words = line.words
    if not _ACCOUNT_CODE_RE.match(words[0]["text"]):
        return None  # a title, a column heading or a footer
    if len(words) < 3:
        message = f"expected '<code> <name> <amount>', got {cell_repr(line.text)}"
        errors.add(ImportFileError(file, line.where, "account_name", message))
        return None
    try:
        parse_amount(words[-1]["text"])
    except ValueError as exc:
        errors.add(ImportFileError(file, line.where, "amount", str(exc)))
        return None
    name_words = words[1:-1]
    values = {
        "account_code": words[0]["text"],
        "account_name": " ".join(w["text"] for w in name_words),
        "amount": words[-1]["text"],
    }
    boxes = {
        "account_code": _box(words[:1], line.page),
        "account_name": _box(name_words, line.page),
        "amount": _box(words[-1:], line.page),
    }
    bold = any("bold" in str(w.get("fontname", "")).lower() for w in words)
    return line, values, boxes, bold


def _document_fields(
    file: str, header: dict[str, str], header_where: dict[str, str], overrides: Overrides
) -> dict[str, str]:
    """The document's property, type and period from its header and the overrides, checked."""
    if header.get("property_type") and header["property_type"] not in PROPERTY_TYPES:
        raise ImportFileError(
            file, header_where["property_type"], "property_type", f"unknown property type {header['property_type']!r}"
        )
    fields = {**header, **overrides.as_columns()}
    for key, option in (("property_code", "--property"), ("document_type", "--document-type"), ("period", "--period")):
        if key not in fields:
            label = {"property_code": "Property", "document_type": "Document", "period": "Period"}[key]
            raise ImportFileError(file, None, key, f"no '{label}:' header line and no {option} given")
    if fields["document_type"] not in DOCUMENT_TYPES:
        where = header_where.get("document_type") if "document_type" not in overrides.as_columns() else None
        raise ImportFileError(
            file,
            where,
            "document_type",
            f"unknown document type {fields['document_type']!r} (expected one of {', '.join(DOCUMENT_TYPES)})",
        )

    # Header values are checked where they were read, so the message points at the header line.
    for key, check in (("period", parse_period), ("property_code", _check_property_code)):
        if key in header and key not in overrides.as_columns():
            try:
                check(header[key])
            except ValueError as exc:
                raise ImportFileError(file, header_where[key], key, str(exc)) from None

    return fields
