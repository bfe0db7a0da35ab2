"""Model selection: PyOD's routing rules propose, an LLM may re-rank, cross-validation decides.

1. :func:`rule_candidates` evaluates PyOD's own ``routing_rules`` on the data characteristics
   (as ``ADEngine.plan_detection`` does) and keeps the top 3 detectors that are available here
   and cheap enough to fit per series.
2. When an :class:`LLMConfig` is given, the seed's prompt (DESIGN.md section 12), filled with the
   series' rounded characteristics and the available catalogue, goes to an OpenAI-compatible chat
   endpoint, once per distinct profile (cached).  Any answer shape real models give is read (a
   list, or an object holding one; the name under "algorithm"/"name"/"model" in any case, or a
   full name such as "Isolation Forest"); any failure falls back to the rules, recording why.
3. :func:`cross_validate_candidates` fits each candidate on the series' own history and measures
   how well it ranks injected synthetic errors (decimal shift, sign flip, spike, x2) above the
   real rows (an AUC); the best one is selected.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
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
    llm_recommended: list[dict[str, Any]] | None  # every recommendation with its four fields
    llm_error: str | None
    selected_model: str
    selection_reasoning: str
    cross_validation_score: float | None
    source: str  # 'rules' | 'llm' | 'cache' (the LLM's answer for the same profile, asked earlier)
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


# The seed's prompt, as written (DESIGN.md section 12).
PROMPT_TEMPLATE = """Given the following data characteristics:
- Sample size: {sample_size}
- Features: {feature_count}
- Seasonality detected: {has_seasonality}
- Trend detected: {has_trend}
- Distribution: {distribution_type}
- Volatility: {volatility_level}

Recommend the top 3 PyOD anomaly detection algorithms from this list:
{available_algorithms}

For each recommendation, provide:
1. Algorithm name
2. Why it's suitable for this data
3. Expected performance
4. Computational cost

Format as JSON."""

# Keys real models use for the four fields of a recommendation (compared case-insensitively).
NAME_KEYS = ("algorithm", "name", "model", "algorithm_name", "algorithm name", "detector")
FIELD_KEYS = {
    "reason": ("why", "reason", "suitab", "rationale", "justification"),
    "expected_performance": ("perform",),
    "computational_cost": ("cost", "complexity"),
}
LLM_CACHE_SIZE = 1024
_llm_cache: OrderedDict[tuple[Any, ...], LLMAnswer] = OrderedDict()
_llm_cache_lock = threading.Lock()


@dataclass(frozen=True)
class LLMAnswer:
    """One LLM consultation for a profile: its recommendations, or why its answer was discarded."""

    recommendations: tuple[dict[str, Any], ...]  # all four fields each, names as given
    models: tuple[str, ...]  # the recommended names available here, best first
    reasoning: str
    error: str | None


def llm_profile(characteristics: dict[str, Any]) -> dict[str, Any]:
    """The template's six fields, rounded so that similar series share one profile (and one call)."""
    n = int(characteristics.get("n_samples", 0) or 0)
    slope = abs(float(characteristics.get("trend_slope_pct", 0.0) or 0.0))
    skew = abs(float(characteristics.get("skewness", 0.0) or 0.0))
    cv = float(characteristics.get("robust_cv", 0.0) or 0.0)
    if float(characteristics.get("normality_p", 1.0) or 0.0) >= 0.05:
        distribution = "approximately normal"
    elif skew >= 1.0:
        distribution = "skewed"
    else:
        distribution = "heavy-tailed"
    return {
        "sample_size": max(12, int(round(n / 12.0)) * 12),
        "feature_count": int(characteristics.get("n_features", 0) or 0),
        "has_seasonality": bool(float(characteristics.get("seasonality_strength", 0.0) or 0.0) >= 0.3),
        "has_trend": bool(float(characteristics.get("trend_r2", 0.0) or 0.0) >= 0.5 and slope >= 0.5),
        "distribution_type": distribution,
        "volatility_level": "low" if cv < 0.05 else ("medium" if cv < 0.2 else "high"),
    }


def build_llm_prompt(profile: dict[str, Any], catalogue: list[AlgorithmInfo]) -> str:
    algorithms = "\n".join(f"- {a.name} ({a.full_name})" for a in catalogue)
    return PROMPT_TEMPLATE.format(**profile, available_algorithms=algorithms)


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def resolve_name(given: str, catalogue: list[AlgorithmInfo]) -> str | None:
    """A catalogue name for what a model wrote: "ECOD", "ecod", "Isolation Forest", "HBOS (Histogram-based ...)"."""
    candidates = [given, *re.findall(r"\(([^)]*)\)", given), re.sub(r"\(.*?\)", "", given)]
    for text in candidates:
        key = _normal(text)
        if not key:
            continue
        for a in catalogue:
            if key in (_normal(a.name), _normal(a.full_name)):
                return a.name
    return None


