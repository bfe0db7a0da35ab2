"""Every app's migrations run forward, back to zero and forward again on the real database."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

APPS_IN_REVERSE_DEPENDENCY_ORDER = ["reims", "batch_jobs", "modelcache", "anomalies", "documents"]
SEED_TABLES = {
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
}


def _tables() -> set[str]:
    return set(connection.introspection.table_names())


def _app_tables(label: str) -> set[str]:
    if label == "reims":
        return set()
    return {model._meta.db_table for model in apps.get_app_config(label).get_models()}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_each_app_migrates_to_zero_and_back():
    assert SEED_TABLES <= _tables()
    for label in APPS_IN_REVERSE_DEPENDENCY_ORDER:
        call_command("migrate", label, "zero", verbosity=0)
        assert not (_app_tables(label) & _tables()), f"{label} left tables behind"
    assert not (SEED_TABLES & _tables())
    call_command("migrate", verbosity=0)
    assert SEED_TABLES <= _tables()


def test_no_missing_migrations(db):
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
