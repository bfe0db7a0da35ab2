"""Detection quality on a labelled portfolio, beside a REIMS2-style baseline.

    python benchmarks/quality.py [--properties 20] [--months 36] [--seed 7]
                                 [--generator both|demo|independent] [--no-pyod]

``demo`` is the project's demo generator (documents/demo/generator.py); ``independent`` is the
detection tests' own generator (anomalies/tests/detection/synthetic_portfolio.py), written apart
with another accounting system's conventions (5-digit codes, totals marked only by is_total,
sections in their own order) so that constants are not tuned to one generator's quirks.  By
default both run and a table prints them side by side.

Targets on each generator: precision >= 0.93 at recall >= 0.90 (the best operating point of the
ranking), AUC-PR >= 0.88, recall of every kind (footing included) >= 0.80 at the flag threshold.  Labels and predictions are matched on (property_code, document_type,
period, account_code), so an absent posting reported with row = -1 counts too.

Baseline (REIMS2 style): flag a line when |z| > 2 against its trailing 12 months (mean/std) or
its change on the previous period exceeds 15 %; its ranking score is max(|z| / 2, |change| / 15 %).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from anomalies.detection.engine import detect_anomalies  # noqa: E402
from anomalies.detection.table import line_table_from_rows, period_to_string  # noqa: E402

Key = tuple[str, str, str, str]


def load_portfolio(
    generator: str, properties: int, months: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if generator == "demo":
        from documents.demo.generator import generate_portfolio

        portfolio = generate_portfolio(properties=properties, months=months, seed=seed)
    else:
        from anomalies.tests.detection.synthetic_portfolio import generate_synthetic_portfolio

        portfolio = generate_synthetic_portfolio(properties=properties, months=months, seed=seed, anomalies_per_property=8)
    return list(portfolio.rows), list(portfolio.labels)


def baseline_scores(rows: list[dict[str, Any]]) -> dict[Key, float]:
    """REIMS2-style rule per non-total line: trailing-12 z-score and period-over-period change."""
    series: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        if _truthy(r.get("is_total")):
            continue
        series[(r["property_code"], r["document_type"], r["account_code"])][r["period"]] = float(r["amount"])
    out: dict[Key, float] = {}
    for (prop, doc, acct), by_period in series.items():
        periods = sorted(by_period)
        values = np.array([by_period[p] for p in periods])
        for i, p in enumerate(periods):
            score = 0.0
            hist = values[max(0, i - 12) : i]
            if len(hist) >= 3:
                sd = hist.std()
                z = (values[i] - hist.mean()) / sd if sd > 0 else (0.0 if values[i] == hist.mean() else 10.0)
                score = max(score, abs(z) / 2.0)
            if i > 0 and values[i - 1] != 0:
                change = abs(values[i] - values[i - 1]) / abs(values[i - 1])
                score = max(score, change / 0.15)
            out[(prop, doc, p, acct)] = score
    return out


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in ("true", "1", "yes"))


def evaluate(name: str, scores: dict[Key, float], flagged: set[Key], labels: dict[Key, str]) -> dict[str, Any]:
    keys = list(set(scores) | set(labels))
    y = np.array([k in labels for k in keys])
    s = np.array([scores.get(k, 0.0) for k in keys])
    f = np.array([k in flagged for k in keys])
    tp = int((f & y).sum())
    fp = int((f & ~y).sum())
    fn = int((~f & y).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    auc_pr = float(average_precision_score(y, s))
    prec_curve, rec_curve, _ = precision_recall_curve(y, s)
    precision_at_recall_90 = float(prec_curve[rec_curve >= 0.90].max()) if (rec_curve >= 0.90).any() else 0.0
    per_kind: dict[str, tuple[int, int]] = {}
    for kind in sorted(set(labels.values())):
        kk = [k for k, v in labels.items() if v == kind]
        per_kind[kind] = (sum(k in flagged for k in kk), len(kk))
    return {
        "name": name,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc_pr": auc_pr,
        "precision_at_recall_90": precision_at_recall_90,
        "per_kind": per_kind,
    }


def print_report(res: dict[str, Any]) -> None:
    print(f"== {res['name']}")
    print(
        f"  precision {res['precision']:.3f}  recall {res['recall']:.3f}  F1 {res['f1']:.3f}  "
        f"AUC-PR {res['auc_pr']:.3f}  (tp {res['tp']}, fp {res['fp']}, fn {res['fn']}; "
        f"precision at recall>=0.90: {res['precision_at_recall_90']:.3f})"
    )
    for kind, (hit, total) in res["per_kind"].items():
        print(f"  recall {kind:<18} {hit / max(total, 1):.2f}  ({hit}/{total})")


def meets_targets(res: dict[str, Any]) -> bool:
    return (
        res["precision_at_recall_90"] >= 0.93
        and res["auc_pr"] >= 0.88
        and all(h / max(t, 1) >= 0.80 for h, t in res["per_kind"].values())
    )


def run_generator(generator: str, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ours, baseline) on one generator's portfolio, with the details printed."""
    rows, raw_labels = load_portfolio(generator, args.properties, args.months, args.seed)
    labels: dict[Key, str] = {
        (str(lab["property_code"]), str(lab["document_type"]), str(lab["period"]), str(lab["account_code"])): str(
            lab["anomaly_kind"]
        )
        for lab in raw_labels
    }
    table, codes = _adapted(rows)
    started = time.perf_counter()
    result = detect_anomalies(table, use_pyod=not args.no_pyod, seed=args.seed)
    elapsed = time.perf_counter() - started
    scores, flagged = predictions(table, codes, result)
    base = baseline_scores(rows)
    ours = evaluate("REIMS Anomaly" + (" (statistical only)" if args.no_pyod else ""), scores, flagged, labels)
    theirs = evaluate(
        "REIMS2 baseline (|z|>2 trailing 12 or change >15%)", base, {k for k, v in base.items() if v > 1.0}, labels
    )
    print(
        f"portfolio: generator={generator} properties={args.properties} months={args.months} "
        f"seed={args.seed}; {table.n_rows} lines ({int((~table.is_total).sum())} non-total), {len(labels)} labels; "
        f"detection {elapsed:.1f}s"
    )
    print_report(ours)
    print_report(theirs)
    footing = list(result.statement_findings)
    print(
        f"statement findings: {len(footing)} ({sum(sf.anomaly_type == 'footing' for sf in footing)} footing, "
        f"{sum(sf.anomaly_type == 'balance_mismatch' for sf in footing)} balance); "
        f"timings ms: {result.timings_ms}"
    )
    if args.show_errors:
        fps = sorted((k for k in flagged if k not in labels), key=lambda k: -scores.get(k, 0))[: args.show_errors]
        fns = [(k, v) for k, v in labels.items() if k not in flagged][: args.show_errors]
        print("false positives:", *fps, sep="\n  ")
        print("false negatives:", *(f"{k} {v} score={scores.get(k, 0):.1f}" for k, v in fns), sep="\n  ")
    return ours, theirs


