"""Application errors raised by services, and how the API answers them.

Services raise ``ApplicationError`` (400), ``ConflictError`` (409) or ``FeatureDisabled`` (503);
views stay thin and let ``api_exception_handler`` turn them into responses. Management commands
turn them into ``CommandError`` (non-zero exit, one line).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from kernel.flags import FeatureDisabled


class ApplicationError(Exception):
    """A request the application refuses; ``field_errors`` maps field names to messages."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, field_errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class ConflictError(ApplicationError):
    """The request conflicts with the current state (e.g. cancelling a finished job)."""

    status_code = status.HTTP_409_CONFLICT


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, FeatureDisabled):
        return Response({"detail": str(exc), "flag": exc.flag.env_var}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message}
        body.update(exc.field_errors)
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):
        # Django refuses such bodies with an HTML 400 page; the API answers in JSON.
        return Response({"detail": str(exc) or "Bad request."}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return exception_handler(exc, context)
