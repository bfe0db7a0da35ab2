"""Data characteristics of a series and of its feature matrix, for model selection."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from .table import FloatArray


def series_characteristics(values: FloatArray, features: FloatArray | None = None) -> dict[str, Any]:
    """n_samples, n_features, seasonality, trend, distribution, volatility and zero share.

    ``values`` is the series' amounts by consecutive month (NaN for gaps); ``features`` the
    feature matrix the detectors will see.  Every figure is finite (0 when not computable), so the
    dict can be stored as JSON and sent to an LLM.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    n = int(finite.size)
    out: dict[str, Any] = {
        "data_type": "tabular",
        "n_samples": n if features is None else int(features.shape[0]),
        "n_features": 1 if features is None else int(features.shape[1]),
        "n_observations": n,
        "zero_share": float(np.mean(finite == 0)) if n else 0.0,
        "negative_share": float(np.mean(finite < 0)) if n else 0.0,
        "seasonality_strength": 0.0,
        "trend_slope_pct": 0.0,
        "trend_r2": 0.0,
        "skewness": 0.0,
        "kurtosis": 0.0,
        "normality_p": 1.0,
        "robust_cv": 0.0,
        "has_nan": bool(np.isnan(v).any()),
    }
    if n < 4:
        return out
    med = float(np.median(finite))
    mad = 1.4826 * float(np.median(np.abs(finite - med)))
    out["robust_cv"] = float(mad / abs(med)) if med else 0.0
    if np.ptp(finite) > 0:
        out["skewness"] = float(np.nan_to_num(stats.skew(finite)))
        out["kurtosis"] = float(np.nan_to_num(stats.kurtosis(finite)))
        if n >= 8:
            out["normality_p"] = float(np.nan_to_num(stats.shapiro(finite).pvalue, nan=1.0))
        t = np.flatnonzero(np.isfinite(v)).astype(np.float64)
        slope, intercept, r, _, _ = stats.linregress(t, finite)
        out["trend_slope_pct"] = float(slope / abs(med) * 100) if med else 0.0
        out["trend_r2"] = float(r * r) if np.isfinite(r) else 0.0
        out["seasonality_strength"] = _seasonality_strength(v)
    return out


def _seasonality_strength(v: FloatArray) -> float:
    """Share of the detrended variance explained by calendar-month means (0..1)."""
    if v.size < 24:
        return 0.0
    t = np.arange(v.size)
    ok = np.isfinite(v)
    # Remove a 12-month centred moving median as the trend, then compare month means to noise.
    padded = np.pad(v, 6, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 13)[: v.size]
    with np.errstate(all="ignore"):
        counts = np.sum(np.isfinite(windows), axis=1)
        trend = np.where(counts > 0, np.nanmedian(np.where(counts[:, None] > 0, windows, 0.0), axis=1), np.nan)
    detrended = v - trend
    ok &= np.isfinite(detrended)
    if ok.sum() < 12:
        return 0.0
    months = t[ok] % 12
    d = detrended[ok]
    total = float(np.var(d))
    if total <= 0:
        return 0.0
    means = np.array([d[months == m].mean() if np.any(months == m) else 0.0 for m in range(12)])
    explained = float(np.var(means[months]))
    return float(np.clip(explained / total, 0.0, 1.0))
