"""The algorithm catalogue, read from PyOD's own knowledge base (not a hand-written list).

``pyod.utils.knowledge.KnowledgeBase().algorithms`` describes 62 detectors (class path, family,
complexity, benchmark ranks, default parameters, what they require).  We add what only this
machine can tell: whether the detector can run here, and why not.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# Statistical detectors of our own, listed beside PyOD's so a caller sees every choice.
STATISTICAL_DETECTORS = {
    "robust_z": "Robust z of the amount against its own context (median / MAD), local and seasonal",
}


@dataclass(frozen=True)
class AlgorithmInfo:
    name: str
    full_name: str
    family: str  # PyOD's category: probabilistic, linear, proximity, ensemble, ...
    class_path: str
    data_types: tuple[str, ...]
    status: str
    cost: str  # low / medium / high, from the time complexity and the deep-learning flag
    benchmark_rank: int | None  # best ADBench / TSB-AD rank if PyOD records one
    default_params: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    available: bool = True
    unavailable_reason: str | None = None
    strengths: tuple[str, ...] = ()
    weaknesses: tuple[str, ...] = ()
    best_for: str = ""
    avoid_when: str = ""

    @property
    def tabular(self) -> bool:
        return "tabular" in self.data_types

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "full_name": self.full_name,
            "family": self.family,
            "class_path": self.class_path,
            "data_types": list(self.data_types),
            "status": self.status,
            "cost": self.cost,
            "benchmark_rank": self.benchmark_rank,
            "default_params": dict(self.default_params),
            "requires": list(self.requires),
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
            "best_for": self.best_for,
            "avoid_when": self.avoid_when,
        }


def _cost(entry: dict[str, Any]) -> str:
    """Cost class from PyOD's stated time complexity (n rows, d features)."""
    if entry.get("category") in ("deep_learning", "neural", "embedding") or "torch" in entry.get("requires", []):
        return "high"
    time = str((entry.get("complexity") or {}).get("time", "")).replace(" ", "")
    if any(tok in time for tok in ("n^3", "epochs", "iter*n^2", "n_estimators", "varies")):
        return "high"
    if "n^2" in time or "t*" in time or "n*t" in time or "max_iter" in time:
        return "medium"
    return "low"


def _unavailable_reason(entry: dict[str, Any]) -> str | None:
    status = entry.get("status")
    if status != "shipped":
        return f"status is {status!r} in PyOD, not 'shipped'"
    missing = [pkg for pkg in entry.get("requires", []) if importlib.util.find_spec(pkg) is None]
    if missing:
        return "requires " + ", ".join(missing)
    module_path, _, class_name = str(entry.get("class_path", "")).rpartition(".")
    try:
        # Some PyOD modules print "please install torch first" on import: not our users' concern.
        with contextlib.redirect_stdout(io.StringIO()):
            module = importlib.import_module(module_path)
        getattr(module, class_name)
    except Exception as exc:  # noqa: BLE001 - any import failure makes it unavailable
        return f"cannot import {entry.get('class_path')}: {type(exc).__name__}: {exc}"
    return None


def _best_rank(entry: dict[str, Any]) -> int | None:
    ranks = [int(v) for v in (entry.get("benchmark_rank") or {}).values() if isinstance(v, int | float)]
    return min(ranks) if ranks else None


@lru_cache(maxsize=1)
def _catalogue() -> tuple[AlgorithmInfo, ...]:
    from pyod.utils.knowledge import KnowledgeBase

    out: list[AlgorithmInfo] = []
    for name, entry in KnowledgeBase().algorithms.items():
        reason = _unavailable_reason(entry)
        out.append(
            AlgorithmInfo(
                name=name,
                full_name=str(entry.get("full_name", name)),
                family=str(entry.get("category", "")),
                class_path=str(entry.get("class_path", "")),
                data_types=tuple(entry.get("data_types", ())),
                status=str(entry.get("status", "")),
                cost=_cost(entry),
                benchmark_rank=_best_rank(entry),
                default_params=dict(entry.get("default_params") or {}),
                requires=tuple(entry.get("requires") or ()),
                available=reason is None,
                unavailable_reason=reason,
                strengths=tuple(entry.get("strengths") or ()),
                weaknesses=tuple(entry.get("weaknesses") or ()),
                best_for=str(entry.get("best_for", "")),
                avoid_when=str(entry.get("avoid_when", "")),
            )
        )
    for name, description in STATISTICAL_DETECTORS.items():
        out.append(
            AlgorithmInfo(
                name=name,
                full_name=description,
                family="statistical",
                class_path=f"anomalies.detection.detectors.{name}",
                data_types=("tabular", "time_series"),
                status="shipped",
                cost="low",
                benchmark_rank=None,
            )
        )
    return tuple(out)


def get_available_algorithms() -> list[dict[str, Any]]:
    """Every detector PyOD knows (plus ours), each saying whether it can run here and why not."""
    return [a.as_dict() for a in _catalogue()]


def algorithm(name: str) -> AlgorithmInfo | None:
    for a in _catalogue():
        if a.name == name:
            return a
    return None


def runnable_tabular(max_cost: str = "medium") -> list[AlgorithmInfo]:
    """Available PyOD detectors for our per-series feature matrices, up to a cost class."""
    order = {"low": 0, "medium": 1, "high": 2}
    return [
        a
        for a in _catalogue()
        if a.available and a.tabular and a.family != "statistical" and order[a.cost] <= order[max_cost]
    ]


def routing_rules() -> list[dict[str, Any]]:
    from pyod.utils.knowledge import KnowledgeBase

    return list(KnowledgeBase().routing_rules.get("rules", []))
