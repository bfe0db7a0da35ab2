"""Model selection through a real openai client against a local OpenAI-compatible server."""

from __future__ import annotations

import numpy as np
import pytest

from anomalies.detection.selection import (
    PROMPT_TEMPLATE,
    LLMConfig,
    clear_llm_cache,
    llm_profile,
    rule_candidates,
    select_optimal_model_llm,
)
from anomalies.tests.llm_server import FakeLLMServer

CHARS = {"n_samples": 36, "n_features": 12, "seasonality_strength": 0.1, "robust_cv": 0.05}


@pytest.fixture()
def server():
    clear_llm_cache()  # answers are cached per endpoint: a reused port must not see another test's
    with FakeLLMServer() as s:
        yield s
    clear_llm_cache()


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
    assert [r["resolved"] for r in sel.llm_recommended] == ["HBOS", "ECOD", "COPOD"]
    assert sel.llm_error is None
    assert sel.selected_model in ("HBOS", "ECOD", "COPOD")
    assert sel.cross_validation_score is not None and sel.cross_validation_score > 0.5


def test_the_prompt_is_the_seeds_template_filled_with_the_rounded_profile(server: FakeLLMServer) -> None:
    select_optimal_model_llm(CHARS, llm=_config(server))
    messages = server.requests[0]["messages"]
    assert len(messages) == 1 and messages[0]["role"] == "user"
    prompt = messages[0]["content"]
    head, tail = PROMPT_TEMPLATE.split("{available_algorithms}")
    assert prompt.startswith(head.format(**llm_profile(CHARS)))
    assert prompt.endswith(tail)
    assert "- Sample size: 36\n- Features: 12\n- Seasonality detected: False" in prompt
    assert "- HBOS (Histogram-Based Outlier Score)" in prompt


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("recommendations", ["HBOS", "ECOD", "COPOD"]),
        ("bare_list", ["HBOS", "ECOD", "COPOD"]),
        ("fenced_full_names", ["HBOS", "COPOD"]),  # "Isolation Forest" is no per-series candidate here
    ],
)
def test_the_answer_shapes_real_models_give_are_read(server: FakeLLMServer, shape: str, expected: list[str]) -> None:
    server.behaviour = shape
    server.models = ["hbos", "ECOD", "Copod"]
    sel = select_optimal_model_llm(CHARS, llm=_config(server))
    assert sel.source == "llm" and sel.llm_error is None
    assert [r["resolved"] for r in sel.llm_recommended if r["resolved"]] == expected
    assert len(sel.llm_recommended) == 3
    for rec in sel.llm_recommended:  # all four fields kept, as the model wrote them
        assert rec["algorithm"] and rec["reason"] and rec["expected_performance"] and rec["computational_cost"]
    assert sel.selected_model in expected


def test_one_call_per_rounded_profile_then_the_cache(server: FakeLLMServer) -> None:
    first = select_optimal_model_llm(CHARS, llm=_config(server))
    similar = select_optimal_model_llm({**CHARS, "n_samples": 35, "robust_cv": 0.06}, llm=_config(server))
    assert (first.source, similar.source) == ("llm", "cache")
    assert len(server.requests) == 1
    other = select_optimal_model_llm({**CHARS, "n_samples": 12}, llm=_config(server))
    assert other.source == "llm" and len(server.requests) == 2


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
