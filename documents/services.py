"""Writes of the documents app. ``documents_import`` is the one import path of the command, the API
and the admin page.

How an import goes:
1. Every file is parsed and validated completely (``documents.parsing``) before anything is
   written, and every error of the call is collected (``ImportErrors``). Any error raises
   ``DocumentImportError`` (an ``ApplicationError``: HTTP 400 with ``{"detail": ..., "file":
   [errors]}``) listing up to 100 errors, then "and N more", each naming the file, the row and the
   column.
2. All writes of one call happen in ONE transaction: an import of several files is all-or-nothing
   (one bad file rejects the whole call, and a database error rolls everything back).
3. Properties, periods and accounts are upserted in a few queries (bulk inserts that ignore rows
   another import created meanwhile, then one read back). A property's name and type are taken
   from the first file that mentions it; later files only fill in blanks.
4. The rows of the properties involved are locked (``select_for_update``, in id order, so two
   concurrent imports cannot deadlock) while versions are decided, so two imports of the same
   document cannot both create "version 2".
5. Versioning (DESIGN.md §4): ``content_hash`` is the sha256 of the document's normalised line
   items (sorted by account code: code, name, amount, is_total). Same hash as the latest version
   -> unchanged, nothing written. Different -> a new version; the old version's ``is_latest`` is
   cleared first (the partial unique constraint ``document_one_latest_version`` allows one latest
   row). Documents and line items are bulk inserted (line items in batches of 2,000); a PDF's
   field coordinates go to ``pdf_field_coordinates``.
6. Detection (``detect=True``, the default): once the transaction has committed, the documents it
   created or changed are queued for detection, one ``anomalies.tasks.detect_documents`` task per
   property, sent by name (this app does not import the anomalies app) and routed to the
   ``anomaly`` queue by CELERY_TASK_ROUTES. Unchanged documents are not queued again.
``extraction_status`` of an imported document is ``completed``; ``failed`` is never written by an
import, because a file that fails is rejected whole and leaves nothing behind.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from documents.models import (
    AccountType,
    ChartOfAccount,
    DocumentUpload,
    ExtractionStatus,
    FinancialPeriod,
    LineItem,
    PDFFieldCoordinate,
    Property,
)
from documents.parsing import CanonicalRow, ImportErrors, ImportFileError, Overrides, parse_period, read_rows
from documents.parsing.dispatch import source_format_of
from documents.portfolios import import_access_errors, portfolio_for_new_property
from kernel.exceptions import ApplicationError
from kernel.logging import log_event
from kernel.periods import period_ordinal

LINE_ITEM_BATCH_SIZE = 2000
DOCUMENT_BATCH_SIZE = 500
ID_SLICE = 1000  # ids per "IN (...)" query
PROGRESS_EVERY = 100  # documents
LOGGED_IDS = 100  # at most this many file names / document ids on one log line
MAX_LOGGED_REASON = 500  # characters

DETECTION_TASK = "anomalies.tasks.detect_documents"  # on the anomaly queue (CELERY_TASK_ROUTES)

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: phase 'parse' counts files, phase 'write' counts documents."""


class DocumentImportError(ApplicationError):
    """A rejected import: every error of the call (up to MAX_LISTED_ERRORS, then "and N more"), each
    one line ``file: row R, column C: reason``. ``message`` is that line when there is one error, else
    the count and the first; ``field_errors["file"]`` (the API's 400 body) is the whole list."""

    def __init__(self, errors: ImportErrors) -> None:
        lines = errors.lines()
        message = lines[0] if errors.total == 1 else f"{errors.summary()} The first: {lines[0]}"
        super().__init__(message, field_errors={"file": lines})
        self.errors = errors

    @property
    def lines(self) -> list[str]:
        return self.errors.lines()


@dataclass(frozen=True)
class UploadedSource:
    """One file to import: its name (the extension chooses the reader) and its bytes."""

    name: str
    data: bytes

    @classmethod
    def from_path(cls, path: str | Path) -> UploadedSource:
        path = Path(path)
        return cls(name=path.name, data=path.read_bytes())

    @classmethod
    def from_file(cls, uploaded: Any) -> UploadedSource:
        """From a Django ``UploadedFile`` (API and admin uploads)."""
        chunks = uploaded.chunks() if hasattr(uploaded, "chunks") else [uploaded.read()]
        return cls(name=Path(uploaded.name or "upload").name, data=b"".join(chunks))


