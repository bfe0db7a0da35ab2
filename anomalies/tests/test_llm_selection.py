"""The LLM model-selection path end to end: settings -> services -> engine -> a local HTTP server."""

from __future__ import annotations

import pytest

from anomalies import services
from anomalies.models import AnomalyDetection, ModelSelectionLog
from anomalies.tests.llm_server import FakeLLMServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def llm_server():
    with FakeLLMServer() as server:
        yield server


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
    assert logs.count() == 3 and llm_server.requests
    assert all(log.selection_source == "llm" for log in logs)
    assert all(log.llm_recommended_models == ["HBOS", "ECOD", "COPOD"] for log in logs)
    assert all(log.selected_model in ("HBOS", "ECOD", "COPOD") for log in logs)
    assert llm_server.requests[0]["model"] == "fake-model"
    assert AnomalyDetection.objects.filter(is_anomaly=True).count() == 1


@pytest.mark.parametrize("behaviour", ["malformed", "unknown", "error"])
def test_llm_failures_fall_back_to_the_rules(ledger, settings, llm_server, behaviour):
    _configure(settings, llm_server)
    llm_server.behaviour = behaviour
    services.detection_run(all_documents=True)
    logs = ModelSelectionLog.objects.all()
    assert logs.count() == 3
    assert all(log.selection_source == "rules" and log.llm_error for log in logs)
    assert AnomalyDetection.objects.filter(is_anomaly=True).count() == 1  # detection still works


def test_no_key_or_selection_off_never_calls_the_llm(ledger, settings, llm_server):
    _configure(settings, llm_server, key="")
    services.detection_run(all_documents=True)
    _configure(settings, llm_server, on=False)
    services.detection_run(all_documents=True)
    assert not llm_server.requests
    assert set(ModelSelectionLog.objects.values_list("selection_source", flat=True)) == {"rules"}
