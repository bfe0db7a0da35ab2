"""The API's one pagination: page numbers, a ``page_size`` parameter that must be valid."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from kernel.exceptions import ApplicationError


class StrictPageNumberPagination(PageNumberPagination):
    """``page_size`` must be a whole number from 1 (above ``max_page_size`` it is capped).

    DRF's own class silently falls back to the default size for ``page_size=-1`` or ``abc``;
    a caller who asked for something invalid should be told.
    """

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) > 0):
            raise ApplicationError(
                "Invalid page size.", field_errors={self.page_size_query_param: ["Expected a whole number from 1."]}
            )
        return super().get_page_size(request)