@dataclass
class ImportSummary:
    files: int = 0
    file_names: list[str] = field(default_factory=list)
    documents_new: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    line_items_written: int = 0
    new_document_ids: list[int] = field(default_factory=list)
    changed_document_ids: list[int] = field(default_factory=list)
    detection_requested: bool = True
    detection_tasks: int = 0  # detect_documents tasks sent after the commit (one per property)
    detection_documents: int = 0  # documents those tasks cover
    detection_error: str = ""  # why queueing failed (the broker was unreachable), if it did
    document_properties: dict[int, int] = field(default_factory=dict, repr=False)  # id -> property id

    @property
    def document_ids(self) -> list[int]:
        """Ids of the versions this import wrote (new documents and new versions of changed ones)."""
        return sorted(self.new_document_ids + self.changed_document_ids)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("document_properties")
        return {**values, "document_ids": self.document_ids, "detection": self.describe_detection()}

    def describe_detection(self) -> str:
        if not self.detection_requested:
            return "detection not queued (asked not to)"
        if self.detection_error:
            return f"detection could NOT be queued ({self.detection_error}); run detect_anomalies"
        if not self.document_ids:
            return "nothing new to detect"
        if not self.detection_tasks:
            return f"detection of {len(self.document_ids)} document(s) will be queued when the transaction commits"
        return (
            f"detection queued for {self.detection_documents} document(s) in {self.detection_tasks} task(s) "
            "on the anomaly queue"
        )

    def describe(self) -> str:
        return (
            f"{self.files} file(s): {self.documents_new} new, {self.documents_changed} changed, "
            f"{self.documents_unchanged} unchanged document(s); {self.line_items_written} line item(s) written; "
            f"{self.describe_detection()}"
        )


@dataclass
class _ParsedFile:
    source: UploadedSource
    rows: list[CanonicalRow]
    file_hash: str
    source_format: str


@dataclass
class _Latest:
    version: int
    content_hash: str
    document_id: int | None = None
    pending: DocumentUpload | None = None


def account_type_for(account_code: str) -> str:
    """The account type implied by a code: 1xxx asset, 2xxx liability, 3xxx equity, 4xxx revenue,
    5xxx-8xxx expense, 9xxx and CF-* cash flow, RR-*/MS-* metrics, anything else other."""
    code = account_code.strip().upper()
    if code.startswith(("RR-", "MS-")):
        return AccountType.METRIC
    if code.startswith("CF-"):
        return AccountType.CASH_FLOW
    if len(code) >= 4 and code[:4].isdigit():
        return {
            "1": AccountType.ASSET,
            "2": AccountType.LIABILITY,
            "3": AccountType.EQUITY,
            "4": AccountType.REVENUE,
            "5": AccountType.EXPENSE,
            "6": AccountType.EXPENSE,
            "7": AccountType.EXPENSE,
            "8": AccountType.EXPENSE,
            "9": AccountType.CASH_FLOW,
        }.get(code[0], AccountType.OTHER)
    return AccountType.OTHER


