"""Django-free parsing of statement files into validated canonical rows (DESIGN.md §4).

Each reader (``csv_rows``, ``xlsx_rows``, ``pdf_rows``) turns the bytes of one file into a list of
``CanonicalRow``; every bad row goes to an ``ImportErrors`` (each error names the file, the row and
the column), so one call reports all of them. Nothing
here touches the database: the import service validates every file completely before it writes.
"""

from documents.parsing.common import (
    CANONICAL_COLUMNS,
    DOCUMENT_TYPES,
    PROPERTY_TYPES,
    REQUIRED_COLUMNS,
    CanonicalRow,
    FieldBox,
    ImportErrors,
    ImportFileError,
    Overrides,
    parse_amount,
    parse_period,
)
from documents.parsing.dispatch import SUPPORTED_EXTENSIONS, read_rows

__all__ = [
    "CANONICAL_COLUMNS",
    "DOCUMENT_TYPES",
    "PROPERTY_TYPES",
    "REQUIRED_COLUMNS",
    "SUPPORTED_EXTENSIONS",
    "CanonicalRow",
    "FieldBox",
    "ImportErrors",
    "ImportFileError",
    "Overrides",
    "parse_amount",
    "parse_period",
    "read_rows",
]
