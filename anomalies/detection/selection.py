"""Model selection: PyOD's routing rules propose, an LLM may re-rank, cross-validation decides.

1. :func:`rule_candidates` evaluates PyOD's own ``routing_rules`` on the data characteristics
   (as ``ADEngine.plan_detection`` does) and keeps the top 3 detectors that are available here
   and cheap enough to fit per series.
2. When an :class:`LLMConfig` is given, the same characteristics and the available catalogue go to
   an OpenAI-compatible chat endpoint that must answer ``{"models": [...], "reasoning": "..."}``.
   Names are validated against the catalogue; any failure falls back to the rules, recording why.
3. :func:`cross_validate_candidates` fits each candidate on the series' own history and measures
   how well it ranks injected synthetic errors (decimal shift, sign flip, spike, x2) above the
   real rows (an AUC); the best one is selected.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .catalogue import AlgorithmInfo, routing_rules, runnable_tabular
from .detectors import train_model
from .table import FloatArray

# Detectors fitted and applied once per series must stay cheap (DESIGN.md §9: a document of 60
# lines is scored in well under 50 ms): PyOD's "low" cost class only.
MAX_COST = "low"
# Among candidates whose cross-validation AUCs are within CV_TIE of the best, the one that is
# cheapest to apply wins (measured scoring cost on 36 x 12 rows, cheapest first).
CV_TIE = 0.02
SCORING_COST_ORDER = ("HBOS", "PCA", "MCD", "GMM", "CBLOF", "LODA", "ECOD", "COPOD")
TOP_K = 3
FALLBACK_ORDER = ("ECOD", "HBOS", "COPOD", "PCA", "KNN")


@dataclass(frozen=True)
class LLMConfig:
    api_key: str
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    timeout_seconds: float = 10.0


@dataclass
class ModelSelection:
    characteristics: dict[str, Any]
    rule_candidates: list[str]
    llm_recommended: list[str] | None
    llm_error: str | None
    selected_model: str
    selection_reasoning: str
    cross_validation_score: float | None
    source: str  # 'rules' | 'llm'
    candidate_scores: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "characteristics": self.characteristics,
            "rule_candidates": self.rule_candidates,
            "llm_recommended": self.llm_recommended,
            "llm_error": self.llm_error,
            "selected_model": self.selected_model,
            "selection_reasoning": self.selection_reasoning,
            "cross_validation_score": self.cross_validation_score,
            "source": self.source,
            "candidate_scores": self.candidate_scores,
        }


def _eval(actual: Any, op: str, value: Any) -> bool:
    # Same operators as PyOD's rule engine (pyod.utils._kb_router.eval_condition).
    if actual is None:
        return False
    if op == "eq":
        return bool(actual == value)
    if op in ("lt", "lte", "gt", "gte"):
        a, b = float(actual), float(value)
        return {"lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op]
    if op == "in":
        return actual in value
    return False


# Per-series detectors are fitted for every series of a portfolio: only those that fit a 36 x 12
# history in under MAX_FIT_MS are candidates.  Fit times measured on our machines (best of three,
# PyOD 3.6.7, one core) are fixed here so that the candidate set does not depend on the load of
# the moment; a detector missing from the table is no candidate until it is measured.
MAX_FIT_MS = 3.5
MEASURED_FIT_MS = {
    "HBOS": 1.7,
    "Sampling": 1.4,
    "COPOD": 1.9,
    "PCA": 2.1,
    "ECOD": 2.8,
    "CBLOF": 4.5,
    "LODA": 7.8,
    "GMM": 8.3,
    "CD": 15.9,
    "MCD": 25.0,
    "LMDD": 29.3,
    "ROD": 375.6,
}


@lru_cache(maxsize=1)
def fast_fitting() -> frozenset[str]:
    """Names of available low-cost detectors whose fit time is below MAX_FIT_MS."""
    # Only measured figures count: timing a detector at run time would make the candidate set
    # (and so the selected models) depend on the machine's load of the moment.
    return frozenset(
        info.name for info in runnable_tabular(MAX_COST) if MEASURED_FIT_MS.get(info.name, float("inf")) < MAX_FIT_MS
    )


def rule_candidates(
    characteristics: dict[str, Any], *, priority: str = "speed", top_k: int = TOP_K
) -> tuple[list[str], str]:
    """Top detectors by PyOD's routing rules, available here and cheap enough: (names, reason)."""
    profile = {"data_type": "tabular", **characteristics}
    allowed = {a.name for a in runnable_tabular(MAX_COST)} & fast_fitting()
    recs: dict[str, tuple[float, str]] = {}
    for rule in routing_rules():
        conds = rule.get("conditions", [])
        if not all(
            _eval(priority if c["field"] == "priority" else profile.get(c["field"]), c["op"], c["value"]) for c in conds
        ):
            continue
        for rec in rule.get("recommendations", []):
            name = rec["detector"]
            conf = float(rec.get("confidence", 0.5))
            if name in allowed and (name not in recs or conf > recs[name][0]):
                recs[name] = (conf, f"{rule['id']}: {rule.get('reason', '')}")
    ranked = sorted(recs.items(), key=lambda kv: -kv[1][0])
    names = [n for n, _ in ranked][:top_k]
    reasons = [f"{n} ({recs[n][1]})" for n in names]
    for name in FALLBACK_ORDER:  # PyOD's own fallback order, when rules give fewer than top_k
        if len(names) >= top_k:
            break
        if name in allowed and name not in names:
            names.append(name)
            reasons.append(f"{name} (fallback)")
    return names, "; ".join(reasons)


