"""Import speed: 2,000 documents / 100,000 line items through documents_import (target < 60 s).

    python benchmarks/import_speed.py                      # PostgreSQL (--postgres-url) and SQLite, one after the other
    python benchmarks/import_speed.py --database-url URL   # one database only

Each run works in a throwaway database (PostgreSQL: ``bench_<name>`` created and dropped next to
the given one; SQLite: a temporary file), so your data is never touched. Measured: the first
import (all new), a re-import of the same files (all unchanged: no writes) and an import where
every amount changed (all new versions).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROPERTIES = 20
MONTHS = 100
ACCOUNTS = 50  # 49 ledger lines + 1 total per document
TARGET_SECONDS = 60.0


def build_files(*, bump: int = 0) -> list[tuple[str, bytes]]:
    """20 CSVs (one per property) of 100 monthly income statements with 50 line items each."""
    files = []
    for p in range(PROPERTIES):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            ["property_code", "property_name", "property_type", "document_type", "period", "account_code",
             "account_name", "amount", "is_total"]
        )  # fmt: skip
        for m in range(MONTHS):
            period = f"{2015 + m // 12}-{m % 12 + 1:02d}"
            total = 0
            for a in range(ACCOUNTS - 1):
                cents = 100_000 + (p * 7919 + m * 104_729 + a * 1_299_709) % 5_000_000 + bump
                total += cents
                writer.writerow(
                    [f"B{p:03d}", f"Bench {p}", "office", "income_statement", period, f"{5000 + a:04d}-0000",
                     f"Expense {a}", f"{cents / 100:.2f}", "false"]
                )  # fmt: skip
            writer.writerow(
                [f"B{p:03d}", f"Bench {p}", "office", "income_statement", period, "5999-0000", "Total Expenses",
                 f"{total / 100:.2f}", "true"]
            )  # fmt: skip
        files.append((f"B{p:03d}.csv", buffer.getvalue().encode()))
    return files


def run_one(database_url: str) -> dict:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    temporary = None
    if connection.vendor == "sqlite":
        temporary = Path(tempfile.mkdtemp()) / "bench.sqlite3"
        connection.settings_dict["TEST"]["NAME"] = str(temporary)
    else:
        connection.settings_dict["TEST"]["NAME"] = f"bench_{connection.settings_dict['NAME']}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from documents.models import DocumentUpload, LineItem
        from documents.services import UploadedSource, documents_import

        def timed(files):
            sources = [UploadedSource(name, data) for name, data in files]
            started = time.perf_counter()
            summary = documents_import(files=sources)
            return time.perf_counter() - started, summary

        files = build_files()
        first_s, first = timed(files)
        again_s, again = timed(files)
        changed_s, changed = timed(build_files(bump=1))
        return {
            "vendor": connection.vendor,
            "documents": first.documents_new,
            "line_items": first.line_items_written,
            "first_s": first_s,
            "unchanged_s": again_s,
            "unchanged_docs": again.documents_unchanged,
            "changed_s": changed_s,
            "changed_docs": changed.documents_changed,
            "rows_in_db": LineItem.objects.count(),
            "versions_in_db": DocumentUpload.objects.count(),
        }
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
        if temporary is not None:
            temporary.unlink(missing_ok=True)
            temporary.parent.rmdir()


def report(result: dict) -> None:
    lines_per_s = result["line_items"] / result["first_s"]
    print(f"[{result['vendor']}] first import: {result['documents']} documents / {result['line_items']} line items "
          f"in {result['first_s']:.1f} s ({lines_per_s:,.0f} line items/s; {result['first_s'] / TARGET_SECONDS:.0%} "
          f"of the {TARGET_SECONDS:.0f} s budget)")  # fmt: skip
    print(f"[{result['vendor']}] re-import, identical: {result['unchanged_docs']} unchanged in {result['unchanged_s']:.1f} s "
          f"({result['unchanged_s'] / result['first_s']:.2f} x the first import)")  # fmt: skip
    print(f"[{result['vendor']}] re-import, every amount changed: {result['changed_docs']} new versions in "
          f"{result['changed_s']:.1f} s ({result['changed_s'] / result['first_s']:.2f} x the first import)")  # fmt: skip
    ok = result["first_s"] < TARGET_SECONDS and result["changed_s"] < TARGET_SECONDS
    print(f"[{result['vendor']}] {'PASS' if ok else 'FAIL'}: target < {TARGET_SECONDS:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="benchmark this database only")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/reims_bench")
    args = parser.parse_args()
    if args.database_url:
        result = run_one(args.database_url)
        report(result)
        return 0 if result["first_s"] < TARGET_SECONDS else 1
    status = 0
    for url in (args.postgres_url, "sqlite:///" + str(Path(tempfile.gettempdir()) / "reims_bench.sqlite3")):
        status |= subprocess.call([sys.executable, __file__, "--database-url", url], cwd=ROOT)
    return status


if __name__ == "__main__":
    sys.exit(main())
