"""From evidence (a robust z) to a 0-100 score that means the same on every series.

The evidence of every detector is a z against the series' own robust scale, so one fixed map
makes scores comparable across series: ``score = 100 * z^2 / (z^2 + Z_HALF^2)``.

* is_anomaly: score >= 50, i.e. evidence z >= 5 (Z_HALF).  Monthly ledger residuals are
  heavy-tailed; 5 robust sigmas is rare for a normal month and common for a real error.
* severity among flagged rows: critical >= 90 (z >= 15, e.g. x10, sign flips of stable lines),
  high >= 75 (z >= 8.7), medium >= 60 (z >= 6.1), low otherwise.
"""

from __future__ import annotations

import numpy as np

from .table import FloatArray

Z_HALF = 5.0
FLAG_SCORE = 50.0
SEVERITY_LEVELS = ((90.0, "critical"), (75.0, "high"), (60.0, "medium"))


def score_from_z(z: FloatArray) -> FloatArray:
    z = np.nan_to_num(np.asarray(z, dtype=np.float64), nan=0.0, posinf=1e6)
    z = np.clip(z, 0.0, 1e6)
    return 100.0 * z * z / (z * z + Z_HALF * Z_HALF)


def z_from_score(score: float) -> float:
    s = min(max(score, 0.0), 99.999999) / 100.0
    return float(Z_HALF * np.sqrt(s / (1.0 - s)))


def severity(score: float) -> str:
    for floor, name in SEVERITY_LEVELS:
        if score >= floor:
            return name
    return "low"
