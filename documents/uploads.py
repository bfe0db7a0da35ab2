"""Size limits of web uploads (API and admin import page): settings.MAX_UPLOAD_SIZE_MB.

Two checks, both before anything is imported:
1. ``check_declared_size``: the request's Content-Length, before its body is read. A request
   larger than the limit (plus room for the multipart envelope) is refused without reading it.
2. ``check_files_size``: the files actually received together (a chunked request has no
   Content-Length).
Both raise ``UploadTooLarge`` (HTTP 413, ``{"detail": ..., "file": [...]}`` through the API's
exception handler). Django itself refuses non-file form data above DATA_UPLOAD_MAX_MEMORY_SIZE
with ``RequestDataTooBig``; ``upload_error_from`` turns that, and the other ``SuspiciousOperation``
errors of a malformed multipart body, into the same clean 4xx answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousMultipartForm, TooManyFieldsSent, TooManyFilesSent
from rest_framework import status

from kernel.exceptions import ApplicationError

MULTIPART_ENVELOPE_BYTES = 64 * 1024  # boundaries, part headers and the small form fields


class UploadTooLarge(ApplicationError):
    """An upload above settings.MAX_UPLOAD_SIZE_MB: 413, nothing imported."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def max_upload_bytes() -> int:
    return settings.MAX_UPLOAD_SIZE_MB * 1024 * 1024


def _too_large(size: int) -> UploadTooLarge:
    message = (
        f"Upload too large: {size / (1024 * 1024):.1f} MB; the limit is {settings.MAX_UPLOAD_SIZE_MB} MB "
        "(MAX_UPLOAD_SIZE_MB). Nothing was imported; split the files over several uploads."
    )
    return UploadTooLarge(message, field_errors={"file": [message]})


def declared_size(meta: Mapping[str, Any]) -> int | None:
    """The request's Content-Length in bytes, or None when absent or unreadable."""
    raw = meta.get("CONTENT_LENGTH") or meta.get("HTTP_CONTENT_LENGTH")
    try:
        size = int(raw)
    except (TypeError, ValueError):
        return None
    return size if size >= 0 else None


def check_declared_size(meta: Mapping[str, Any]) -> None:
    """UploadTooLarge when the Content-Length alone shows the upload is over the limit."""
    size = declared_size(meta)
    if size is not None and size > max_upload_bytes() + MULTIPART_ENVELOPE_BYTES:
        raise _too_large(size)


def check_files_size(files: Iterable[Any]) -> None:
    """UploadTooLarge when the received files together are over the limit."""
    total = sum(int(getattr(uploaded, "size", 0) or 0) for uploaded in files)
    if total > max_upload_bytes():
        raise _too_large(total)


def upload_error_from(exc: BaseException, meta: Mapping[str, Any]) -> ApplicationError | None:
    """The clean 4xx error for Django's refusals of a request body, None for anything else."""
    if isinstance(exc, RequestDataTooBig):
        return _too_large(max(declared_size(meta) or 0, max_upload_bytes() + 1))
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent | SuspiciousMultipartForm):
        message = f"Malformed upload: {exc}"
        return ApplicationError(message, field_errors={"file": [message]})
    return None
