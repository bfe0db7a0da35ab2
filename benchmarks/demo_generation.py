"""Demo portfolio generation: 40 properties x 48 months (target < 20 s).

    python benchmarks/demo_generation.py [--properties 40] [--months 48] [--repeat 3]

Django-free: times ``generate_portfolio`` (median of --repeat runs), then writing the CSVs and
rendering + re-reading one PDF.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from documents.demo.generator import generate_portfolio  # noqa: E402
from documents.demo.pdf_render import render_sample_pdfs  # noqa: E402
from documents.parsing import read_rows  # noqa: E402

TARGET_SECONDS = 20.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--properties", type=int, default=40)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        portfolio = generate_portfolio(properties=args.properties, months=args.months, seed=args.seed)
        timings.append(time.perf_counter() - started)
    generation = statistics.median(timings)
    documents = args.properties * args.months * 5
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        portfolio.write(folder)
        writing = time.perf_counter() - started
        started = time.perf_counter()
        pdfs = render_sample_pdfs(portfolio.rows, Path(folder) / "pdf", count=5)
        parsed = sum(len(read_rows(p.read_bytes(), p.name)) for p in pdfs)
        pdf_time = time.perf_counter() - started
    kinds = Counter(label["anomaly_kind"] for label in portfolio.labels)
    print(f"{args.properties} properties x {args.months} months: {documents} documents, {len(portfolio.rows):,} line items, "
          f"{len(portfolio.labels)} labels")  # fmt: skip
    print("labels per kind: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    print(f"generation: median {generation:.2f} s of {args.repeat} (min {min(timings):.2f}, max {max(timings):.2f}); "
          f"{generation / TARGET_SECONDS:.1%} of the {TARGET_SECONDS:.0f} s budget")  # fmt: skip
    print(f"writing CSVs + labels: {writing:.2f} s; 5 PDFs rendered and read back ({parsed} rows): {pdf_time:.2f} s")
    ok = generation < TARGET_SECONDS
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
