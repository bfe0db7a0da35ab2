"""The PyOD step: per series, a detector selected (rules / LLM / cross-validation), trained
through the model provider (the model cache) and applied to every period of the series."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .characteristics import series_characteristics
from .detectors import MODEL_VERSION, FittedModel, train_model
from .features import FEATURE_NAMES, AnomalyFeatureEngineer, compute_context
from .provider import ModelProvider, ModelRequest, SeriesModelKey
from .selection import LLMConfig, ModelSelection, select_optimal_model_llm
from .table import BoolArray, FloatArray, IntArray, ObjArray, SeriesPanel

MIN_HISTORY = 4  # series with 1-3 points are reported as insufficient history, not modelled
CV_INJECTIONS = ("decimal_shift", "sign_flip", "spike", "duplicate")


@dataclass
class SelectionRecord:
    key: SeriesModelKey
    selection: ModelSelection


@dataclass(frozen=True)
class SeriesModels:
    """Per series: the detector that judged it, its model key and version, its threshold."""

    detector: ObjArray
    model_key: ObjArray
    version: ObjArray
    threshold: FloatArray

    @classmethod
    def statistical(cls, n_series: int) -> SeriesModels:
        """Every series judged by the statistics alone (until a PyOD model is applied)."""
        return cls(
            detector=np.full(n_series, "statistical:robust_z", dtype=object),
            model_key=np.full(n_series, "", dtype=object),
            version=np.full(n_series, f"{MODEL_VERSION}:robust_z", dtype=object),
            threshold=np.full(n_series, 5.0),
        )


def synthetic_anomaly_rows(panel: SeriesPanel, series: IntArray, seed: int) -> dict[int, FloatArray]:
    """Feature rows of each given series with one synthetic error injected per kind.

    The errors (x10, sign flip, x4 spike, x2) are injected into copies of the amount series and
    the features recomputed for all copies in one vectorised pass, so cross-validation sees the
    errors exactly as detection would.
    """
    kinds = len(CV_INJECTIONS)
    values = np.repeat(panel.values[series], kinds, axis=0)
    positions = np.zeros(len(values), dtype=np.int64)
    for j, s in enumerate(series):
        # One generator per series, seeded by the series' identity: its injections do not depend
        # on which other series are cross-validated in the same pass.
        rng = np.random.default_rng(series_seed(panel, int(s), seed))
        obs = np.flatnonzero(np.isfinite(panel.values[s]) & (panel.values[s] != 0))
        for k in range(kinds):
            positions[j * kinds + k] = rng.choice(obs) if len(obs) else 0
    factors = np.tile(np.array([10.0, -1.0, 4.0, 2.0]), len(series))
    rows_idx = np.arange(len(values))
    values[rows_idx, positions] *= factors
    mini = SeriesPanel(
        period0=panel.period0,
        values=values,
        rows=np.where(np.isfinite(values), 0, -1),
        document_present=np.repeat(panel.document_present[series], kinds, axis=0),
        property_ids=np.repeat(panel.property_ids[series], kinds),
        property_types=np.repeat(panel.property_types[series], kinds),
        document_types=np.repeat(panel.document_types[series], kinds),
        account_codes=np.repeat(panel.account_codes[series], kinds),
        row_order=np.repeat(panel.row_order[series], kinds),
        document_ids=np.arange(len(values), dtype=np.int64),
        series_of_row=np.empty(0, dtype=np.int64),
    )
    feats = AnomalyFeatureEngineer().transform(compute_context(mini)).values
    return {
        int(s): feats[i * kinds + np.arange(kinds), positions[i * kinds : (i + 1) * kinds]] for i, s in enumerate(series)
    }


def series_seed(panel: SeriesPanel, s: int, seed: int) -> int:
    """A seed per series from its identity (property, document type, account) and the run seed."""
    text = f"{seed}|{int(panel.property_ids[s])}|{panel.document_types[s]}|{panel.account_codes[s]}"
    return zlib.crc32(text.encode())


def _own_span(values: FloatArray) -> FloatArray:
    """The series from its first to its last observed month (the panel may be wider)."""
    idx = np.flatnonzero(np.isfinite(values))
    return values[idx[0] : idx[-1] + 1] if len(idx) else values[:0]


def run_pyod(
    *,
    panel: SeriesPanel,
    feats: FloatArray,
    modelled: BoolArray,
    gate: BoolArray,
    provider: ModelProvider,
    llm: LLMConfig | None,
    seed: int,
    models: SeriesModels,
) -> tuple[FloatArray, list[SelectionRecord]]:
    """Select, train (through the provider) and apply one PyOD detector per modelled series."""
    out = np.zeros(panel.values.shape)
    selections: list[SelectionRecord] = []
    series = np.flatnonzero(modelled)
    # Selection (rules -> LLM -> cross-validation) runs per series, on the series' own history and
    # characteristics only: the choice never depends on which other series share the table.  The
    # synthetic errors of cross-validation are made, the first time a model must be trained, for
    # every series of the call in one vectorised pass (each series with its own seed).
    injected: dict[int, FloatArray] = {}
    requests = {
        int(s): ModelRequest(
            SeriesModelKey(int(panel.property_ids[s]), str(panel.document_types[s]), str(panel.account_codes[s])),
            "auto",
            {"min_history": MIN_HISTORY},
        )
        for s in series
    }
    provider.prefetch(list(requests.values()))  # the call's cached models in bulk
    for s in series:
        observed = panel.rows[s] >= 0
        x = feats[s][observed]
        request = requests[int(s)]
        key = request.series
        selection_box: list[ModelSelection] = []

        def train(s: int = int(s), x: FloatArray = x, box: list[ModelSelection] = selection_box) -> FittedModel:
            if s not in injected:
                pending = np.array([i for i in series if int(i) not in injected], dtype=np.int64)
                injected.update(synthetic_anomaly_rows(panel, pending, seed))
            chars = series_characteristics(_own_span(panel.values[s]), x)
            selection = _select(chars, llm, x, injected[s], seed)
            box.append(selection)
            return train_model(selection.selected_model, x, seed=seed, feature_names=FEATURE_NAMES)

        model = provider.get_or_train(request, x, train)
        if selection_box:
            selections.append(SelectionRecord(key=key, selection=selection_box[0]))
        # PyOD only refines cells the statistics already gate in: a series without one is not
        # scored at all (its result could not change anything).
        if gate[s].any():
            z = model.calibrated_z(feats[s])  # every period of the series in one call
            out[s] = np.where(np.isfinite(z), z, 0.0)
        models.detector[s] = f"pyod:{model.model_type}+robust_z"
        models.model_key[s] = request.model_key  # the key of the cache entry that scored the series
        models.version[s] = model.model_version
        models.threshold[s] = model.threshold
    return out, selections


def _select(
    chars: dict[str, Any], llm: LLMConfig | None, x: FloatArray, x_anomalies: FloatArray, seed: int
) -> ModelSelection:
    """Model selection for one series, from its own characteristics and history only."""
    return select_optimal_model_llm(chars, llm=llm, x_history=x, x_anomalies=x_anomalies, seed=seed)