def content_hash(rows: Iterable[CanonicalRow]) -> str:
    """sha256 of a document's normalised line items: order of rows and source format do not count."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.account_code):
        digest.update(f"{row.account_code}\t{row.account_name}\t{row.amount:.2f}\t{int(row.is_total)}\n".encode())
    return digest.hexdigest()


def _coerce_overrides(overrides: Overrides | dict | None) -> Overrides | None:
    if overrides is None or isinstance(overrides, Overrides):
        return overrides
    cleaned = {key: (str(value).strip() or None) if value is not None else None for key, value in overrides.items()}
    return Overrides(
        property_code=cleaned.get("property_code") or cleaned.get("property"),
        document_type=cleaned.get("document_type"),
        period=cleaned.get("period"),
    )


def documents_import(
    *,
    files: Sequence[UploadedSource],
    uploaded_by: Any | None = None,
    overrides: Overrides | dict | None = None,
    progress: ProgressCallback | None = None,
    channel: str = "service",
    detect: bool = True,
) -> ImportSummary:
    """Validate every file, then write them all in one transaction; see the module docstring.
    ``detect=False`` skips queueing detection of the imported documents.

    Every call writes one ``documents_import`` line on the ``reims.events`` log (see
    ``kernel.logging``): ``outcome`` ok / rejected (a bad file, with its one-line reason) / error
    (an unexpected failure, re-raised), the ``channel`` (api, admin, command), the user id, the
    files, the documents new/changed/unchanged, the line items written and the duration.
    """
    started = time.perf_counter()
    user = uploaded_by if getattr(uploaded_by, "is_authenticated", False) else None
    context: dict[str, Any] = {
        "channel": channel,
        "user_id": getattr(user, "pk", None),
        "files": len(files),
        "file_names": [source.name for source in files[:LOGGED_IDS]],
        "bytes": sum(len(source.data) for source in files),
    }
    try:
        summary = _import(files, user=user, overrides=overrides, progress=progress, detect=detect)
    except ApplicationError as exc:
        log_event(
            "documents_import",
            level=logging.WARNING,
            outcome="rejected",
            reason=exc.message[:MAX_LOGGED_REASON],
            duration_ms=_elapsed_ms(started),
            **context,
        )
        raise
    except Exception as exc:
        log_event(
            "documents_import",
            level=logging.ERROR,
            outcome="error",
            reason=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:MAX_LOGGED_REASON],
            duration_ms=_elapsed_ms(started),
            **context,
        )
        raise
    log_event(
        "documents_import",
        outcome="ok",
        documents_new=summary.documents_new,
        documents_changed=summary.documents_changed,
        documents_unchanged=summary.documents_unchanged,
        line_items=summary.line_items_written,
        document_ids=summary.document_ids[:LOGGED_IDS],
        detection=summary.describe_detection(),
        duration_ms=_elapsed_ms(started),
        **context,
    )
    return summary


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _import(
    files: Sequence[UploadedSource],
    *,
    user: Any | None,
    overrides: Overrides | dict | None,
    progress: ProgressCallback | None,
    detect: bool,
) -> ImportSummary:
    if not files:
        raise ApplicationError("No file was submitted.", field_errors={"file": ["No file was submitted."]})
    parsed_overrides = _coerce_overrides(overrides)
    parsed: list[_ParsedFile] = []
    errors = ImportErrors()
    # Every file is read to its end, whatever the errors, so that one call reports all of them.
    for index, source in enumerate(files, start=1):
        try:
            source_format = source_format_of(source.name)
        except ImportFileError as exc:
            errors.add(exc)
            continue
        rows = read_rows(source.data, source.name, overrides=parsed_overrides, errors=errors)
        parsed.append(_ParsedFile(source, rows, hashlib.sha256(source.data).hexdigest(), source_format))
        if progress:
            progress("parse", index, len(files))
    if errors:
        raise DocumentImportError(errors)
    with transaction.atomic():
        refused = import_access_errors(files=[(p.source.name, p.rows) for p in parsed], user=user)
        if refused:
            raise DocumentImportError(refused)
        summary = _write(parsed, uploaded_by=user, progress=progress)
        summary.detection_requested = detect
        if detect and summary.document_ids:
            # After the commit, so that the worker finds the lines (and a rollback queues nothing).
            transaction.on_commit(lambda: _queue_detection(summary))
    return summary


def _queue_detection(summary: ImportSummary) -> None:
    """One detection task per property (a property's documents are scored together), by task name."""
    by_property: dict[int, list[int]] = {}
    for document_id in summary.document_ids:
        by_property.setdefault(summary.document_properties[document_id], []).append(document_id)
    try:
        for document_ids in by_property.values():
            current_app.send_task(DETECTION_TASK, args=[document_ids])
            summary.detection_tasks += 1
            summary.detection_documents += len(document_ids)
    except Exception as exc:  # the import is committed: report the broker's failure, do not raise it
        summary.detection_error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:MAX_LOGGED_REASON]
        log_event("documents_detection_queue", level=logging.ERROR, reason=summary.detection_error)


def _upsert_properties(rows: Iterable[CanonicalRow], *, user: Any | None) -> dict[str, Property]:
    first_seen: dict[str, tuple[str, str, str]] = {}
    for row in rows:
        name, kind, portfolio = first_seen.get(row.property_code, ("", "", ""))
        first_seen[row.property_code] = (
            name or row.property_name,
            kind or row.property_type,
            portfolio or row.portfolio_code,
        )
    existing = {p.code: p for p in Property.objects.filter(code__in=list(first_seen))}
    portfolios = {
        portfolio: portfolio_for_new_property(portfolio, user=user)
        for code, (_, _, portfolio) in first_seen.items()
        if code not in existing
    }
    Property.objects.bulk_create(
        [
            Property(code=code, name=name, property_type=kind, portfolio_id=portfolios[portfolio])
            for code, (name, kind, portfolio) in first_seen.items()
            if code not in existing
        ],
        ignore_conflicts=True,
    )
    blanks = []
    for code, prop in existing.items():
        name, kind, _ = first_seen[code]
        if (not prop.name and name) or (not prop.property_type and kind):
            prop.name = prop.name or name
            prop.property_type = prop.property_type or kind
            prop.updated_at = timezone.now()  # bulk_update does not apply auto_now
            blanks.append(prop)
    if blanks:
        Property.objects.bulk_update(blanks, ["name", "property_type", "updated_at"])
    return {p.code: p for p in Property.objects.filter(code__in=list(first_seen))}


