"""Detection speed.

    python benchmarks/detection_speed.py [--repeats 200] [--properties 40] [--months 48]

1. One document of 60 line items with 36 months of history, models already trained (a
   warm in-memory ModelProvider, as the model cache gives): p50 / p99 of detect_anomalies.
   Target: p99 < 50 ms.
2. One income statement scored in its property's context (the path of a batch chunk).
3. The whole demo portfolio from scratch (selection, cross-validation and training of every
   series' model, scoring, statement checks): wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from anomalies.detection.detectors import FittedModel  # noqa: E402
from anomalies.detection.engine import detect_anomalies  # noqa: E402
from anomalies.detection.peers import PeerStats  # noqa: E402
from anomalies.detection.provider import ModelRequest, TrainingProvider  # noqa: E402
from anomalies.detection.table import LineTable, line_table_from_rows  # noqa: E402


class MemoryProvider(TrainingProvider):
    """Warm cache: trains once per key, then returns the stored model."""

    def __init__(self) -> None:
        self.models: dict[str, FittedModel] = {}

    def get_or_train(self, request: ModelRequest, x_train: np.ndarray, train: Callable[[], FittedModel]) -> FittedModel:
        if request.model_key not in self.models:
            self.models[request.model_key] = train()
        return self.models[request.model_key]


def one_document_table(lines: int = 60, months: int = 36, seed: int = 0) -> LineTable:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(lines):
        base = float(rng.lognormal(9, 1))
        seasonal = i % 5 == 0
        for t in range(months):
            amount = base * 1.03 ** (t // 12) * (1 + rng.normal(0, 0.03))
            if seasonal:
                amount *= 1 + 0.4 * np.cos(2 * np.pi * t / 12)
            rows.append(
                {
                    "property_code": "P1",
                    "property_type": "office",
                    "document_type": "income_statement",
                    "period": f"{2021 + t // 12}-{t % 12 + 1:02d}",
                    "account_code": f"{4000 + 10 * i}-0000",
                    "amount": round(amount, 2),
                    "is_total": False,
                }
            )
    return line_table_from_rows(rows).table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--properties", type=int, default=40)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--skip-portfolio", action="store_true")
    args = parser.parse_args(argv)

    table = one_document_table()
    provider = MemoryProvider()
    started = time.perf_counter()
    detect_anomalies(table, use_pyod=True, model_provider=provider)  # trains the 60 models
    print(
        f"one document, 60 lines x 36 months: first pass (select + train 60 models) "
        f"{(time.perf_counter() - started) * 1000:.0f} ms"
    )
    for use_pyod in (True, False):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            detect_anomalies(table, use_pyod=use_pyod, model_provider=provider)
            times.append((time.perf_counter() - t0) * 1000)
        p50, p99 = np.percentile(times, [50, 99])
        label = "PyOD + statistical, models trained" if use_pyod else "statistical only"
        verdict = "OK" if p99 < 50 else "OVER 50 ms"
        print(f"  {label}: p50 {p50:.1f} ms  p99 {p99:.1f} ms  ({verdict})")

    if not args.skip_portfolio:
        from documents.demo.generator import generate_portfolio

        portfolio = generate_portfolio(properties=args.properties, months=args.months, seed=7)
        big = line_table_from_rows(portfolio.rows).table
        # The production path of one document: its whole property as context (every statement,
        # every month), only the document's rows scored, peers from the portfolio aggregate.
        peers = PeerStats.from_table(big)
        prop = big.take(big.property_ids == 0)
        last = int(prop.periods.max())
        mask = (prop.document_types == "income_statement") & (prop.periods == last)
        warm = MemoryProvider()
        detect_anomalies(prop, use_pyod=True, model_provider=warm, peers=peers, score_mask=mask)
        times = []
        for _ in range(args.repeats // 4):
            t0 = time.perf_counter()
            detect_anomalies(prop, use_pyod=True, model_provider=warm, peers=peers, score_mask=mask)
            times.append((time.perf_counter() - t0) * 1000)
        p50, p99 = np.percentile(times, [50, 99])
        print(
            f"one income statement ({int(mask.sum())} lines) in its property's context ({prop.n_rows} lines, "
            f"all statements, {args.months} months), PyOD, models trained: p50 {p50:.1f} ms  p99 {p99:.1f} ms"
        )
        for use_pyod in (True, False):
            t0 = time.perf_counter()
            result = detect_anomalies(big, use_pyod=use_pyod)
            elapsed = time.perf_counter() - t0
            print(
                f"demo portfolio {args.properties}x{args.months} ({big.n_rows} lines) from scratch, "
                f"{'PyOD' if use_pyod else 'statistical only'}: {elapsed:.1f} s "
                f"({len(result.selections)} model selections; timings ms {result.timings_ms})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
