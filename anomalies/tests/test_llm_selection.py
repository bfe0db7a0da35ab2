"""The LLM model-selection path end to end: settings -> services -> engine -> a local HTTP server."""

from __future__ import annotations

import pytest

from anomalies import services
from anomalies.detection.selection import clear_llm_cache
from anomalies.models import AnomalyDetection, ModelSelectionLog
from anomalies.selectors import selection_source_counts
from anomalies.tests.llm_server import FakeLLMServer
from documents.scoping import SYSTEM

pytestmark = pytest.mark.django_db


@pytest.fixture
def llm_server():
    clear_llm_cache()
    with FakeLLMServer() as server:
        yield server
    clear_llm_cache()


def _configure(settings, server, *, on: bool = True, key: str = "test-key") -> None:
    settings.PYOD_LLM_MODEL_SELECTION = on
    settings.OPENAI_API_KEY = key
    settings.OPENAI_BASE_URL = server.base_url
    settings.OPENAI_MODEL = "fake-model"
    settings.OPENAI_TIMEOUT_SECONDS = 1


def test_a_good_answer_selects_through_the_llm(ledger, settings, llm_server):
    _configure(settings, llm_server)
    llm_server.models = ["HBOS", "ECOD", "COPOD"]
    services.detection_run(all_documents=True)

    logs = ModelSelectionLog.objects.all()
    assert logs.exists() and llm_server.requests  # series holding a candidate only
    assert {log.selection_source for log in logs} <= {"llm", "cache"}
    # One call per distinct rounded profile: every other series of that profile reads the cache.
    assert len(llm_server.requests) == sum(log.selection_source == "llm" for log in logs)
    assert all([r["resolved"] for r in log.llm_recommended_models] == ["HBOS", "ECOD", "COPOD"] for log in logs)
    assert all(log.selected_model in ("HBOS", "ECOD", "COPOD") for log in logs)
    assert llm_server.requests[0]["model"] == "fake-model"
    assert AnomalyDetection.objects.filter(is_anomaly=True).count() == 1


@pytest.mark.parametrize("shape", ["recommendations", "bare_list", "fenced_full_names"])
def test_real_answer_shapes_are_logged_with_all_four_fields(ledger, settings, llm_server, shape):
    _configure(settings, llm_server)
    llm_server.behaviour = shape
    llm_server.models = ["HBOS", "ECOD", "COPOD"]
    services.detection_run(all_documents=True)
    log = ModelSelectionLog.objects.filter(selection_source="llm").first()
    assert log is not None and log.llm_error == ""
    assert len(log.llm_recommended_models) == 3
    assert all(
        rec["algorithm"] and rec["reason"] and rec["expected_performance"] and rec["computational_cost"]
        for rec in log.llm_recommended_models
    )
    assert selection_source_counts(user=SYSTEM)["llm_discarded"] == 0


@pytest.mark.parametrize("behaviour", ["malformed", "unknown", "error"])
def test_llm_failures_fall_back_to_the_rules(ledger, settings, llm_server, behaviour):
    _configure(settings, llm_server)
    llm_server.behaviour = behaviour
    services.detection_run(all_documents=True)
    logs = ModelSelectionLog.objects.all()
    assert logs.exists()
    assert all(log.selection_source == "rules" and log.llm_error for log in logs)
    assert AnomalyDetection.objects.filter(is_anomaly=True).count() == 1  # detection still works
    # The dashboard counts each discarded answer once (the series that reused it are not counted).
    assert selection_source_counts(user=SYSTEM)["llm_discarded"] == len(llm_server.requests) >= 1


def test_no_key_or_selection_off_never_calls_the_llm(ledger, settings, llm_server):
    _configure(settings, llm_server, key="")
    services.detection_run(all_documents=True)
    _configure(settings, llm_server, on=False)
    services.detection_run(all_documents=True)
    assert not llm_server.requests
    assert set(ModelSelectionLog.objects.values_list("selection_source", flat=True)) == {"rules"}
