"""Does each layer earn its place?  Statistics only / + PyOD / + what the verdicts taught.

    python benchmarks/ablation.py [--generator both|demo|independent] [--properties 20] [--months 36]
    python benchmarks/quality.py --ablation     (the same table, printed by the quality benchmark)

On each generator, the engine scores the whole portfolio (Django-free, as benchmarks/quality.py
does) three ways, each row with AUC-PR, precision at the target recall (0.90) and time:

1. statistics only (``use_pyod=False``);
2. + PyOD (the per-series detectors, as configured by default);
3. + what the verdicts taught: the true verdict (from the labels) on every flag of each
   property's second year, generalised to the other flags by ``anomalies.detection.verdicts``
   (the same function a detection pass calls).

Every row is measured on the third year, which nobody reviewed (the second year's own verdicts
would be leakage).  The last line is the PyOD-on / PyOD-off time ratio beside its target (1.25).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from anomalies.detection.engine import detect_anomalies  # noqa: E402
from anomalies.detection.table import period_to_string  # noqa: E402
from anomalies.detection.verdicts import Candidates, VerdictArrays, learn  # noqa: E402
from benchmarks.quality import Key, _adapted, load_portfolio, predictions  # noqa: E402

TARGET_RECALL = 0.90
PYOD_TIME_TARGET = 1.25


def third_year_metrics(scores: dict[Key, float], flagged: set[Key], labels: dict[Key, str], year: str) -> dict[str, Any]:
    keys = [k for k in set(scores) | set(labels) if k[2][:4] == year]
    y = np.array([k in labels for k in keys])
    s = np.array([scores.get(k, 0.0) for k in keys])
    prec, rec, _ = precision_recall_curve(y, s)
    return {
        "auc_pr": float(average_precision_score(y, s)) if y.any() else 0.0,
        "precision_at_recall": float(prec[rec >= TARGET_RECALL].max()) if (rec >= TARGET_RECALL).any() else 0.0,
        "fp": sum(1 for k in flagged if k[2][:4] == year and k not in labels),
        "recall": sum(1 for k in labels if k[2][:4] == year and k in flagged) / max(int(y.sum()), 1),
    }


def taught(
    table: Any, codes: np.ndarray, result: Any, labels: dict[Key, str], years: tuple[str, str]
) -> tuple[dict[Key, float], set[Key]]:
    """Scores and flags after the second year's true verdicts taught the other flags."""
    reviewed, later = years
    scores, flagged = predictions(table, codes, result)
    rows = [
        int(r)
        for r in np.flatnonzero(result.is_anomaly & ~table.is_total)
        if r not in {sf.row for sf in result.statement_findings}
    ]

    def key(r: int) -> Key:
        return (
            str(codes[table.property_ids[r]]),
            str(table.document_types[r]),
            period_to_string(int(table.periods[r])),
            str(table.account_codes[r]),
        )

    verdict_rows = [r for r in rows if key(r)[2][:4] == reviewed]
    verdicts = VerdictArrays.from_rows(
        [
            (
                i,
                int(table.property_ids[r]),
                str(table.document_types[r]),
                str(table.account_codes[r]),
                int(table.periods[r]),
                float(table.amounts[r]),
                key(r) in labels,
                str(result.anomaly_type[r]),
                float(result.anomaly_score[r]),
                1.0,
            )
            for i, r in enumerate(verdict_rows)
        ]
    )
    for r in verdict_rows:  # a verdict on the line itself decides it
        if key(r) not in labels:
            flagged.discard(key(r))
    cand_rows = [r for r in rows if key(r)[2][:4] == later]
    if not cand_rows or verdicts.n == 0:
        return scores, flagged
    learned = learn(
        verdicts,
        Candidates(
            property_ids=table.property_ids[cand_rows],
            document_types=table.document_types[cand_rows],
            account_codes=table.account_codes[cand_rows],
            kinds=np.array([str(result.anomaly_type[r]) for r in cand_rows], dtype=object),
            scores=result.anomaly_score[cand_rows].astype(np.float64),
            periods=table.periods[cand_rows],
        ),
    )
    for j, r in enumerate(cand_rows):
        scores[key(r)] = float(learned.scores[j])
        if not learned.flagged[j]:
            flagged.discard(key(r))
    return scores, flagged


def ablation(generator: str, properties: int, months: int, seed: int) -> list[dict[str, Any]]:
    rows, raw_labels = load_portfolio(generator, properties, months, seed)
    labels: dict[Key, str] = {
        (str(r["property_code"]), str(r["document_type"]), str(r["period"]), str(r["account_code"])): str(r["anomaly_kind"])
        for r in raw_labels
    }
    first = min(int(r["period"][:4]) for r in rows)
    years = (str(first + 1), str(first + 2))
    table, codes = _adapted(rows)
    out = []
    results = {}
    for name, use_pyod in (("statistics only", False), ("+ PyOD", True)):
        started = time.perf_counter()
        results[use_pyod] = detect_anomalies(table, use_pyod=use_pyod, seed=seed)
        seconds = time.perf_counter() - started
        out.append(
            {
                "row": name,
                "seconds": seconds,
                **third_year_metrics(*predictions(table, codes, results[use_pyod]), labels, years[1]),
            }
        )
    started = time.perf_counter()
    scores, flagged = taught(table, codes, results[True], labels, years)
    seconds = out[-1]["seconds"] + time.perf_counter() - started
    out.append(
        {"row": "+ what the verdicts taught", "seconds": seconds, **third_year_metrics(scores, flagged, labels, years[1])}
    )
    return out


def print_ablation(generator: str, rows: list[dict[str, Any]]) -> None:
    print(f"== ablation on generator {generator} (third year, unreviewed)")
    print(f"  {'layers':<28}{'AUC-PR':>8}{'prec@rec' + str(TARGET_RECALL):>13}{'FP':>5}{'recall':>8}{'time s':>9}")
    for r in rows:
        print(
            f"  {r['row']:<28}{r['auc_pr']:>8.3f}{r['precision_at_recall']:>13.3f}{r['fp']:>5}{r['recall']:>8.3f}{r['seconds']:>9.1f}"
        )
    ratio = rows[1]["seconds"] / max(rows[0]["seconds"], 1e-9)
    print(
        f"  PyOD on / off time: {ratio:.2f}x (target <= {PYOD_TIME_TARGET}x)  {'ok' if ratio <= PYOD_TIME_TARGET else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", choices=("both", "demo", "independent"), default="both")
    parser.add_argument("--properties", type=int, default=20)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}")
    for generator in ("demo", "independent") if args.generator == "both" else (args.generator,):
        print_ablation(generator, ablation(generator, args.properties, args.months, args.seed))
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
