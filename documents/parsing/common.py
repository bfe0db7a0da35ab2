"""Canonical rows, the one error type of the parsers, and the validation every format shares."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from kernel.periods import parse_period  # noqa: F401 - re-exported for the parsers
from kernel.vocabulary import DOCUMENT_TYPES, PROPERTY_TYPES  # noqa: F401 - re-exported for the parsers

CANONICAL_COLUMNS: tuple[str, ...] = (
    "property_code",
    "property_name",
    "property_type",
    "document_type",
    "period",
    "account_code",
    "account_name",
    "amount",
    "is_total",
)
# Optional columns a file may add to the canonical ones (the demo and exports never write them).
OPTIONAL_COLUMNS: tuple[str, ...] = ("portfolio_code",)
ACCEPTED_COLUMNS: tuple[str, ...] = (*CANONICAL_COLUMNS, *OPTIONAL_COLUMNS)
REQUIRED_COLUMNS: frozenset[str] = frozenset(
    {"property_code", "document_type", "period", "account_code", "account_name", "amount"}
)

PROPERTY_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,20}\Z")
PORTFOLIO_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,30}\Z")  # \Z: '$' would accept a trailing newline
# [0-9], not \d: \d also matches other scripts' digits ('２０２４', '١٢٣') and int()/Decimal()
# would quietly accept them.
# Plain (-1234.50), grouped (1,234.50) and accounting negatives ((1234.50)); at most 2 decimals
# because amounts are stored as DECIMAL(18, 2) and silently rounding a statement is worse than
# refusing it.
_AMOUNT_RE = re.compile(r"^(?P<sign>-)?(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.(?P<frac>[0-9]*))?$")
MAX_ACCOUNT_CODE = 40
MAX_ACCOUNT_NAME = 200
MAX_PROPERTY_NAME = 200
AMOUNT_LIMIT = Decimal("1e16")  # DECIMAL(18, 2) holds 16 integer digits

MAX_LISTED_ERRORS = 100  # errors listed by one rejected import; the rest are counted
MAX_ECHOED = 200  # characters of an offending cell quoted in an error
# Bidi controls and zero-width characters: invisible, they make two codes look the same or
# reorder what a reviewer reads ("Trojan source"). Names lose them; a code holding one is refused.
_INVISIBLE_RE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def strip_invisible(value: str) -> str:
    return _INVISIBLE_RE.sub("", value)


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


class ImportFileError(Exception):
    """A file rejected whole. ``str()`` is one line naming the file, the row and the column."""

    def __init__(self, file: str, row: int | str | None, column: str | None, message: str) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [self.file]
        position = []
        if self.row is not None:
            position.append(f"row {self.row}" if isinstance(self.row, int) else str(self.row))
        if self.column is not None:
            position.append(f"column {self.column}")
        if position:
            where.append(", ".join(position))
        return ": ".join([*where, self.message])


def cell_repr(text: str) -> str:
    """A cell quoted in an error: at most MAX_ECHOED characters of it, and its length if cut."""
    if len(text) <= MAX_ECHOED:
        return repr(text)
    return f"{text[:MAX_ECHOED]!r}… ({len(text):,} characters)"


class ImportErrors:
    """Every error of one import call: the first ``limit`` kept in order, the rest only counted.

    The readers add to it and go on with the next row, so one call reports every mistake of every
    file at once; ``lines()`` is the list a user sees (command, API 400, admin form).
    """

    def __init__(self, limit: int = MAX_LISTED_ERRORS) -> None:
        self.limit = limit
        self.listed: list[ImportFileError] = []
        self.total = 0

    def add(self, error: ImportFileError) -> None:
        self.total += 1
        if len(self.listed) < self.limit:
            self.listed.append(error)

    def __bool__(self) -> bool:
        return self.total > 0

    @property
    def more(self) -> int:
        return self.total - len(self.listed)

    def lines(self) -> list[str]:
        listed = [str(error) for error in self.listed]
        return [*listed, f"and {self.more:,} more"] if self.more else listed

    def summary(self) -> str:
        """One line: how many errors, and that nothing was written."""
        return f"{self.total:,} error{'s' if self.total != 1 else ''} in the import; nothing was imported."


@dataclass(frozen=True)
class FieldBox:
    """Where one field of a PDF row was read: page (1-based) and box in PDF points.

    Coordinates are pdfplumber's: origin at the TOP-left corner of the page, ``y0`` = the words'
    ``top`` and ``y1`` = their ``bottom`` (so y grows downwards and y0 < y1).
    """

    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


@dataclass
class CanonicalRow:
    """One validated line item, ready to be written."""

    property_code: str
    document_type: str
    period: str  # YYYY-MM
    account_code: str
    account_name: str
    amount: Decimal
    is_total: bool = False
    property_name: str = ""
    property_type: str = ""
    portfolio_code: str = ""  # used only when the property is first seen
    row: int | str = 0  # where it came from, for messages
    # PDF only: the whole row's box, and one box per field ('account_code', 'account_name', 'amount').
    box: FieldBox | None = None
    fields: dict[str, FieldBox] = field(default_factory=dict)
    confidence: float | None = None

    @property
    def document_key(self) -> tuple[str, str, str]:
        return (self.property_code, self.document_type, self.period)


@dataclass(frozen=True)
class Overrides:
    """Values that replace (or fill in) a file's property code, document type and period."""

    property_code: str | None = None
    document_type: str | None = None
    period: str | None = None

    def validate(self, file: str) -> None:
        if self.property_code is not None and not PROPERTY_CODE_RE.match(self.property_code):
            raise ImportFileError(file, None, "property_code", f"bad property override {self.property_code!r}")
        if self.document_type is not None and self.document_type not in DOCUMENT_TYPES:
            raise ImportFileError(
                file,
                None,
                "document_type",
                f"unknown document type override {self.document_type!r} (expected one of {', '.join(DOCUMENT_TYPES)})",
            )
        if self.period is not None:
            try:
                parse_period(self.period)
            except ValueError as exc:
                raise ImportFileError(file, None, "period", f"bad period override: {exc}") from None

    def as_columns(self) -> dict[str, str]:
        pairs = {"property_code": self.property_code, "document_type": self.document_type, "period": self.period}
        return {key: value for key, value in pairs.items() if value is not None}


