"""Management commands: detect_anomalies, export_anomalies, list_algorithms (DESIGN §5)."""

from __future__ import annotations

import csv
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from anomalies.models import AnomalyDetection
from documents.demo.generator import generate_portfolio
from documents.models import DocumentUpload

pytestmark = pytest.mark.django_db

EXPORT_HEADER = [
    "property_code",
    "document_type",
    "period",
    "account_code",
    "amount",
    "expected_value",
    "anomaly_score",
    "severity",
    "is_anomaly",
    "detector",
]


def run(command: str, *args: str) -> str:
    out = StringIO()
    if command == "detect_anomalies":
        args = (*args, "--no-progress")
    call_command(command, *args, stdout=out)
    return out.getvalue()


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_detect_then_export(ledger, statistical_only, tmp_path, shifted_period):
    output = run("detect_anomalies", "--property", "A1")
    assert "Documents: 24 (24 ok, 0 failed, 0 skipped)" in output
    assert "Anomalies: 1 (" in output and "statistical:robust_z 72" in output

    flagged_file = tmp_path / "flagged.csv"
    assert "Wrote 1 anomalies" in run("export_anomalies", "--output", str(flagged_file))
    rows = read_csv(flagged_file)
    assert rows[0] == EXPORT_HEADER
    assert len(rows) == 2
    row = dict(zip(EXPORT_HEADER, rows[1], strict=True))
    assert (row["property_code"], row["document_type"], row["period"], row["account_code"]) == (
        "A1",
        "income_statement",
        shifted_period,
        "6010-0000",
    )
    assert row["is_anomaly"] == "true" and row["detector"] == "statistical:robust_z"
    assert float(row["amount"]) > 9 * float(row["expected_value"])
    assert 50 <= float(row["anomaly_score"]) <= 100 and row["severity"] in ("critical", "high", "medium", "low")

    all_file = tmp_path / "all.csv"
    run("export_anomalies", "--output", str(all_file), "--all")
    all_rows = read_csv(all_file)
    assert all_rows[0] == EXPORT_HEADER and len(all_rows) == 73
    assert sum(r[8] == "false" for r in all_rows[1:]) == 71


def test_export_writes_only_latest_versions(ledger, statistical_only, tmp_path):
    run("detect_anomalies")
    DocumentUpload.objects.filter(period__year=2023, period__month=6).update(is_latest=False)
    out = tmp_path / "x.csv"
    run("export_anomalies", "--output", str(out), "--all")
    assert len(read_csv(out)) == 1 + 69


def test_detect_anomalies_refuses_bad_input_in_one_line(db):
    with pytest.raises(CommandError, match="unknown property code"):
        run("detect_anomalies", "--property", "NOPE")
    with pytest.raises(CommandError, match="YYYY-MM"):
        run("detect_anomalies", "--since", "2023/01")
    with pytest.raises(CommandError, match="after"):
        run("detect_anomalies", "--since", "2023-02", "--until", "2023-01")


def test_nothing_to_do_exits_zero(ledger, statistical_only):
    run("detect_anomalies")
    assert "Nothing to do" in run("detect_anomalies")
    assert "Documents: 24" in run("detect_anomalies", "--all")


def test_export_to_a_missing_directory_fails_cleanly(db, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run("export_anomalies", "--output", str(tmp_path / "nope" / "x.csv"))


def test_list_algorithms(db):
    output = run("list_algorithms")
    lines = output.splitlines()
    assert lines[0].split() == ["name", "family", "cost", "available"]
    assert any(line.startswith("IForest ") and " yes" in line for line in lines)
    assert any(": requires" in line or "no:" in line for line in lines)
    total = int(lines[-1].split()[0])
    assert total >= 45


def test_import_detect_export_through_the_real_importer(db, no_model_cache, tmp_path):
    portfolio = generate_portfolio(properties=1, months=18, seed=5)
    paths = portfolio.write(tmp_path / "demo")
    call_command("import_documents", *map(str, paths["statements"]), stdout=StringIO())
    output = run("detect_anomalies")
    assert "0 failed" in output
    assert AnomalyDetection.objects.exists()
    out = tmp_path / "anomalies.csv"
    run("export_anomalies", "--output", str(out))
    rows = read_csv(out)
    assert rows[0] == EXPORT_HEADER
    assert len(rows) - 1 == AnomalyDetection.objects.filter(is_anomaly=True).count()
