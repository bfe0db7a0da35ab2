"""Admin helpers shared by every app: readable JSON, read-only pages."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html


def pretty_json(value: Any, *, max_chars: int = 20000) -> str:
    """Render a JSON value as indented, escaped <pre> for the admin's read-only fields."""
    if value in (None, "", {}, []):
        return "—"
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) > max_chars:
        text = text[:max_chars] + "\n…"
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class ReadableJSONMixin:
    """Show every JSONField of the model as pretty JSON: add '<field>_pretty' to readonly_fields.

    Usage: ``json_fields = ("results_summary",)`` and list ``results_summary_pretty`` in
    ``readonly_fields`` / ``fields``.
    """

    json_fields: tuple[str, ...] = ()

    def __getattr__(self, name: str):
        if name.endswith("_pretty") and name[: -len("_pretty")] in type(self).json_fields:
            field = name[: -len("_pretty")]

            @admin.display(description=field.replace("_", " "))
            def render(obj: Any) -> str:
                return pretty_json(getattr(obj, field))

            return render
        raise AttributeError(name)


class ReadOnlyAdmin(ReadableJSONMixin, admin.ModelAdmin):
    """Rows written only by services (imports, detection): the admin shows them, never edits them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
