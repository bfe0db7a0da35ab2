"""The invalidation rules of a cached model: expiry, library versions, validation accuracy,
feature count, and distribution drift of the main feature (two-sample KS test)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from modelcache import envelope
from modelcache.models import AnomalyModelCache

# The training sample kept in model_metadata for the drift test (values of the main column).
DRIFT_SAMPLE_MAX = 256
# Below this many finite values on either side a two-sample KS test says nothing useful.
DRIFT_MIN_SAMPLES = 8
DRIFT_P_VALUE = 0.05
# The main feature the drift test watches: column 0 of the engine's feature matrix (the amount).
DRIFT_COLUMN = 0


def _main_column(x: Any, column: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] <= column:
        return np.empty(0)
    col = arr[:, column]
    return col[np.isfinite(col)]


def training_sample(x: Any, *, column: int = DRIFT_COLUMN) -> list[float]:
    """At most DRIFT_SAMPLE_MAX finite values of the main column, evenly spread."""
    values = _main_column(x, column)
    if len(values) > DRIFT_SAMPLE_MAX:
        values = values[np.linspace(0, len(values) - 1, DRIFT_SAMPLE_MAX).round().astype(int)]
    return [float(v) for v in values]


def data_fingerprint(x: Any) -> str:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def drift_reason(sample: list[float] | None, x_new: Any, *, column: int = DRIFT_COLUMN) -> str | None:
    """'drift: ...' when the new main column differs from the training sample (KS p < 0.05)."""
    if not sample or x_new is None:
        return None
    new = _main_column(x_new, column)
    if len(sample) < DRIFT_MIN_SAMPLES or len(new) < DRIFT_MIN_SAMPLES:
        return None
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(sample, dtype=np.float64), new)
    if result.pvalue < DRIFT_P_VALUE:
        return f"drift: KS statistic {result.statistic:.3f}, p={result.pvalue:.4f} on column {column}"
    return None


def expiry_reason(expires_at: datetime | None, now: datetime) -> str | None:
    if expires_at is not None and expires_at <= now:
        return f"expired: older than {settings.MODEL_CACHE_TTL_DAYS} days"
    return None


def n_features(x: Any) -> int:
    arr = np.asarray(x)
    return int(arr.shape[1]) if arr.ndim == 2 else 1


def shape_reason(fitted_features: int | None, x_new: Any) -> str | None:
    # A model fitted on another feature set cannot score this data at all.
    if fitted_features is not None and x_new is not None and n_features(x_new) != fitted_features:
        return f"feature count changed: {fitted_features} -> {n_features(x_new)}"
    return None


def should_invalidate(entry: AnomalyModelCache, *, X_new: Any = None, now: datetime | None = None) -> str | None:  # noqa: N803
    """Why ``entry`` must not be used any more, or None. Cheapest rules first, the KS test last."""
    now = now or timezone.now()
    if not entry.is_active:
        return f"inactive: {entry.invalidated_reason or 'invalidated'}"
    reason = expiry_reason(entry.expires_at, now)
    if reason:
        return reason
    recorded = (entry.model_metadata or {}).get("library_versions") or {}
    changes = envelope.changed_libraries(recorded)
    if changes:
        return "library changed: " + ", ".join(changes)
    minimum = settings.MODEL_CACHE_MIN_VALIDATION_ACCURACY
    if entry.validation_accuracy is not None and entry.validation_accuracy < minimum:
        return f"validation accuracy {entry.validation_accuracy:.3f} below {minimum:.3f}"
    if X_new is not None:
        metadata = entry.model_metadata or {}
        reason = shape_reason(metadata.get("n_features"), X_new)
        if reason:
            return reason
        if metadata.get("training_fingerprint") == data_fingerprint(X_new):
            return None
        return drift_reason(metadata.get("training_sample"), X_new, column=int(metadata.get("drift_column", DRIFT_COLUMN)))
    return None
