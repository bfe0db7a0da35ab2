"""Choose the reader by file extension."""

from __future__ import annotations

from pathlib import PurePath

from documents.parsing.common import CanonicalRow, ImportErrors, ImportFileError, Overrides

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".csv", ".xlsx", ".pdf")


def source_format_of(file: str) -> str:
    """'csv', 'xlsx' or 'pdf' from the file name; ImportFileError for anything else."""
    suffix = PurePath(file).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ImportFileError(
            file, None, None, f"unsupported file type {suffix or '(none)'!r} (expected .csv, .xlsx or .pdf)"
        )
    return suffix[1:]


def read_rows(
    data: bytes, file: str, *, overrides: Overrides | None = None, errors: ImportErrors | None = None
) -> list[CanonicalRow]:
    """The validated canonical rows of one whole file.

    With ``errors``, every error of the file is added to it (a file that cannot be read at all adds
    one) and the good rows are returned; the caller decides. Without, the first error is raised
    as ImportFileError.
    """
    collector = ImportErrors() if errors is None else errors
    try:
        rows = _read(data, file, overrides=overrides, errors=collector)
    except ImportFileError as exc:
        collector.add(exc)
        rows = []
    if errors is None and collector:
        raise collector.listed[0]
    return rows


def _read(data: bytes, file: str, *, overrides: Overrides | None, errors: ImportErrors) -> list[CanonicalRow]:
    source_format = source_format_of(file)
    if source_format == "csv":
        from documents.parsing.csv_rows import read_csv_rows

        return read_csv_rows(data, file, overrides=overrides, errors=errors)
    if source_format == "xlsx":
        from documents.parsing.xlsx_rows import read_xlsx_rows

        return read_xlsx_rows(data, file, overrides=overrides, errors=errors)
    from documents.parsing.pdf_rows import read_pdf_rows

    return read_pdf_rows(data, file, overrides=overrides, errors=errors)
