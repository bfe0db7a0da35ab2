"""Bad input at scale: a CSV of 100,000 rows with 5,000 bad ones is rejected within 10 s, listing
100 errors and the count of the rest, and writing nothing.

    python benchmarks/import_errors.py

The database is a fresh, EMPTY SQLite file without tables: a rejected import must not touch the
database at all, so any write (or read) would fail the run.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = 100_000
BAD_EVERY = 20  # 5,000 bad rows
TARGET_SECONDS = 10.0
LISTED = 100


def build_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["property_code", "property_name", "property_type", "document_type", "period", "account_code",
         "account_name", "amount", "is_total"]
    )  # fmt: skip
    for i in range(ROWS):
        month = i // 50
        period = f"{2000 + month // 12}-{month % 12 + 1:02d}"
        amount = "n/a" if i % BAD_EVERY == BAD_EVERY - 1 else f"{1000 + i % 997}.{i % 100:02d}"
        writer.writerow(["B001", "Bench", "office", "income_statement", period, f"{5000 + i % 50:04d}-0000",
                         f"Expense {i % 50}", amount, "false"])  # fmt: skip
    return buffer.getvalue().encode()


def main() -> int:
    database = Path(tempfile.mkdtemp()) / "empty.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")
    import django

    django.setup()
    from documents.services import DocumentImportError, UploadedSource, documents_import

    data = build_csv()
    started = time.perf_counter()
    try:
        documents_import(files=[UploadedSource("bad.csv", data)], detect=False)
    except DocumentImportError as exc:
        elapsed = time.perf_counter() - started
        lines = exc.lines
    else:
        print("FAIL: the import was accepted")
        return 1
    load = os.getloadavg()
    expected_more = ROWS // BAD_EVERY - LISTED
    ok_time = elapsed < TARGET_SECONDS
    ok_list = len(lines) == LISTED + 1 and lines[-1] == f"and {expected_more:,} more"
    print(f"rows {ROWS:,}, bad {ROWS // BAD_EVERY:,}, file {len(data) / 2**20:.1f} MB")
    print(f"rejected in {elapsed:.2f} s (target < {TARGET_SECONDS:.0f} s) {'OK' if ok_time else 'SLOW'}")
    print(f"listed {len(lines) - 1} errors, then {lines[-1]!r} (target {LISTED}, then 'and {expected_more:,} more') "
          f"{'OK' if ok_list else 'WRONG'}")  # fmt: skip
    print(f"first: {lines[0]}")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if ok_time and ok_list else 1


if __name__ == "__main__":
    sys.exit(main())