def _recommendation_items(payload: Any) -> list[Any]:
    """The list of recommendations in an answer: a list, or the list an object holds."""
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict):
        raise ValueError(f"answer is a JSON {type(payload).__name__}, not a list or an object")
    if any(k.lower() in NAME_KEYS for k in payload):
        return [payload]  # a single recommendation
    lists = [v for v in payload.values() if isinstance(v, list)]
    if lists:
        return next((v for v in lists if v), [])
    nested = [v for v in payload.values() if isinstance(v, dict)]
    if nested and all(any(k.lower() in NAME_KEYS for k in v) for v in nested):
        return nested  # {"1": {...}, "2": {...}}
    if len(nested) == 1:
        return _recommendation_items(nested[0])
    raise ValueError(f"answer holds no list of recommendations (keys: {', '.join(list(payload)[:6])})")


def _field(item: dict[str, Any], needles: tuple[str, ...]) -> str:
    for key, value in item.items():
        if any(n in key.lower() for n in needles) and key.lower() not in NAME_KEYS:
            return value if isinstance(value, str) else json.dumps(value)
    return ""


def parse_llm_answer(content: str, catalogue: list[AlgorithmInfo]) -> LLMAnswer:
    """Recommendations (all four fields) and the available names of an answer; ValueError says why not."""
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON from LLM: {exc.msg}") from exc
    items = _recommendation_items(payload)
    recommendations: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            item = {"algorithm": item}
        if not isinstance(item, dict):
            continue
        name = next((str(v) for k, v in item.items() if k.lower() in NAME_KEYS and isinstance(v, str)), "")
        if not name:
            continue
        rec: dict[str, str | None] = {"algorithm": name, **{f: _field(item, needles) for f, needles in FIELD_KEYS.items()}}
        rec["resolved"] = resolve_name(name, catalogue)
        recommendations.append(rec)
    if not recommendations:
        raise ValueError("LLM recommended an empty list")
    models = list(dict.fromkeys(r["resolved"] for r in recommendations if r["resolved"]))
    unknown = [r["algorithm"] for r in recommendations if not r["resolved"]]
    if not models:
        raise ValueError(f"LLM recommended no available detector (unknown: {', '.join(unknown)})")
    reasoning = "; ".join(f"{r['resolved']}: {r['reason']}" for r in recommendations if r["resolved"] and r["reason"])
    if unknown:
        reasoning += f" [ignored unknown or unavailable: {', '.join(unknown)}]"
    return LLMAnswer(tuple(recommendations), tuple(models[:TOP_K]), reasoning, None)


def ask_llm(characteristics: dict[str, Any], llm: LLMConfig) -> tuple[LLMAnswer, bool]:
    """The LLM's answer for this series' rounded profile: (answer, from_cache).

    One call per distinct profile (per endpoint and model), kept for the life of the process, a
    failure as well as a success: a pass over 1,400 series makes a few tens of calls, and a dead
    endpoint costs one timeout per profile, not one per series.
    """
    catalogue = [a for a in runnable_tabular(MAX_COST) if a.name in fast_fitting()]
    profile = llm_profile(characteristics)
    key = (llm.base_url, llm.model, tuple(sorted(profile.items())))
    with _llm_cache_lock:
        if key in _llm_cache:
            _llm_cache.move_to_end(key)
            return _llm_cache[key], True
    started = time.perf_counter()
    try:
        answer = parse_llm_answer(_chat(build_llm_prompt(profile, catalogue), llm), catalogue)
    except Exception as exc:  # noqa: BLE001 - every failure falls back to the rules, with the reason kept
        error = f"{type(exc).__name__}: {exc}"[:240]
        answer = LLMAnswer((), (), "", f"{error} (after {time.perf_counter() - started:.1f}s; fell back to rules)")
    with _llm_cache_lock:
        _llm_cache[key] = answer
        while len(_llm_cache) > LLM_CACHE_SIZE:
            _llm_cache.popitem(last=False)
    return answer, False


def clear_llm_cache() -> None:
    with _llm_cache_lock:
        _llm_cache.clear()


def _chat(prompt: str, llm: LLMConfig) -> str:
    import openai

    client = openai.OpenAI(api_key=llm.api_key, base_url=llm.base_url, timeout=llm.timeout_seconds, max_retries=0)
    response = client.chat.completions.create(model=llm.model, messages=[{"role": "user", "content": prompt}], temperature=0)
    return response.choices[0].message.content or ""


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
    recommendations: list[dict[str, Any]] | None = None
    llm_error: str | None = None
    llm_reason = ""
    from_cache = False
    if llm is not None:
        answer, from_cache = ask_llm(characteristics, llm)
        if answer.error is None:
            llm_models, llm_reason = list(answer.models), answer.reasoning
            recommendations = [dict(r) for r in answer.recommendations]
        else:
            llm_error = ("cached: " if from_cache else "") + answer.error
    candidates = llm_models if llm_models else rules
    source = ("cache" if from_cache else "llm") if llm_models else "rules"
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
    reason = f"LLM: {llm_reason}" if llm_models else f"Rules: {rule_reason}"
    if scores:
        reason += "; cross-validation AUC " + ", ".join(f"{k}={v:.3f}" for k, v in scores.items())
    return ModelSelection(
        characteristics=characteristics,
        rule_candidates=rules,
        llm_recommended=recommendations,
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
