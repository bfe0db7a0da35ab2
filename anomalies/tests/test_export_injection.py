"""export_anomalies writes statement text that a spreadsheet cannot run as a formula (OWASP CSV
injection), while amounts stay numbers, negative ones included."""

from __future__ import annotations

import csv
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from anomalies.models import AnomalyDetection
from documents.services import UploadedSource, documents_import
from documents.tests.helpers import csv_bytes
from kernel.spreadsheet import spreadsheet_cell

pytestmark = pytest.mark.django_db

FORMULAS = ["=1+2", "+SUM(A1:A9)", "-2+3", "@cmd", "\tTAB", "\rCR", '=HYPERLINK("http://x","y")']


@pytest.mark.parametrize("text", FORMULAS)
def test_text_that_starts_a_formula_gets_a_leading_quote(text):
    assert spreadsheet_cell(text) == "'" + text


@pytest.mark.parametrize("value", [Decimal("-12.50"), -3, -0.5, 7, "Base Rent", "4010-0000", ""])
def test_numbers_and_plain_text_pass_unchanged(value):
    assert spreadsheet_cell(value) == value


def test_export_neutralises_account_codes_and_keeps_negative_amounts_numeric(tmp_path):
    rows = [
        ["INJ1", "Plaza", "retail", "income_statement", "2024-01", code, "Name", "-1234.50", "false"]
        for code in FORMULAS[:4]
    ]
    documents_import(files=[UploadedSource("inj.csv", csv_bytes(rows))], channel="command")
    from documents.models import LineItem

    for line in LineItem.objects.select_related("document"):
        AnomalyDetection.objects.create(
            line_item=line,
            document=line.document,
            property=line.document.property,
            document_type=line.document.document_type,
            period=line.document.period,
            account_code=line.account_code,
            field_value=line.amount,
            expected_value=Decimal("-10.00"),
            anomaly_score=80,
            is_anomaly=True,
            detector="-robust_z",
        )
    output = tmp_path / "export.csv"
    call_command("export_anomalies", "--output", str(output), stdout=StringIO())
    exported = list(csv.DictReader(output.open(encoding="utf-8")))
    assert sorted(row["account_code"] for row in exported) == sorted("'" + code for code in FORMULAS[:4])
    assert {row["amount"] for row in exported} == {"-1234.50"}
    assert {row["expected_value"] for row in exported} == {"-10.00"}
    assert {row["detector"] for row in exported} == {"'-robust_z"}
