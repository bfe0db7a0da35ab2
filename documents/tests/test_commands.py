"""import_documents and generate_demo_portfolio as a user runs them."""

from __future__ import annotations

import csv
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from documents.models import DocumentUpload, PDFFieldCoordinate, Property
from documents.tests.helpers import csv_bytes, statement_rows, xlsx_bytes

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_files_and_directories_with_a_closing_summary(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.csv").write_bytes(csv_bytes(statement_rows()))
    (tmp_path / "sub" / "b.xlsx").write_bytes(xlsx_bytes(statement_rows("P200")))
    (tmp_path / "notes.txt").write_text("ignored in a directory")
    out, _ = _run("import_documents", str(tmp_path))
    assert "Imported 2 file(s): 2 new, 0 changed, 0 unchanged document(s); 6 line item(s) written" in out
    out, _ = _run("import_documents", str(tmp_path / "a.csv"))
    assert "0 new, 0 changed, 1 unchanged" in out


def test_bad_file_exits_non_zero_with_the_one_line_reason(tmp_path):
    rows = statement_rows()
    rows[2][3] = "balance"
    (tmp_path / "good.csv").write_bytes(csv_bytes(statement_rows("P9")))
    (tmp_path / "bad.csv").write_bytes(csv_bytes(rows))
    with pytest.raises(CommandError) as caught:
        _run("import_documents", str(tmp_path / "good.csv"), str(tmp_path / "bad.csv"))
    assert str(caught.value).startswith("bad.csv: row 4, column document_type: unknown document type 'balance'")
    assert DocumentUpload.objects.count() == 0


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        _run("import_documents", str(tmp_path / "nope.csv"))
    with pytest.raises(CommandError, match="no .csv, .xlsx or .pdf files"):
        _run("import_documents", str(tmp_path))


def test_overrides_from_options(tmp_path):
    (tmp_path / "a.csv").write_bytes(csv_bytes(statement_rows()))
    _run(
        "import_documents",
        str(tmp_path / "a.csv"),
        "--property",
        "CMD1",
        "--document-type",
        "cash_flow",
        "--period",
        "2019-09",
    )
    document = DocumentUpload.objects.select_related("property", "period").get()
    assert (document.property.code, document.document_type, document.period.label) == ("CMD1", "cash_flow", "2019-09")


def test_progress_bar_on_large_inputs(tmp_path):
    rows = [row for month in range(1, 13) for p in range(5) for row in statement_rows(f"B{p}", period=f"2023-{month:02d}")]
    (tmp_path / "big.csv").write_bytes(csv_bytes(rows))
    _, err = _run("import_documents", str(tmp_path / "big.csv"))
    assert "Writing" in err and "/60 " in err  # a bar counting the 60 documents


def test_generate_demo_portfolio_writes_files_and_loads_csvs_and_pdfs(tmp_path):
    out, _ = _run(
        "generate_demo_portfolio",
        "--properties",
        "2",
        "--months",
        "15",
        "--seed",
        "3",
        "--output",
        str(tmp_path),
        "--load",
        "--no-progress",
    )
    assert sorted(p.name for p in (tmp_path / "statements").iterdir()) == ["P001.csv", "P002.csv"]
    with (tmp_path / "labels.csv").open() as handle:
        labels = list(csv.DictReader(handle))
    assert labels and set(labels[0]) == {"property_code", "document_type", "period", "account_code", "anomaly_kind"}
    assert len(list((tmp_path / "pdf").glob("*.pdf"))) == 5
    assert "Imported PDFs: 5 file(s): 5 new" in out
    assert "Imported CSVs: 2 file(s): 145 new, 0 changed, 5 unchanged" in out
    assert DocumentUpload.objects.filter(is_latest=True).count() == 2 * 15 * 5
    assert DocumentUpload.objects.filter(source_format="pdf", is_latest=True).count() == 5
    assert PDFFieldCoordinate.objects.exists()
    assert Property.objects.get(code="P001").area_sqft > 0


def test_generate_refuses_bad_sizes(tmp_path):
    with pytest.raises(CommandError):
        _run("generate_demo_portfolio", "--properties", "0", "--output", str(tmp_path))