def _adapted(rows: list[dict[str, Any]]) -> tuple[Any, np.ndarray]:
    adapted = line_table_from_rows(rows)
    return adapted.table, adapted.property_codes


def predictions(table: Any, codes: np.ndarray, result: Any) -> tuple[dict[Key, float], set[Key]]:
    """Score and flag per (property, document type, period, account), absent postings included."""

    def key_of(row: int) -> Key:
        return (
            str(codes[table.property_ids[row]]),
            str(table.document_types[row]),
            period_to_string(int(table.periods[row])),
            str(table.account_codes[row]),
        )

    scores: dict[Key, float] = {}
    flagged: set[Key] = set()
    for row in np.flatnonzero(result.scored & ~table.is_total):
        k = key_of(int(row))
        scores[k] = float(result.anomaly_score[row])
        if result.is_anomaly[row]:
            flagged.add(k)
    for sf in result.statement_findings:  # footing / balance findings sit on total rows
        k = key_of(sf.row)
        scores[k] = float(result.anomaly_score[sf.row])
        flagged.add(k)
    for f in result.findings:
        if f.row < 0:
            k = (str(codes[f.property_id]), f.document_type, period_to_string(f.period), f.account_code)
            scores[k] = f.anomaly_score
            flagged.add(k)
    return scores, flagged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--properties", type=int, default=20)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--generator", choices=("both", "demo", "independent"), default="both")
    parser.add_argument("--no-pyod", action="store_true", help="statistical detectors only (FEATURE_FLAG_PYOD off)")
    parser.add_argument("--show-errors", type=int, default=0, help="print this many false positives / negatives")
    parser.add_argument("--ablation", action="store_true", help="also print benchmarks/ablation.py's table")
    args = parser.parse_args(argv)
    generators = ("demo", "independent") if args.generator == "both" else (args.generator,)
    if args.ablation:
        from benchmarks.ablation import ablation, print_ablation

        for generator in generators:
            print_ablation(generator, ablation(generator, args.properties, args.months, args.seed))
    results = {g: run_generator(g, args) for g in generators}
    kinds = sorted({k for ours, _ in results.values() for k in ours["per_kind"]})
    header = "".join(f"{g + ' ours':>18}{g + ' REIMS2':>18}" for g in generators)
    print(f"\n{'metric':<28}{header}")

    def line(name: str, cell: Callable[[dict[str, Any]], str], target: str = "") -> None:
        cells = "".join(f"{cell(ours):>18}{cell(base):>18}" for ours, base in results.values())
        print(f"{name:<28}{cells}   {target}")

    line("precision", lambda r: f"{r['precision']:.3f}")
    line("recall", lambda r: f"{r['recall']:.3f}")
    line("F1", lambda r: f"{r['f1']:.3f}")
    line("AUC-PR", lambda r: f"{r['auc_pr']:.3f}", "target >= 0.88")
    line("precision at recall>=0.90", lambda r: f"{r['precision_at_recall_90']:.3f}", "target >= 0.93")
    for kind in kinds:
        line(
            f"recall {kind}",
            lambda r, kind=kind: (
                f"{r['per_kind'][kind][0] / max(r['per_kind'][kind][1], 1):.2f} ({r['per_kind'][kind][0]}/{r['per_kind'][kind][1]})"
                if kind in r["per_kind"]
                else "-"
            ),
            "target >= 0.80",
        )
    met = {g: meets_targets(ours) for g, (ours, _) in results.items()}
    print(
        f"load average {os.getloadavg()[0]:.2f}; targets "
        + ", ".join(f"{g}: {'met' if ok else 'NOT met'}" for g, ok in met.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
