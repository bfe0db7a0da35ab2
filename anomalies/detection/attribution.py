"""SHAP attribution of a flagged line's score to named evidence (Django-free).

The engine's score is a function of the evidence a reviewer can name.  This module reads that
evidence from the engine's feature row of each line:

* "vs same month last year": the seasonal residual (robust z against the same calendar month);
* "vs surrounding months": the local residual (robust z against the neighbouring months);
* "x10 signature": the decimal-shift signal (the amount fits once a keying error is undone);
* "peer spread": the distance from the same account at peer properties (robust z);
* "verdicts on this account": the learned confidence, from analysts' verdicts, that this
  evidence is normal here (:mod:`.verdicts`).

and scores it with :func:`evidence_score`, the engine's scoring rule reduced to these five inputs
(context distance is the smaller of the two residuals, as the engine takes the best context
prediction; a signature adds the engine's bonus; peers count at half weight; verdicts discount).
``shap`` (Kernel SHAP over all 32 coalitions of the five inputs, i.e. exact Shapley values,
against background rows of the same pass's unflagged lines) attributes that score; the stored
record says how close it is to the model's own score (``surrogate_score`` beside ``model_score``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .features import FEATURE_NAMES
from .scoring import score_from_z
from .table import FloatArray

EVIDENCE_NAMES = (
    "vs same month last year",
    "vs surrounding months",
    "x10 signature",
    "peer spread",
    "verdicts on this account",
)
_COLUMNS = tuple(
    FEATURE_NAMES.index(name) for name in ("seasonal_residual_z", "local_residual_z", "decimal_shift", "peer_z")
)
SIGNATURE_BONUS = 2.5  # engine: PATTERN_BONUS on a deviation of at least PATTERN_GATE_Z
SIGNATURE_GATE_Z = 3.0
PEER_WEIGHT = 0.5
# Kernel SHAP over all 2^5 coalitions is exact for five inputs, and needs no JIT compilation
# (shap's Exact explainer spends tens of seconds compiling on its first call in each process).
METHOD = "shap.KernelExplainer"
# shap logs every explained row at INFO (its internal sums): keep our logs readable.
logging.getLogger("shap").setLevel(logging.WARNING)
COALITIONS = 2 ** len(EVIDENCE_NAMES)


def evidence_matrix(features: FloatArray, learned_confidence: FloatArray) -> FloatArray:
    """(m, 5) named evidence from (m, len(FEATURE_NAMES)) feature rows and (m,) learned confidences."""
    x = np.abs(np.nan_to_num(np.asarray(features, dtype=np.float64)[:, _COLUMNS], nan=0.0, posinf=1e3, neginf=1e3))
    x = np.minimum(x, 1e3)
    return np.column_stack([x, np.clip(np.asarray(learned_confidence, dtype=np.float64), 0.0, 1.0)])


def evidence_score(evidence: FloatArray) -> FloatArray:
    """The 0-100 score of rows of named evidence (the engine's rule over these five inputs)."""
    e = np.atleast_2d(evidence)
    seasonal, local, signature, peer, verdicts = (e[:, i] for i in range(5))
    context = np.minimum(seasonal, local)
    context = np.where(seasonal == 0, local, np.where(local == 0, seasonal, context))
    z = context + np.where(context >= SIGNATURE_GATE_Z, SIGNATURE_BONUS * np.clip(signature, 0.0, 1.0), 0.0)
    z = np.maximum(z, PEER_WEIGHT * peer)
    return score_from_z(z * (1.0 - np.clip(verdicts, 0.0, 0.9)))


def background_rows(evidence: FloatArray, samples: int, seed: int = 0) -> FloatArray:
    """At most ``samples`` rows, drawn reproducibly."""
    if len(evidence) <= samples:
        return evidence
    rng = np.random.default_rng(seed)
    return evidence[np.sort(rng.choice(len(evidence), size=samples, replace=False))]


def shap_attributions(explained: FloatArray, background: FloatArray, model_scores: FloatArray) -> list[dict[str, Any]]:
    """One JSON-ready record per explained row: each named evidence's Shapley value on the score."""
    import shap

    if len(explained) == 0:
        return []
    if len(background) == 0:
        background = np.zeros((1, len(EVIDENCE_NAMES)))
    explainer = shap.KernelExplainer(evidence_score, background)
    values = np.asarray(explainer.shap_values(explained, nsamples=COALITIONS * 2, silent=True), dtype=np.float64)
    base_value = float(np.ravel(explainer.expected_value)[0])
    surrogate = evidence_score(explained)
    out = []
    for i in range(len(explained)):
        out.append(
            {
                "method": METHOD,
                "base_value": round(base_value, 3),
                "surrogate_score": round(float(surrogate[i]), 3),
                "model_score": round(float(model_scores[i]), 3),
                "background_rows": int(len(background)),
                "attributions": [
                    {
                        "evidence": name,
                        "value": round(float(explained[i, j]), 4),
                        "shap": round(float(values[i, j]), 3),
                    }
                    for j, name in enumerate(EVIDENCE_NAMES)
                ],
            }
        )
    return out
