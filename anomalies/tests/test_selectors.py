"""Loading the engine's input from the database."""

from __future__ import annotations

import numpy as np
import pytest

from anomalies.models import AnomalyFeedback
from anomalies.selectors import portfolio_peer_stats, property_data_versions, property_lines_get, target_documents_get
from anomalies.tests.conftest import ledger_amounts
from anomalies.tests.factories import load_rows, series_rows
from documents.models import DocumentUpload, Property

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(db):
    """Five offices and one hotel; A1 also has a balance sheet."""
    rows = []
    for code, ptype in (
        ("A1", "office"),
        ("A2", "office"),
        ("A3", "office"),
        ("A4", "office"),
        ("A5", "office"),
        ("H1", "hotel"),
    ):
        rows += series_rows(
            property_code=code, amounts=ledger_amounts(shift_month=None, months=12), property_type=ptype, start="2023-01"
        )
    rows += series_rows(
        property_code="A1", amounts={"1110-0000": [1000.0] * 12}, document_type="balance_sheet", start="2023-01"
    )
    rows.append({**rows[0], "account_code": "4999-0000", "amount": 1.0, "is_total": True})
    return load_rows(rows)


def test_a_property_is_loaded_whole_with_the_portfolio_peer_statistics(portfolio, django_assert_max_num_queries):
    a1 = Property.objects.get(code="A1").id
    portfolio_peer_stats()
    with django_assert_max_num_queries(2):
        inp = property_lines_get(property_id=a1)

    table = inp.table
    # Every statement over every month (income 12 x 3 lines + the total, balance sheet 12 x 1).
    assert set(table.property_ids) == {a1}
    assert table.n_rows == 37 + 12
    assert set(table.document_types) == {"income_statement", "balance_sheet"}
    # Peers are the portfolio aggregate: six properties report the income accounts every month.
    peers = inp.peers
    group = peers.groups[("income_statement", table.account_codes[~table.is_total][0])]
    assert set(peers.n_reporting[group]) == {6}
    # The same statistics for another property (computed once per state of the portfolio).
    other = property_lines_get(property_id=Property.objects.get(code="H1").id)
    assert other.peers is peers
    # The writer's side arrays line up with the table.
    chunk = [portfolio[("A1", "income_statement", f"2023-0{m}")] for m in (3, 4)]
    rows = inp.rows_of_documents(chunk)
    assert set(np.concatenate(list(rows.values()))) == set(np.flatnonzero(np.isin(inp.document_ids, chunk)))
    assert len(inp.amounts) == len(inp.period_ids) == table.n_rows
    assert set(table.periods) == {2023 * 12 + m for m in range(12)}


def test_old_versions_and_failed_extractions_are_left_out(portfolio):
    doc = DocumentUpload.objects.get(id=portfolio[("A1", "income_statement", "2023-05")])
    DocumentUpload.objects.filter(id=doc.id).update(is_latest=False)
    failed = portfolio[("A1", "income_statement", "2023-06")]
    DocumentUpload.objects.filter(id=failed).update(extraction_status="failed")
    inp = property_lines_get(property_id=doc.property_id)
    assert doc.id not in set(inp.document_ids) and failed not in set(inp.document_ids)
    targets = target_documents_get(document_ids=[doc.id, failed])
    assert targets[doc.id].is_latest is False and not targets[doc.id].is_live
    assert targets[failed].extraction_status == "failed" and not targets[failed].is_live


def test_a_propertys_data_version_changes_with_its_documents_and_verdicts_only(portfolio):
    a1, a2 = (Property.objects.get(code=c).id for c in ("A1", "A2"))
    before = property_data_versions(property_ids=[a1, a2])
    assert property_data_versions(property_ids=[a1, a2]) == before  # nothing changed, nothing differs

    doc = DocumentUpload.objects.get(id=portfolio[("A1", "income_statement", "2023-05")])
    AnomalyFeedback.objects.create(
        property_id=a1,
        document_type=doc.document_type,
        period=doc.period,
        account_code="4010-0000",
        feedback_type="dismissed",
        is_anomaly=False,
    )
    after_verdict = property_data_versions(property_ids=[a1, a2])
    assert after_verdict[a1] != before[a1] and after_verdict[a2] == before[a2]

    DocumentUpload.objects.filter(id=doc.id).update(extraction_status="failed")
    after_failure = property_data_versions(property_ids=[a1, a2])
    assert after_failure[a1] != after_verdict[a1]
    # The portfolio's peer statistics changed too: every property's results may differ.
    assert after_failure[a2] != after_verdict[a2]
