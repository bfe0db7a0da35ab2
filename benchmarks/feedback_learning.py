"""Do analysts' verdicts teach the next pass?  Third-year false positives and recall, before and after.

    python benchmarks/feedback_learning.py [--generator demo|independent|both] [--properties 20]
                                           [--months 36] [--seed 7] [--no-pyod] [--extra-verdicts 10000]

On each generator (documents/demo/generator.py, anomalies/tests/detection/synthetic_portfolio.py):

1. load the portfolio into a database of its own (var/bench_feedback_<generator>.sqlite3 unless
   DATABASE_URL is set) and detect (``detection_run``, flags as configured);
2. a simulated analyst gives the true verdict (from the labels) on every flagged line of each
   property's second year, through the HTTP API (POST /api/v1/anomalies/{id}/feedback, DRF's
   test client, a user with the feedback permission only);
3. detect again and print the third year's false positives and recall, before and after, beside
   the targets: false positives down >= 50 %, recall down <= 0.01;
4. with ``--extra-verdicts N``: N more verdicts on unflagged lines, and the pass time with them
   against the pass time without (target: <= 1.10x).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")
_OWN_DB = "DATABASE_URL" not in os.environ
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench_feedback.sqlite3'}")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from anomalies.models import AnomalyDetection, AnomalyFeedback, DetectionStatus  # noqa: E402
from anomalies.services import detection_run  # noqa: E402
from anomalies.tests.factories import load_rows  # noqa: E402
from benchmarks.quality import load_portfolio  # noqa: E402
from documents.models import LineItem, Property  # noqa: E402
from reims.testing import grant_default_portfolio  # noqa: E402

Key = tuple[str, str, str, str]
FP_TARGET = 0.50
RECALL_TARGET = 0.01
SLOWDOWN_TARGET = 1.10


def _year(period: str, first_year: int) -> int:
    return int(period[:4]) - first_year


def flagged_keys(year: int, first_year: int) -> dict[Key, int]:
    """Lines alarming now (flagged and not suppressed) in the given year: key -> detection id."""
    rows = (
        AnomalyDetection.objects.filter(is_anomaly=True)
        .exclude(status=DetectionStatus.SUPPRESSED)
        .values_list("id", "property__code", "document_type", "period__year", "period__month", "account_code")
    )
    return {(p, d, f"{y:04d}-{m:02d}", a): i for i, p, d, y, m, a in rows if y - first_year == year}


def year_figures(labels: dict[Key, str], year: int, first_year: int) -> tuple[int, float, int]:
    flagged = flagged_keys(year, first_year)
    truth = {k for k in labels if _year(k[2], first_year) == year}
    fp = sum(1 for k in flagged if k not in labels)
    recall = len(truth & set(flagged)) / max(len(truth), 1)
    return fp, recall, len(truth)


def analyst_client() -> APIClient:
    user, _ = User.objects.get_or_create(username="bench-analyst")
    user.user_permissions.add(Permission.objects.get(codename="add_anomalyfeedback"))
    grant_default_portfolio(user)  # the generators' properties land in the default portfolio
    client = APIClient()
    client.force_authenticate(user=User.objects.get(pk=user.pk))
    return client


def give_verdicts(labels: dict[Key, str], year: int, first_year: int) -> tuple[int, int]:
    client = analyst_client()
    confirmed = dismissed = 0
    for key, det_id in sorted(flagged_keys(year, first_year).items()):
        verdict = "confirmed" if key in labels else "false_positive"
        response = client.post(f"/api/v1/anomalies/{det_id}/feedback", {"feedback_type": verdict}, format="json")
        if response.status_code != 201:
            raise SystemExit(f"feedback on {key} answered {response.status_code}: {response.content[:300]!r}")
        confirmed += verdict == "confirmed"
        dismissed += verdict != "confirmed"
    return confirmed, dismissed


def extra_verdicts(n: int) -> int:
    """N dismissals on unflagged lines (several analysts), as a portfolio with a long review history has."""
    users = [User.objects.get_or_create(username=f"bench-reviewer-{i}")[0] for i in range(max(1, n // 5000 + 1))]
    lines = list(
        LineItem.objects.filter(document__is_latest=True, is_total=False)
        .values_list("document__property_id", "document__document_type", "document__period_id", "account_code", "amount")
        .order_by("id")[: n // len(users) + 1]
    )
    rows = []
    for user in users:
        for prop, doc, period, account, amount in lines:
            if len(rows) >= n:
                break
            rows.append(
                AnomalyFeedback(
                    user=user,
                    property_id=prop,
                    document_type=doc,
                    period_id=period,
                    account_code=account,
                    field_value=amount,
                    feedback_type="dismissed",
                    is_anomaly=False,
                    anomaly_type="spike",
                    model_score=55.0,
                )
            )
    AnomalyFeedback.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def timed_pass() -> float:
    started = time.perf_counter()
    detection_run(all_documents=True)
    return time.perf_counter() - started


def run(generator: str, args: argparse.Namespace) -> dict[str, Any]:
    rows, raw_labels = load_portfolio(generator, args.properties, args.months, args.seed)
    labels: dict[Key, str] = {
        (str(r["property_code"]), str(r["document_type"]), str(r["period"]), str(r["account_code"])): str(r["anomaly_kind"])
        for r in raw_labels
    }
    first_year = min(int(r["period"][:4]) for r in rows)
    AnomalyFeedback.objects.all().delete()
    Property.objects.all().delete()
    load_rows(rows)
    first = timed_pass()
    fp_before, recall_before, n_truth = year_figures(labels, 2, first_year)
    confirmed, dismissed = give_verdicts(labels, 1, first_year)
    second = timed_pass()
    fp_after, recall_after, _ = year_figures(labels, 2, first_year)
    out = {
        "generator": generator,
        "first_pass_s": first,
        "second_pass_s": second,
        "confirmed": confirmed,
        "dismissed": dismissed,
        "fp_before": fp_before,
        "fp_after": fp_after,
        "recall_before": recall_before,
        "recall_after": recall_after,
        "labels_year3": n_truth,
        "applied": AnomalyFeedback.objects.filter(learned_applied=True).count(),
        "quieted": sum(AnomalyFeedback.objects.values_list("similar_anomalies_suppressed", flat=True)),
    }
    if args.extra_verdicts:
        baseline = timed_pass()
        out["extra"] = extra_verdicts(args.extra_verdicts)
        out["with_extra_s"] = timed_pass()
        out["baseline_s"] = baseline
    return out


def report(res: dict[str, Any]) -> bool:
    fp_drop = 1.0 - res["fp_after"] / res["fp_before"] if res["fp_before"] else 0.0
    recall_drop = res["recall_before"] - res["recall_after"]
    fp_ok = res["fp_before"] == 0 or fp_drop >= FP_TARGET
    recall_ok = recall_drop <= RECALL_TARGET
    print(f"== generator {res['generator']}")
    print(
        f"  second-year verdicts through the API: {res['confirmed']} confirmed, {res['dismissed']} false positives; "
        f"applied {res['applied']}, other lines quieted {res['quieted']}"
    )
    print(
        f"  third-year false positives: {res['fp_before']} before, {res['fp_after']} after "
        f"(down {fp_drop:.0%}; target >= {FP_TARGET:.0%})  {'ok' if fp_ok else 'NOT met'}"
    )
    print(
        f"  third-year recall ({res['labels_year3']} labels): {res['recall_before']:.3f} before, "
        f"{res['recall_after']:.3f} after (down {recall_drop:+.3f}; target <= {RECALL_TARGET})  "
        f"{'ok' if recall_ok else 'NOT met'}"
    )
    print(f"  passes: {res['first_pass_s']:.1f}s first, {res['second_pass_s']:.1f}s with the verdicts")
    ok = fp_ok and recall_ok
    if "extra" in res:
        ratio = res["with_extra_s"] / res["baseline_s"]
        speed_ok = ratio <= SLOWDOWN_TARGET
        ok = ok and speed_ok
        print(
            f"  with {res['extra']} more verdicts: {res['with_extra_s']:.1f}s against {res['baseline_s']:.1f}s "
            f"= {ratio:.2f}x (target <= {SLOWDOWN_TARGET}x)  {'ok' if speed_ok else 'NOT met'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", choices=("demo", "independent", "both"), default="both")
    parser.add_argument("--properties", type=int, default=20)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-pyod", action="store_true", help="FEATURE_FLAG_PYOD off")
    parser.add_argument("--extra-verdicts", type=int, default=0)
    args = parser.parse_args(argv)
    if args.no_pyod:
        os.environ["FEATURE_FLAG_PYOD"] = "false"
    call_command("migrate", verbosity=0)
    print(
        f"database {os.environ['DATABASE_URL'] if not _OWN_DB else 'var/bench_feedback.sqlite3'}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; PyOD {'off' if args.no_pyod else 'as configured'}"
    )
    generators = ("demo", "independent") if args.generator == "both" else (args.generator,)
    ok = True
    for generator in generators:
        ok = report(run(generator, args)) and ok
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