def financial_periods_upsert(labels: Iterable[str]) -> dict[str, FinancialPeriod]:
    """The FinancialPeriod rows of these 'YYYY-MM' labels, created where missing (label -> row)."""
    wanted: dict[int, tuple[int, int]] = {}
    for label in set(labels):
        year, month = parse_period(label)
        wanted[period_ordinal(year, month)] = (year, month)
    FinancialPeriod.objects.bulk_create(
        [
            FinancialPeriod(
                year=year,
                month=month,
                ordinal=ordinal,
                start_date=date(year, month, 1),
                end_date=date(year, month, calendar.monthrange(year, month)[1]),
            )
            for ordinal, (year, month) in wanted.items()
        ],
        ignore_conflicts=True,
    )
    return {p.label: p for p in FinancialPeriod.objects.filter(ordinal__in=list(wanted))}


def _upsert_accounts(rows: Iterable[CanonicalRow]) -> None:
    first_seen: dict[str, CanonicalRow] = {}
    for row in rows:
        first_seen.setdefault(row.account_code, row)
    existing = set(ChartOfAccount.objects.filter(account_code__in=list(first_seen)).values_list("account_code", flat=True))
    ChartOfAccount.objects.bulk_create(
        [
            ChartOfAccount(
                account_code=code,
                account_name=row.account_name,
                account_type=account_type_for(code),
                is_total=row.is_total,
            )
            for code, row in first_seen.items()
            if code not in existing
        ],
        ignore_conflicts=True,
    )


def _slices(values: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(values), ID_SLICE):
        yield values[start : start + ID_SLICE]


def _latest_versions(*, property_ids: list[int], period_ids: list[int]) -> dict[tuple[int, str, int], _Latest]:
    """The latest version of each (property, document type, period) these rows touch."""
    latest: dict[tuple[int, str, int], _Latest] = {}
    for values in DocumentUpload.objects.filter(
        is_latest=True, property_id__in=property_ids, period_id__in=period_ids
    ).values("id", "property_id", "document_type", "period_id", "version", "content_hash"):
        key = (values["property_id"], values["document_type"], values["period_id"])
        latest[key] = _Latest(values["version"], values["content_hash"], document_id=values["id"])
    return latest


def _documents_of(parsed: list[_ParsedFile]) -> list[tuple[_ParsedFile, list[CanonicalRow]]]:
    """Each file's rows grouped into documents (property, type, period), in the files' order."""
    documents: list[tuple[_ParsedFile, list[CanonicalRow]]] = []
    for parsed_file in parsed:
        groups: dict[tuple[str, str, str], list[CanonicalRow]] = {}
        for row in parsed_file.rows:
            groups.setdefault(row.document_key, []).append(row)
        documents.extend((parsed_file, rows) for rows in groups.values())
    return documents


def _line_items_of(to_write: list[tuple[DocumentUpload, list[CanonicalRow], bool]]) -> list[LineItem]:
    line_items: list[LineItem] = []
    for document, rows, _changed in to_write:
        for order, row in enumerate(rows):
            box = row.box
            line_items.append(
                LineItem(
                    document_id=document.id,
                    account_code=row.account_code,
                    account_name=row.account_name,
                    amount=row.amount,
                    is_total=row.is_total,
                    row_order=order,
                    page_number=box.page if box else None,
                    x0=box.x0 if box else None,
                    y0=box.y0 if box else None,
                    x1=box.x1 if box else None,
                    y1=box.y1 if box else None,
                    extraction_confidence=row.confidence,
                )
            )
    return line_items


def _coordinates_of(
    to_write: list[tuple[DocumentUpload, list[CanonicalRow], bool]], line_items: list[LineItem]
) -> list[PDFFieldCoordinate]:
    """The PDF boxes of each field of the written line items (``line_items`` in ``to_write``'s order)."""
    coordinates: list[PDFFieldCoordinate] = []
    rows = (row for _document, document_rows, _changed in to_write for row in document_rows)
    for item, row in zip(line_items, rows, strict=True):
        for field_name, box in row.fields.items():
            coordinates.append(
                PDFFieldCoordinate(
                    document_id=item.document_id,
                    table_name="line_items",
                    record_id=item.id,
                    field_name=field_name,
                    page_number=box.page,
                    x0=box.x0,
                    y0=box.y0,
                    x1=box.x1,
                    y1=box.y1,
                    extraction_method="pdfplumber",
                    confidence=row.confidence,
                    matched_text=box.text,
                )
            )
    return coordinates