def build_llm_prompt(characteristics: dict[str, Any], catalogue: list[AlgorithmInfo]) -> str:
    lines = [
        "You choose outlier detectors for one monthly series of a real-estate financial statement.",
        "Each row is one month; features are amount level, changes, seasonal and local residuals,",
        "decimal-shift and sign signals, revenue share and peer distance.",
        "Data characteristics (JSON):",
        json.dumps(characteristics, sort_keys=True, default=float),
        "Available PyOD detectors (name | family | cost | best for):",
    ]
    lines += [f"- {a.name} | {a.family} | {a.cost} | {a.best_for}" for a in catalogue]
    lines.append(
        'Answer with JSON only: {"models": [three names from the list, best first], "reasoning": "one or two sentences"}'
    )
    return "\n".join(lines)


def ask_llm(characteristics: dict[str, Any], llm: LLMConfig) -> tuple[list[str], str]:
    """Ask the LLM for three detectors; raise ValueError/openai errors on any failure."""
    import openai

    catalogue = [a for a in runnable_tabular(MAX_COST) if a.name in fast_fitting()]
    allowed = {a.name for a in catalogue}
    client = openai.OpenAI(api_key=llm.api_key, base_url=llm.base_url, timeout=llm.timeout_seconds, max_retries=0)
    response = client.chat.completions.create(
        model=llm.model,
        messages=[
            {"role": "system", "content": "You are an anomaly-detection expert. Reply with JSON only."},
            {"role": "user", "content": build_llm_prompt(characteristics, catalogue)},
        ],
        response_format={"type": "json_object"},
        temperature=0,
    )
    content = response.choices[0].message.content or ""
    try:
        payload = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON from LLM: {exc.msg}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("models"), list):
        raise ValueError("LLM answer has no 'models' list")
    names = [str(m) for m in payload["models"]]
    unknown = [m for m in names if m not in allowed]
    known = [m for m in names if m in allowed]
    if unknown and not known:
        raise ValueError(f"LLM recommended no available detector (unknown: {', '.join(unknown)})")
    if not known:
        raise ValueError("LLM recommended an empty list")
    reasoning = str(payload.get("reasoning", ""))
    if unknown:
        reasoning += f" [ignored unknown or unavailable: {', '.join(unknown)}]"
    return known[:TOP_K], reasoning


