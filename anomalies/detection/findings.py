"""Findings: one reported line (or absent posting) with its explanation and contributions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .explanation import Explanation, explain
from .features import FEATURE_NAMES, SeriesContext
from .modelling import SeriesModels
from .scoring import FLAG_SCORE, severity
from .table import BoolArray, FloatArray, ObjArray, SeriesPanel


@dataclass
class Finding:
    row: int  # table row, -1 for an absent posting
    property_id: int
    document_type: str
    account_code: str
    period: int
    amount: float
    expected_value: float
    z_score: float
    percentage_change: float
    direction: str
    anomaly_score: float
    severity: str
    anomaly_type: str
    detector: str
    model_key: str
    model_version: str
    threshold: float
    contributions: list[dict[str, Any]]
    explanation: Explanation
    related_rows: tuple[int, ...] = ()


@dataclass(frozen=True)
class CellVerdicts:
    """Per (series, period) cell: what detection concluded, ready to be reported."""

    flagged: BoolArray  # (S,T) a line to report
    scores: FloatArray  # (S,T) anomaly score 0-100
    evidence: FloatArray  # (S,T) evidence in robust scales
    anomaly_type: ObjArray  # (S,T)
    partners: dict[tuple[int, int], int]  # misclassification pairs: (series, t) -> partner series
    reportable: BoolArray  # (S,T) modelled and in a scored document (absent postings included)


def contributions_of(x_series: FloatArray, t: int, observed: np.ndarray) -> list[dict[str, Any]]:
    """Each feature's robust distance from the series' own history, as shares of the total."""
    hist = x_series[observed]
    med = np.median(hist, axis=0)
    mad = 1.4826 * np.median(np.abs(hist - med), axis=0)
    scale = np.maximum(mad, 1e-6 + 0.01 * np.abs(med))
    dist = np.abs((x_series[t] - med) / scale)
    dist = np.minimum(dist, 1e3)
    total = float(dist.sum()) or 1.0
    order = np.argsort(-dist)[:5]
    return [
        {
            "feature": FEATURE_NAMES[i],
            "value": round(float(x_series[t, i]), 6),
            "contribution": round(float(dist[i] / total), 4),
        }
        for i in order
        if dist[i] > 0
    ]


def build_findings(
    panel: SeriesPanel, ctx: SeriesContext, feats: FloatArray, verdicts: CellVerdicts, models: SeriesModels
) -> list[Finding]:
    """One Finding per flagged cell, and per absent posting whose document is scored."""
    out: list[Finding] = []
    absent = (panel.rows < 0) & panel.document_present
    scores = verdicts.scores
    report = verdicts.flagged | (absent & (scores >= FLAG_SCORE) & verdicts.reportable)
    for s, t in np.argwhere(report):
        started = time.perf_counter()
        row = int(panel.rows[s, t])
        amount = float(panel.values[s, t])
        expected = float(ctx.expected[s, t])
        kind = "missing" if row < 0 else str(verdicts.anomaly_type[s, t])
        observed = panel.rows[s] >= 0
        contributions = contributions_of(feats[s], int(t), observed)
        partner = verdicts.partners.get((int(s), int(t)))
        explanation = explain(
            kind,
            contributions,
            amount=amount,
            expected=expected,
            computation_time_ms=0.0,
            usual_sign=float(ctx.usual_sign[s]),
            step_ratio=float(ctx.step_ratio[s, t]) if np.isfinite(ctx.step_ratio[s, t]) else None,
            partner_account=str(panel.account_codes[partner]) if partner is not None else None,
            seasonal_family=bool(ctx.use_seasonal[s] and not ctx.use_local[s]),
        )
        explanation.computation_time_ms = round((time.perf_counter() - started) * 1000.0, 3)
        amt = 0.0 if row < 0 else amount
        pct = (amt - expected) / abs(expected) * 100.0 if expected else float("nan")
        out.append(
            Finding(
                row=row,
                property_id=int(panel.property_ids[s]),
                document_type=str(panel.document_types[s]),
                account_code=str(panel.account_codes[s]),
                period=int(panel.period0 + t),
                amount=amount,
                expected_value=expected,
                z_score=float(np.sign(amt - expected) * verdicts.evidence[s, t]),
                percentage_change=pct,
                direction="up" if amt >= expected else "down",
                anomaly_score=float(scores[s, t]),
                severity=severity(float(scores[s, t])),
                anomaly_type=kind,
                detector=str(models.detector[s]),
                model_key=str(models.model_key[s]),
                model_version=str(models.version[s]),
                threshold=float(models.threshold[s]),
                contributions=contributions,
                explanation=explanation,
                related_rows=(int(panel.rows[partner, t]),) if partner is not None else (),
            )
        )
    return out
