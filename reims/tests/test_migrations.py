"""Every app's migrations run forward, back to zero and forward again on the real database."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

APPS_IN_REVERSE_DEPENDENCY_ORDER = ["batch_jobs", "modelcache", "anomalies", "documents"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_each_app_migrates_to_zero_and_back():
    for app in APPS_IN_REVERSE_DEPENDENCY_ORDER:
        call_command("migrate", app, "zero", verbosity=0)
        assert not any(t.startswith(f"{app}") for t in connection.introspection.table_names() if app != "documents")
    tables = set(connection.introspection.table_names())
    assert "line_items" not in tables and "anomaly_detections" not in tables
    call_command("migrate", verbosity=0)
    tables = set(connection.introspection.table_names())
    for table in (
        "properties",
        "financial_periods",
        "chart_of_accounts",
        "document_uploads",
        "line_items",
        "pdf_field_coordinates",
        "anomaly_detections",
        "anomaly_explanations",
        "anomaly_feedback",
        "cross_property_benchmarks",
        "pyod_model_selection_log",
        "anomaly_model_cache",
        "batch_reprocessing_jobs",
    ):
        assert table in tables


def test_no_missing_migrations(db):
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
