"""SHAP values of flagged lines: named evidence, stored with the explanation, only with SHAP_ENABLED."""

from __future__ import annotations

import pytest

from anomalies import services
from anomalies.detection.attribution import EVIDENCE_NAMES
from anomalies.models import AnomalyExplanation

pytestmark = pytest.mark.django_db


def test_a_flagged_lines_score_is_attributed_to_named_evidence(ledger, statistical_only, settings):
    settings.XAI_BACKGROUND_SAMPLES = 20
    services.detection_run(all_documents=True)
    explanation = AnomalyExplanation.objects.get(anomaly__is_anomaly=True)
    shap = explanation.shap_values
    assert shap["method"] == "shap.KernelExplainer" and shap["background_rows"] == 20
    assert [a["evidence"] for a in shap["attributions"]] == list(EVIDENCE_NAMES)
    # Shapley values add up to the explained score (efficiency), and the distance from the
    # surrounding months carries most of a decimal shift's score.
    total = shap["base_value"] + sum(a["shap"] for a in shap["attributions"])
    assert total == pytest.approx(shap["surrogate_score"], abs=0.05)
    top = max(shap["attributions"], key=lambda a: a["shap"])
    assert top["evidence"] in ("vs surrounding months", "vs same month last year", "x10 signature")
    assert shap["model_score"] == pytest.approx(explanation.anomaly.anomaly_score, abs=0.01)


def test_with_shap_off_no_values_are_stored(ledger, statistical_only, monkeypatch):
    monkeypatch.setenv("SHAP_ENABLED", "false")
    services.detection_run(all_documents=True)
    explanation = AnomalyExplanation.objects.get(anomaly__is_anomaly=True)
    assert explanation.shap_values is None


def test_the_review_page_draws_the_shap_values(ledger, statistical_only, admin_client):
    services.detection_run(all_documents=True)
    explanation = AnomalyExplanation.objects.get(anomaly__is_anomaly=True)
    page = admin_client.get(f"/admin/anomalies/anomalydetection/{explanation.anomaly_id}/change/").content.decode()
    assert 'id="shap-chart"' in page and "<svg" in page
    assert "vs surrounding months" in page and "shap.KernelExplainer" in page