def parse_amount(text: str) -> Decimal:
    """'-1234.50', '(1234.50)', '1,234.50' -> Decimal; ValueError otherwise."""
    raw = text.strip()
    negative = False
    if raw.startswith("(") and raw.endswith(")"):
        negative = True
        raw = raw[1:-1].strip()
    match = _AMOUNT_RE.match(raw)
    if not raw or not match or (match.group("int") is None and not match.group("frac")):
        raise ValueError(f"not a number: {cell_repr(text)}")
    if negative and match.group("sign"):
        raise ValueError(f"not a number (two minus signs): {cell_repr(text)}")
    frac = match.group("frac") or ""
    if len(frac) > 2:
        raise ValueError(f"more than 2 decimal places: {cell_repr(text)}")
    try:
        value = Decimal((match.group("int") or "0").replace(",", "") + "." + (frac or "0"))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise ValueError(f"not a number: {cell_repr(text)}") from None
    if abs(value) >= AMOUNT_LIMIT:
        raise ValueError(f"amount too large: {cell_repr(text)}")
    if negative or match.group("sign"):
        value = -value
    return value.quantize(Decimal("0.01"))


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {cell_repr(text)}")


def check_header(file: str, header: list[str], *, overrides: Overrides, column_label=None) -> list[str]:
    """Normalise a header row and reject missing, unknown or repeated columns."""
    label = column_label or (lambda index, name: name)
    names = [str(cell or "").strip().lower() for cell in header]
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not name:
            raise ImportFileError(file, 1, label(index, f"#{index + 1}"), "empty column name in the header")
        if name not in ACCEPTED_COLUMNS:
            expected = ", ".join(ACCEPTED_COLUMNS)
            message = f"unknown column {cell_repr(name)} (expected {expected})"
            raise ImportFileError(file, 1, label(index, name[:MAX_ECHOED]), message)
        if name in seen:
            raise ImportFileError(file, 1, label(index, name), f"column {cell_repr(name)} appears twice in the header")
        seen.add(name)
    filled_by_override = set(overrides.as_columns())
    for name in CANONICAL_COLUMNS:
        if name in REQUIRED_COLUMNS and name not in seen and name not in filled_by_override:
            raise ImportFileError(file, 1, name, "missing required column")
    return names


