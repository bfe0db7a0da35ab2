"""The cache under a real detection pass: detections join the entries that scored them, and a
workload larger than the LRU gives the same results (it costs speed, not correctness)."""

from __future__ import annotations

import pytest

from anomalies.models import AnomalyDetection
from anomalies.services import detection_run
from anomalies.services.context import context_cache_clear
from anomalies.tests.factories import load_rows
from documents.demo.generator import generate_portfolio
from modelcache.models import AnomalyModelCache
from modelcache.services import default_cache, reset_model_cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(monkeypatch):
    monkeypatch.setenv("PYOD_ENABLED", "true")
    load_rows(generate_portfolio(properties=2, months=24, seed=5).rows)


def results() -> dict[tuple[int, str], tuple[bool, float, str, str]]:
    return {
        (doc, account): (flagged, round(float(score), 6), kind, model_key)
        for doc, account, flagged, score, kind, model_key in AnomalyDetection.objects.values_list(
            "document_id", "account_code", "is_anomaly", "anomaly_score", "anomaly_type", "model_key"
        )
    }


def test_every_pyod_scored_detection_joins_the_cache_entry_that_scored_it(portfolio, admin_client):
    detection_run(all_documents=True)
    scored = AnomalyDetection.objects.filter(detector__startswith="pyod:")
    assert scored.exists()
    keys = set(scored.values_list("model_key", flat=True))
    entries = AnomalyModelCache.objects.filter(model_key__in=keys)
    assert set(entries.values_list("model_key", flat=True)) == keys
    # The entry is the series' own: same property, document type and account, the fitted type.
    for detection in scored.select_related("line_item")[:50]:
        entry = entries.get(model_key=detection.model_key)
        assert (entry.property_id, entry.document_type, entry.account_code) == (
            detection.property_id,
            detection.document_type,
            detection.account_code,
        )
        assert detection.detector == f"pyod:{entry.model_type}+robust_z"
        assert detection.model_version == entry.model_version

    # The admin's detection page links to that entry.
    detection = scored.first()
    entry = entries.get(model_key=detection.model_key)
    page = admin_client.get(f"/admin/anomalies/anomalydetection/{detection.pk}/change/").content.decode()
    assert f'href="/admin/modelcache/anomalymodelcache/{entry.pk}/change/"' in page


def test_a_workload_larger_than_the_lru_gives_identical_results(portfolio):
    reset_model_cache(max_bytes=10**10)
    detection_run(all_documents=True)  # trains and stores every model
    reset_model_cache(max_bytes=10**10)
    context_cache_clear()
    detection_run(all_documents=True)  # from the table into a roomy LRU
    roomy = results()
    sizes = sorted(AnomalyModelCache.objects.values_list("size_bytes", flat=True))
    assert len(sizes) > 10

    # Room for the three largest models: every chunk evicts what the previous one loaded.
    small = reset_model_cache(max_bytes=sum(sizes[-3:]))
    context_cache_clear()  # a fresh worker: the engine runs again and asks the cache for every model
    detection_run(all_documents=True)
    assert small.lru.total_bytes <= small.lru.max_bytes and len(small) < len(sizes) // 2
    assert results() == roomy
    counts = default_cache().counters.snapshot()
    assert counts["trained"] == 0 and counts["db_hit"] >= len(sizes)  # reloaded, never retrained
