"""Model selection through a real openai client against a local OpenAI-compatible server."""

from __future__ import annotations

import numpy as np
import pytest

from anomalies.detection.selection import LLMConfig, rule_candidates, select_optimal_model_llm
from anomalies.tests.llm_server import FakeLLMServer

CHARS = {"n_samples": 36, "n_features": 12, "seasonality_strength": 0.1, "robust_cv": 0.05}


@pytest.fixture()
def server():
    with FakeLLMServer() as s:
        yield s


def _config(server: FakeLLMServer, timeout: float = 2.0) -> LLMConfig:
    return LLMConfig(api_key="test-key", base_url=server.base_url, model="fake-model", timeout_seconds=timeout)


def _history() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(36, 4))
    return x, x[:4] + 10.0


def test_rules_come_from_pyod_routing_rules() -> None:
    names, reason = rule_candidates(CHARS)
    assert len(names) == 3
    assert "tabular_low_dim_small" in reason or "tabular_balanced" in reason


def test_good_answer_is_used(server: FakeLLMServer) -> None:
    server.models = ["HBOS", "ECOD", "COPOD"]
    x, xa = _history()
    sel = select_optimal_model_llm(CHARS, llm=_config(server), x_history=x, x_anomalies=xa)
    assert sel.source == "llm"
    assert sel.llm_recommended == ["HBOS", "ECOD", "COPOD"]
    assert sel.llm_error is None
    assert sel.selected_model in sel.llm_recommended
    assert sel.cross_validation_score is not None and sel.cross_validation_score > 0.5
    prompt = server.requests[0]["messages"][-1]["content"]
    assert "ECOD" in prompt and '"n_samples": 36' in prompt
    assert server.requests[0]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        ("malformed", "malformed JSON"),
        ("unknown", "no available detector"),
        ("empty", "empty list"),
        ("error", "InternalServerError"),
    ],
)
def test_failures_fall_back_to_rules(server: FakeLLMServer, behaviour: str, message: str) -> None:
    server.behaviour = behaviour
    sel = select_optimal_model_llm(CHARS, llm=_config(server))
    assert sel.source == "rules"
    assert sel.llm_recommended is None
    assert sel.llm_error is not None and message in sel.llm_error
    assert sel.selected_model == sel.rule_candidates[0]


def test_timeout_falls_back_to_rules(server: FakeLLMServer) -> None:
    server.behaviour = "slow"
    server.slow_seconds = 2.0
    sel = select_optimal_model_llm(CHARS, llm=_config(server, timeout=0.3))
    assert sel.source == "rules"
    assert sel.llm_error is not None and "Timeout" in sel.llm_error


def test_without_llm_uses_rules() -> None:
    sel = select_optimal_model_llm(CHARS, llm=None)
    assert sel.source == "rules" and sel.llm_error is None and sel.llm_recommended is None