def _write(parsed: list[_ParsedFile], *, uploaded_by: Any | None, progress: ProgressCallback | None) -> ImportSummary:
    summary = ImportSummary(files=len(parsed), file_names=[p.source.name for p in parsed])
    all_rows = [row for p in parsed for row in p.rows]
    properties = _upsert_properties(all_rows, user=uploaded_by)
    periods = financial_periods_upsert(row.period for row in all_rows)
    _upsert_accounts(all_rows)
    property_ids = sorted(p.id for p in properties.values())
    # Serialise concurrent imports of the same properties while versions are decided.
    list(Property.objects.select_for_update().filter(id__in=property_ids).order_by("id").values_list("id", flat=True))

    latest = _latest_versions(property_ids=property_ids, period_ids=[p.id for p in periods.values()])
    documents = _documents_of(parsed)

    now = timezone.now()
    to_write: list[tuple[DocumentUpload, list[CanonicalRow], bool]] = []
    retire: list[int] = []
    for index, (parsed_file, rows) in enumerate(documents, start=1):
        first = rows[0]
        prop, period = properties[first.property_code], periods[first.period]
        key = (prop.id, first.document_type, period.id)
        digest = content_hash(rows)
        current = latest.get(key)
        if current is not None and current.content_hash == digest:
            summary.documents_unchanged += 1
        else:
            if current is not None:
                if current.document_id is not None:
                    retire.append(current.document_id)
                elif current.pending is not None:
                    current.pending.is_latest = False  # superseded by a later file of this import
            document = DocumentUpload(
                property_id=prop.id,
                document_type=first.document_type,
                period_id=period.id,
                version=current.version + 1 if current else 1,
                is_latest=True,
                file_name=parsed_file.source.name[:255],
                file_hash=parsed_file.file_hash,
                content_hash=digest,
                source_format=parsed_file.source_format,
                extraction_status=ExtractionStatus.COMPLETED,
                line_count=len(rows),
                uploaded_by=uploaded_by,
                processed_at=now,
            )
            latest[key] = _Latest(document.version, digest, pending=document)
            to_write.append((document, rows, current is not None))
        if progress and (index % PROGRESS_EVERY == 0 or index == len(documents)):
            progress("write", index, len(documents))

    # Clear the old flags before inserting the new latest versions (partial unique constraint).
    for ids in _slices(retire):
        DocumentUpload.objects.filter(id__in=ids).update(is_latest=False)
    DocumentUpload.objects.bulk_create([document for document, _, _ in to_write], batch_size=DOCUMENT_BATCH_SIZE)

    line_items = _line_items_of(to_write)
    LineItem.objects.bulk_create(line_items, batch_size=LINE_ITEM_BATCH_SIZE)
    coordinates = _coordinates_of(to_write, line_items)
    if coordinates:
        PDFFieldCoordinate.objects.bulk_create(coordinates, batch_size=LINE_ITEM_BATCH_SIZE)

    for document, _rows, changed in to_write:
        (summary.changed_document_ids if changed else summary.new_document_ids).append(document.id)
        summary.document_properties[document.id] = document.property_id
    summary.documents_new = len(summary.new_document_ids)
    summary.documents_changed = len(summary.changed_document_ids)
    summary.line_items_written = len(line_items)
    return summary


@transaction.atomic
def properties_update_details(*, details: Iterable[dict[str, Any]]) -> int:
    """Set name, type, address and area of existing properties (keys: property_code and any of
    property_name, property_type, address, area_sqft). Used to load the demo portfolio's sizes."""
    by_code = {str(d["property_code"]): d for d in details}
    changed = []
    for prop in Property.objects.filter(code__in=list(by_code)):
        detail = by_code[prop.code]
        prop.name = str(detail.get("property_name") or prop.name)
        prop.property_type = str(detail.get("property_type") or prop.property_type)
        prop.address = str(detail.get("address") or prop.address)
        if detail.get("area_sqft") not in (None, ""):
            prop.area_sqft = int(detail["area_sqft"])
        prop.updated_at = timezone.now()  # bulk_update does not apply auto_now
        changed.append(prop)
    Property.objects.bulk_update(changed, ["name", "property_type", "address", "area_sqft", "updated_at"])
    return len(changed)
