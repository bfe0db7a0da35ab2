"""A document's detections do not depend on how documents are grouped into detection calls.

Reproducibility is a product promise: the model version, the data and the flags must give the
same result whether a document is detected by ``detection_run`` (groups of whole properties),
by a batch job's chunks of any size, alone, or in a shuffled order.  The test loads a generated
portfolio through the importer, takes a whole-portfolio run as the reference and reprocesses the
documents through ``documents_detect`` grouped in several ways, comparing every detection row
(document, account) -> (is_anomaly, score, type) with the reference.
"""

from __future__ import annotations

import csv
import io
import random

import pytest

from anomalies.models import AnomalyDetection
from anomalies.services import detection_run, documents_detect
from anomalies.services.context import context_cache_clear
from documents.demo.generator import generate_portfolio
from documents.selectors import documents_latest
from documents.services import UploadedSource, documents_import

pytestmark = pytest.mark.django_db

COLUMNS = (
    "property_code",
    "property_name",
    "property_type",
    "document_type",
    "period",
    "account_code",
    "account_name",
    "amount",
    "is_total",
)


@pytest.fixture
def portfolio(db):
    from modelcache.services import reset_model_cache

    reset_model_cache()
    generated = generate_portfolio(properties=6, months=30, seed=11)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(generated.rows)
    documents_import(files=[UploadedSource("portfolio.csv", buffer.getvalue().encode())])
    yield
    reset_model_cache()


def snapshot(document_ids: list[int] | None = None) -> dict[tuple[int, str], tuple[bool, float, str]]:
    rows = AnomalyDetection.objects.all()
    if document_ids is not None:
        rows = rows.filter(document_id__in=document_ids)
    return {
        (doc, account): (flagged, round(float(score), 4), kind)
        for doc, account, flagged, score, kind in rows.values_list(
            "document_id", "account_code", "is_anomaly", "anomaly_score", "anomaly_type"
        )
    }


def differences(reference: dict, document_ids: list[int]) -> list:
    expected = {k: v for k, v in reference.items() if k[0] in set(document_ids)}
    got = snapshot(document_ids)
    return [(k, expected.get(k), got.get(k)) for k in sorted(set(expected) | set(got)) if expected.get(k) != got.get(k)]


def detect_in_chunks(document_ids: list[int], size: int) -> None:
    # Computed afresh, not read from the contexts the reference pass kept in this process.
    context_cache_clear()
    for start in range(0, len(document_ids), size):
        summary = documents_detect(document_ids=document_ids[start : start + size])
        assert not summary.failures


def test_detections_do_not_depend_on_grouping(portfolio, monkeypatch):
    # The whole portfolio, a few properties per engine call (the command's path), PyOD on and the
    # model cache on: the production configuration.
    monkeypatch.setenv("FEATURE_FLAG_PYOD", "true")
    summary = detection_run(all_documents=True)
    assert summary.documents_ok > 0 and summary.anomalies > 0
    reference = snapshot()
    assert sum(flagged for flagged, _, _ in reference.values()) == summary.anomalies

    docs = list(documents_latest().values_list("id", "property_id"))
    properties = sorted({p for _, p in docs})
    by_property = {p: [d for d, q in docs if q == p] for p in properties}
    rng = random.Random(5)

    # Batch order (property, document type, period) in chunks of 7: chunks cut across statements.
    ordered = by_property[properties[0]] + by_property[properties[1]]
    detect_in_chunks(ordered, 7)
    assert differences(reference, ordered) == []

    # Shuffled, chunks of 10: chunks mix properties, statements and months.
    shuffled = by_property[properties[2]] + by_property[properties[3]]
    rng.shuffle(shuffled)
    detect_in_chunks(shuffled, 10)
    assert differences(reference, shuffled) == []

    # A whole property per call.
    for p in properties[4:]:
        detect_in_chunks(by_property[p], len(by_property[p]))
        assert differences(reference, by_property[p]) == []

    # Documents alone, with the model cache off: selection and training see the same inputs.
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "false")
    alone = rng.sample([d for d, _ in docs], 12)
    detect_in_chunks(alone, 1)
    assert differences(reference, alone) == []
