"""The feature tensor of every series and period (the PyOD detectors' input).

The context of each cell (predictions, scales, evidence) is computed by :mod:`.context`; this
module turns it into named features.  ``compute_context``, ``SeriesContext`` and the error
signature codes are re-exported here, their historical import path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernel.vocabulary import (
    PATTERN_DECIMAL,
    PATTERN_DUPLICATE,
    PATTERN_MISSING,
    PATTERN_NAMES,
    PATTERN_NONE,
    PATTERN_SIGN,
)

from .arrays import MAD_TO_SIGMA, TRAILING_WINDOW, first_finite, nanmedian_last, shift, window
from .context import (
    LOCAL_PREDICTORS,
    SEASONAL_PREDICTORS,
    SeriesContext,
    compute_context,
)
from .peers import PeerStats
from .table import BoolArray, FloatArray, LineTable, SeriesPanel, build_panel

__all__ = [
    "FEATURE_NAMES",
    "PATTERN_DECIMAL",
    "PATTERN_DUPLICATE",
    "PATTERN_MISSING",
    "PATTERN_NAMES",
    "PATTERN_NONE",
    "PATTERN_SIGN",
    "AnomalyFeatureEngineer",
    "FeatureSet",
    "SeriesContext",
    "compute_context",
]


@dataclass(frozen=True)
class FeatureSet:
    """A (series, period, feature) tensor with its feature names."""

    values: FloatArray
    names: tuple[str, ...]

    def series_matrix(self, s: int, mask: BoolArray | None = None) -> FloatArray:
        x = self.values[s]
        return x if mask is None else x[mask]


FEATURE_NAMES = (
    "level",
    "log_magnitude",
    "change",
    "pct_change",
    "yoy_ratio",
    "trailing_robust_z",
    "seasonal_residual_z",
    "local_residual_z",
    "decimal_shift",
    "sign_mismatch",
    "document_share",
    "peer_z",
)
# Part of every model cache key (detection.provider): bump it when a feature's formula changes, so
# that models fitted on the old features are no longer served.
FEATURE_VERSION = "1"


class AnomalyFeatureEngineer:
    """Computes the feature tensor of DESIGN.md §1 for every series of a table at once."""

    feature_names: tuple[str, ...] = FEATURE_NAMES

    def transform_table(self, table: LineTable, peers: PeerStats | None = None) -> tuple[SeriesContext, FeatureSet]:
        """Context and features of a table; ``peers`` default to the table's own (the table is the
        portfolio)."""
        panel = build_panel(table)
        ctx = compute_context(panel, peers if peers is not None else PeerStats.from_table(table))
        return ctx, self.transform(ctx)

    def transform(self, ctx: SeriesContext) -> FeatureSet:
        panel = ctx.panel
        v = panel.values
        y = ctx.y
        n_s, n_t = v.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            prev = shift(v, 1)
            change = v - prev
            pct = np.where(np.abs(prev) > 0, change / np.abs(prev), 0.0)
            yoy_base = shift(v, 12)
            yoy = np.where(np.abs(yoy_base) > 0, v / yoy_base, 1.0)
            log_mag = np.sign(v) * np.log1p(np.abs(v))

            trail = window(v, range(1, TRAILING_WINDOW + 1))
            t_med = nanmedian_last(trail, 3)
            t_mad = MAD_TO_SIGMA * nanmedian_last(np.abs(trail - t_med[..., None]), 3)
            t_scale = np.maximum(t_mad, 0.01 * np.abs(t_med) + 1e-9)
            trailing_z = (v - t_med) / t_scale

            seas_z = (y - first_finite(ctx.predictions, SEASONAL_PREDICTORS)) / ctx.sigmas["season_centre"][:, None]
            loc_z = (y - first_finite(ctx.predictions, LOCAL_PREDICTORS)) / ctx.sigmas["centre"][:, None]

            decimal = decimal_shift_closeness(v, ctx.expected)
            sign_mismatch = ((np.sign(v) * ctx.usual_sign[:, None]) < 0).astype(np.float64)
            share = document_share(panel)
            peer = peer_robust_z(panel, ctx, share)
        feats = np.stack(
            [y, log_mag, change, pct, yoy, trailing_z, seas_z, loc_z, decimal, sign_mismatch, share, peer],
            axis=-1,
        )
        feats = np.nan_to_num(feats, nan=0.0, posinf=1e6, neginf=-1e6)
        feats = np.clip(feats, -1e6, 1e6)
        assert feats.shape == (n_s, n_t, len(FEATURE_NAMES))
        return FeatureSet(values=feats, names=FEATURE_NAMES)


def decimal_shift_closeness(v: FloatArray, expected: FloatArray) -> FloatArray:
    """How close |x / expected| is to a power of ten >= 10 (or <= 0.1): 1 exact, 0 far.

    log10 of the ratio near a nonzero integer is the signature of a misplaced decimal point.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log10(np.abs(v) / np.abs(expected))
        k = np.round(lr)
        dist = np.abs(lr - k)
    close = np.clip(1.0 - dist / 0.25, 0.0, 1.0)
    return np.where(np.isfinite(lr) & (np.abs(k) >= 1), close, 0.0)


def document_share(panel: SeriesPanel) -> FloatArray:
    """Amount / the sum of the magnitudes of its document's lines (non-total), per cell.

    The scale-free weight of a line in its statement, read without account codes: a fee that is a
    fixed share of the document, a line that suddenly dominates it.
    """
    v = np.nan_to_num(panel.values)
    n_docs = int(panel.document_ids.max()) + 1 if panel.n_series else 0
    size = np.zeros((n_docs, panel.n_periods))
    np.add.at(size, panel.document_ids, np.abs(v))
    doc_size = size[panel.document_ids]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(doc_size > 0, v / doc_size, 0.0)


# Smallest peer spread of the scale-free level (amount / the property's usual magnitude).
PEER_LEVEL_FLOOR = 0.05
MIN_PEERS = 4


def peer_robust_z(panel: SeriesPanel, ctx: SeriesContext, share: FloatArray) -> FloatArray:
    """Robust z of a cell against the same account and period across the portfolio.

    Properties differ in size, so the compared quantity is scale-free: the amount over the
    property's own usual magnitude on that account, against the portfolio's median and MAD of
    the same ratio that month (:class:`~.peers.PeerStats`).  This tells a portfolio-wide
    movement (a cold winter raises every utilities line) from a single property's error.
    """
    del share  # kept in the signature: the share is the peer quantity on income lines later
    peers = ctx.peers
    if peers is None or panel.n_series == 0:
        return np.zeros(panel.values.shape)
    groups = peers.group_of(panel.document_types, panel.account_codes)
    med = peers.cells(groups, panel.period0, panel.n_periods, peers.level_median, np.nan)
    mad = peers.cells(groups, panel.period0, panel.n_periods, peers.level_mad, np.nan)
    reporting = peers.cells(groups, panel.period0, panel.n_periods, peers.n_reporting, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = panel.values / ctx.typical[:, None]
        z = (level - med) / np.fmax(mad, PEER_LEVEL_FLOOR)
    return np.where((reporting >= MIN_PEERS) & np.isfinite(z), z, 0.0)


# Change-point test (all non-intermittent series, stocks included): for each candidate period t
# the history is split into the segment before t and the segment from t; each gets its own robust
# level (median) and the noise is the pooled robust spread *inside* the two segments, so a lasting
# shift does not inflate its own yardstick.  Seasonal lines are compared with their calendar
# profile removed (each month's from the other years, around their own segment's level); a steady
# monthly drift (an amortising balance) is removed first.  Only the first period of a material,