def _property_code(text: str) -> str:
    if not PROPERTY_CODE_RE.match(text):
        raise ValueError(f"bad property code {cell_repr(text)} (1-20 letters, digits, '_' or '-')")
    return text


def _property_type(text: str) -> str:
    kind = text.lower()
    if kind and kind not in PROPERTY_TYPES:
        raise ValueError(f"unknown property type {cell_repr(kind)} (expected one of {', '.join(PROPERTY_TYPES)})")
    return kind


def _document_type(text: str) -> str:
    if text not in DOCUMENT_TYPES:
        raise ValueError(f"unknown document type {cell_repr(text)} (expected one of {', '.join(DOCUMENT_TYPES)})")
    return text


def _period(text: str) -> str:
    try:
        year, month = parse_period(text[: MAX_ECHOED + 1])
    except ValueError:
        raise ValueError(f"bad period {cell_repr(text)} (expected YYYY-MM, month 01-12)") from None
    return f"{year:04d}-{month:02d}"


def _bounded(label: str, limit: int, *, required: bool) -> Callable[[str], str]:
    def check(text: str) -> str:
        if required and not text:
            raise ValueError(f"empty {label}")
        if len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text

    return check


def _name(label: str, limit: int, *, required: bool) -> Callable[[str], str]:
    """A name: invisible characters (bidi controls, zero-width) dropped, then bounded."""
    bounded = _bounded(label, limit, required=required)
    return lambda text: bounded(strip_invisible(text).strip())


def _portfolio_code(text: str) -> str:
    if text and not PORTFOLIO_CODE_RE.match(text):
        raise ValueError(f"bad portfolio code {cell_repr(text)} (1-30 letters, digits, '_' or '-')")
    return text


def _account_code(text: str) -> str:
    code = _bounded("account code", MAX_ACCOUNT_CODE, required=True)(text)
    if _INVISIBLE_RE.search(code):
        # A code that looks like another is a spoofing vector: refused, not cleaned.
        raise ValueError("invisible character (bidi control or zero-width) in the account code")
    return code


# Each column of a canonical row, in the order errors are reported, and how its text is checked and
# read (ValueError: the reason).
ROW_FIELDS: tuple[tuple[str, Callable[[str], Any]], ...] = (
    ("property_code", _property_code),
    ("property_type", _property_type),
    ("property_name", _name("property name", MAX_PROPERTY_NAME, required=False)),
    ("portfolio_code", _portfolio_code),
    ("document_type", _document_type),
    ("period", _period),
    ("account_code", _account_code),
    ("account_name", _name("account name", MAX_ACCOUNT_NAME, required=True)),
    ("amount", lambda text: parse_amount(text)),
    ("is_total", lambda text: parse_bool(text)),
)


def build_row(
    file: str,
    row: int | str,
    values: dict[str, str],
    *,
    overrides: Overrides,
    errors: ImportErrors,
    column_label=None,
) -> CanonicalRow | None:
    """Validate one record (column name -> text) into a CanonicalRow, or add every bad column of it
    to ``errors`` and return None."""
    label = column_label or (lambda name: name)
    merged = {**values, **overrides.as_columns()}
    read: dict[str, Any] = {}
    failed = False
    for name, check in ROW_FIELDS:
        try:
            read[name] = check(str(merged.get(name) or "").strip())
        except ValueError as exc:
            failed = True
            errors.add(ImportFileError(file, row, label(name), str(exc)))
    if failed:
        return None
    return CanonicalRow(**read, row=row)


def check_documents(
    file: str, rows: Iterable[CanonicalRow], *, errors: ImportErrors, account_column: str = "account_code"
) -> None:
    """Report each account that appears twice in one document (rows grouped by property/type/period)."""
    first_seen: dict[tuple[str, str, str, str], int | str] = {}
    for row in rows:
        key = (*row.document_key, row.account_code)
        if key in first_seen:
            where = first_seen[key]
            where_text = f"row {where}" if isinstance(where, int) else str(where)
            errors.add(
                ImportFileError(
                    file,
                    row.row,
                    account_column,
                    f"account {row.account_code} appears twice in document {row.property_code} "
                    f"{row.document_type} {row.period} (first at {where_text})",
                )
            )
            continue
        first_seen[key] = row.row
