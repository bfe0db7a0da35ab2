"""Rate limits on the expensive writes of the API: document imports and batch job creation.

Each class is a DRF throttle with a fixed scope whose rate comes from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (settings ``THROTTLE_DOCUMENT_IMPORT`` and
``THROTTLE_JOB_CREATE``, e.g. ``"60/min"``), read at request time so that
``override_settings`` in a test, or a reload of the settings, takes effect (DRF's own
``SimpleRateThrottle`` binds the rates once, at import).

Like ``ScopedRateThrottle`` the history is kept per scope and per user (per client IP for an
anonymous request); unlike it, only writes (POST, PUT, PATCH, DELETE) are counted, so a view
that also lists (GET /api/v1/documents/) can carry the throttle without limiting reads.
Histories live in the ``throttle`` cache (settings ``THROTTLE_CACHE_URL``): process-local by
default, shared by every web process when it points at Redis.

Usage: ``throttle_classes = [DocumentImportThrottle]`` on the view.
"""

from __future__ import annotations

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

THROTTLE_CACHE_ALIAS = "throttle"


class ScopedWriteThrottle(SimpleRateThrottle):
    """Counts the writes of one user (or IP) under ``scope``; reads pass untouched."""

    scope: str = ""

    def __init__(self) -> None:
        self.cache = caches[THROTTLE_CACHE_ALIAS]
        super().__init__()

    def get_rate(self) -> str | None:
        # Read at call time, not DRF's import-time copy of DEFAULT_THROTTLE_RATES. A missing scope
        # is a configuration error, not "unlimited" (None is how a rate says unlimited).
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] has no rate for {self.scope!r}")
        return rates[self.scope]

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.method in SAFE_METHODS:
            return None  # not throttled
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class DocumentImportThrottle(ScopedWriteThrottle):
    """POST /api/v1/documents/ (imports parse and write whole files)."""

    scope = "document_import"


class JobCreateThrottle(ScopedWriteThrottle):
    """POST /api/v1/batch-reprocessing/reprocess (each job queues work on the workers)."""

    scope = "job_create"
