"""Loading the engine's input from the database."""

from __future__ import annotations

import numpy as np
import pytest

from anomalies.selectors import detection_input_for_documents
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


def test_a_chunk_loads_its_whole_property_and_the_portfolio_peer_statistics(portfolio, django_assert_max_num_queries):
    chunk = [portfolio[("A1", "income_statement", f"2023-0{m}")] for m in (3, 4)]
    with django_assert_max_num_queries(6):
        inp = detection_input_for_documents(document_ids=chunk)

    table = inp.table
    a1 = Property.objects.get(code="A1").id
    # Only A1, but all of it: every statement over every month (income 12 x 3 lines + the total,
    # balance sheet 12 x 1), whatever else the chunk holds.
    assert set(table.property_ids) == {a1}
    assert table.n_rows == 37 + 12
    assert set(table.document_types) == {"income_statement", "balance_sheet"}
    # Peers are the portfolio aggregate: six properties report the income accounts every month.
    peers = inp.peers
    group = peers.groups[("income_statement", table.account_codes[~table.is_total][0])]
    assert set(peers.n_reporting[group]) == {6}
    # The same statistics for another chunk (computed once per state of the portfolio).
    other = detection_input_for_documents(document_ids=[portfolio[("H1", "income_statement", "2023-05")]])
    assert other.peers is peers
    # The writer's side arrays line up with the table.
    assert set(inp.target_rows()) == set(np.flatnonzero(np.isin(inp.document_ids, chunk)))
    assert len(inp.amounts) == len(inp.period_ids) == table.n_rows
    assert set(table.periods) == {2023 * 12 + m for m in range(12)}


def test_old_versions_and_failed_extractions_are_left_out(portfolio):
    doc = DocumentUpload.objects.get(id=portfolio[("A1", "income_statement", "2023-05")])
    DocumentUpload.objects.filter(id=doc.id).update(is_latest=False)
    failed = portfolio[("A1", "income_statement", "2023-06")]
    DocumentUpload.objects.filter(id=failed).update(extraction_status="failed")
    inp = detection_input_for_documents(document_ids=[doc.id, failed, portfolio[("A1", "income_statement", "2023-07")]])
    assert doc.id not in set(inp.document_ids) and failed not in set(inp.document_ids)
    assert inp.targets[doc.id].is_latest is False
    assert inp.targets[failed].extraction_status == "failed"
