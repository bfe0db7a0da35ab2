"""Detection is blind to account codes: an opaque chart of accounts finds the same anomalies.

The demo portfolio is detected twice, once as generated (``4010-0000``: digits, class prefixes,
sorted) and once with every general-ledger code replaced by a letters-only token in an unrelated
sort order, the rows in the same order.  The metric codes of DESIGN.md §4 (RR-*, MS-*) are a
contract and stay as they are.
"""

from __future__ import annotations

import string

import numpy as np
import pytest

from anomalies.detection.engine import detect_anomalies
from anomalies.detection.table import line_table_from_rows, period_to_string
from documents.demo.generator import generate_portfolio

METRIC_PREFIXES = ("RR-", "MS-")


def opaque_codes(codes: set[str], seed: int = 11) -> dict[str, str]:
    """A letters-only token per general-ledger code, in an order unrelated to the codes' order."""
    rng = np.random.default_rng(seed)
    ledger = sorted(c for c in codes if not c.startswith(METRIC_PREFIXES))
    tokens: set[str] = set()
    while len(tokens) < len(ledger):
        tokens.add("".join(rng.choice(list(string.ascii_uppercase), size=5)))
    shuffled = list(tokens)
    rng.shuffle(shuffled)
    return dict(zip(ledger, shuffled, strict=True))


def flagged(rows: list[dict], use_pyod: bool) -> tuple[set[tuple], set[tuple]]:
    """(every flagged line, the footing/balance findings) keyed by (property, document, period, row)."""
    adapted = line_table_from_rows(rows)
    table = adapted.table
    result = detect_anomalies(table, use_pyod=use_pyod, seed=5)
    position: dict[tuple, int] = {}
    keys = []
    for row in rows:  # a line's identity across the two runs: its place in its document
        doc = (row["property_code"], row["document_type"], row["period"])
        position[doc] = position.get(doc, -1) + 1
        keys.append((*doc, position[doc]))
    lines = {keys[r] for r in np.flatnonzero(result.is_anomaly)}
    absent = {
        (str(adapted.property_codes[f.property_id]), f.document_type, period_to_string(f.period), f.account_code)
        for f in result.findings
        if f.row < 0
    }
    statements = {(keys[sf.row], sf.anomaly_type) for sf in result.statement_findings}
    return lines | {("absent", *a) for a in absent}, statements


@pytest.mark.parametrize("use_pyod", [False, True], ids=["statistical", "pyod"])
def test_opaque_account_codes_find_the_same_anomalies(use_pyod: bool) -> None:
    portfolio = generate_portfolio(properties=6 if use_pyod else 10, months=36, seed=4)
    rows = [dict(r) for r in portfolio.rows]
    mapping = opaque_codes({str(r["account_code"]) for r in rows})
    blind = [{**r, "account_code": mapping.get(str(r["account_code"]), r["account_code"])} for r in rows]
    assert all(not c.isdigit() for c in mapping.values()) and sorted(mapping) != sorted(mapping, key=mapping.get)

    lines, statements = flagged(rows, use_pyod)
    blind_lines, blind_statements = flagged(blind, use_pyod)
    # Absent postings are keyed by code: map the blind run's back.
    back = {v: k for k, v in mapping.items()}
    blind_lines = {(k[0], k[1], k[2], k[3], back.get(k[4], k[4])) if k[0] == "absent" else k for k in blind_lines}

    jaccard = len(lines & blind_lines) / max(len(lines | blind_lines), 1)
    assert jaccard >= 0.97, (jaccard, sorted(lines ^ blind_lines)[:10])
    footing = {k for k in statements if k[1] == "footing"}
    assert footing, "the demo portfolio has footing errors: they must be found"
    assert footing <= blind_statements
