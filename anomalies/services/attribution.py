"""SHAP values of flagged lines (SHAP_ENABLED), stored in anomaly_explanations.shap_values.

The numbers live in the Django-free :mod:`anomalies.detection.attribution`; this module picks the
lines to explain (flagged series lines; statement arithmetic is its own explanation), the pass's
background rows (XAI_BACKGROUND_SAMPLES of the context's unflagged lines) and writes the records
into each line's explanation.  With the flag off nothing is computed and nothing stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from django.conf import settings

from anomalies.detection import attribution
from anomalies.services.results import ScoredLine
from kernel.flags import FeatureFlags


def lines_attribute(*, lines: Sequence[ScoredLine], background: np.ndarray | None) -> int:
    """Attach SHAP values to the explanation of each flagged series line; returns how many."""
    if not FeatureFlags.is_enabled("SHAP_ENABLED"):
        return 0
    explained = [line for line in lines if line.is_anomaly and line.features is not None and line.explanation]
    if not explained:
        return 0
    started = time.perf_counter()

    def confidence(line: ScoredLine) -> float:
        return float((line.contributions.get("learned") or {}).get("confidence", 0.0))

    rows = attribution.evidence_matrix(
        np.vstack([line.features for line in explained]), np.array([confidence(line) for line in explained])
    )
    base = np.zeros((0, len(attribution.EVIDENCE_NAMES)))
    if background is not None and len(background):
        base = attribution.evidence_matrix(background, np.zeros(len(background)))
    base = attribution.background_rows(base, int(settings.XAI_BACKGROUND_SAMPLES))
    records = attribution.shap_attributions(rows, base, np.array([line.anomaly_score for line in explained]))
    share_ms = (time.perf_counter() - started) * 1000.0 / len(explained)
    for line, record in zip(explained, records, strict=True):
        assert line.explanation is not None
        line.explanation["shap_values"] = record
        line.explanation["computation_time_ms"] = round(
            float(line.explanation.get("computation_time_ms", 0.0)) + share_ms, 3
        )
    return len(explained)
