"""The analysts' console: Django's admin site with a dashboard as its index page."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from reims import dashboard


class ReimsAdminSite(admin.AdminSite):
    site_header = "REIMS Anomaly"
    site_title = "REIMS Anomaly console"
    index_title = "Dashboard"
    index_template = "admin/reims_index.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        context = {"dashboard": dashboard.dashboard_context(user=request.user), **(extra_context or {})}
        return super().index(request, extra_context=context)