def select_optimal_model_llm(
    characteristics: dict[str, Any],
    *,
    llm: LLMConfig | None,
    x_history: FloatArray | None = None,
    x_anomalies: FloatArray | None = None,
    seed: int = 0,
) -> ModelSelection:
    """Rules propose, the LLM (if configured) re-ranks, cross-validation on the history decides."""
    rules, rule_reason = rule_candidates(characteristics)
    llm_models: list[str] | None = None
    llm_error: str | None = None
    llm_reason = ""
    if llm is not None:
        started = time.perf_counter()
        try:
            llm_models, llm_reason = ask_llm(characteristics, llm)
        except Exception as exc:  # noqa: BLE001 - every failure falls back to the rules
            llm_error = f"{type(exc).__name__}: {exc}"[:500]
            llm_error += f" (after {time.perf_counter() - started:.1f}s; fell back to rules)"
    candidates = llm_models if llm_models else rules
    source = "llm" if llm_models else "rules"
    scores: dict[str, float] = {}
    if x_history is not None and x_anomalies is not None and len(x_history) >= 4:
        scores = cross_validate_candidates(x_history, candidates, seed, x_anomalies=x_anomalies)
    if scores:
        best = max(scores.values())
        near = [n for n in candidates if scores.get(n, -1.0) >= best - CV_TIE]
        selected = min(
            near,
            key=lambda n: (
                SCORING_COST_ORDER.index(n) if n in SCORING_COST_ORDER else len(SCORING_COST_ORDER),
                candidates.index(n),
            ),
        )
        cv: float | None = scores.get(selected)
    else:
        selected, cv = candidates[0], None
    reason = f"LLM: {llm_reason}" if source == "llm" else f"Rules: {rule_reason}"
    if scores:
        reason += "; cross-validation AUC " + ", ".join(f"{k}={v:.3f}" for k, v in scores.items())
    return ModelSelection(
        characteristics=characteristics,
        rule_candidates=rules,
        llm_recommended=llm_models,
        llm_error=llm_error,
        selected_model=selected,
        selection_reasoning=reason,
        cross_validation_score=cv,
        source=source,
        candidate_scores=scores,
    )


def cross_validate_candidates(
    x_history: FloatArray, candidates: list[str], seed: int, *, x_anomalies: FloatArray | None = None
) -> dict[str, float]:
    """AUC of each candidate at ranking injected anomalies above the series' own rows.

    ``x_anomalies`` are feature rows of the same series with synthetic errors injected (see
    :func:`anomalies.detection.engine.synthetic_anomaly_rows`); without them, rows are perturbed
    in feature space (one robust-scaled feature moved by 8 spreads).  A candidate that fails to
    fit scores -1 and is never selected.
    """
    x_history = np.asarray(x_history, dtype=np.float64)
    if x_anomalies is None:
        x_anomalies = _perturbed_rows(x_history, seed)
    out: dict[str, float] = {}
    for name in candidates:
        try:
            model = train_model(name, x_history, seed=seed)
            neg = model.decision_function(x_history)
            pos = model.decision_function(x_anomalies)
        except Exception:  # noqa: BLE001 - a detector that cannot fit this data loses
            out[name] = -1.0
            continue
        out[name] = _auc(pos, neg)
    return out


def _auc(pos: FloatArray, neg: FloatArray) -> float:
    if len(pos) == 0 or len(neg) == 0:
        return 0.5
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def _perturbed_rows(x: FloatArray, seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    med = np.median(x, axis=0)
    spread = np.maximum(np.percentile(x, 75, axis=0) - np.percentile(x, 25, axis=0), 1e-6)
    rows = x[rng.integers(0, len(x), size=8)].copy()
    cols = rng.integers(0, x.shape[1], size=8)
    signs = rng.choice([-1.0, 1.0], size=8)
    rows[np.arange(8), cols] = med[cols] + signs * 8 * spread[cols]
    return rows
