"""Statement arithmetic: totals that do not foot, balance sheets that do not balance.

Footing rule (documented in the README): a total line's account code is ``NNNN-NNNN``.  Strip
the trailing '9's of its first four digits to get its prefix (``4999-0000`` -> '4',
``1199-0000`` -> '11'); the total covers the non-total lines of the same document whose code
starts with that prefix.  No check when the prefix is empty (``9999-0000``) or no line is
covered.  Tolerance: max(1.00, 0.5 % of |total|) -- rounding of many cents lines never trips
it, a misposted line of any material size does.

Balance: assets (prefix '1') = liabilities ('2') + equity ('3'), each taken from its total line
when the document has one, else from the sum of its lines.  Same tolerance on the assets total.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .table import LineTable

TOTAL_CODE = re.compile(r"^(\d{4})-\d{4}$")
ABS_TOLERANCE = 1.0
REL_TOLERANCE = 0.005


@dataclass(frozen=True)
class StatementFinding:
    row: int  # table row of the total line (or of the assets line/total for a balance check)
    anomaly_type: str  # 'footing' | 'balance_mismatch'
    amount: float
    expected_value: float
    difference: float
    tolerance: float
    covered_rows: tuple[int, ...]
    sentence: str


def total_prefix(account_code: str) -> str:
    match = TOTAL_CODE.match(account_code.strip())
    if not match:
        return ""
    return match.group(1).rstrip("9")


def tolerance(total: float) -> float:
    return max(ABS_TOLERANCE, REL_TOLERANCE * abs(total))


def check_statements(table: LineTable) -> list[StatementFinding]:
    """Footing and balance findings for every document of the table."""
    findings: list[StatementFinding] = []
    if table.n_rows == 0:
        return findings
    key = np.stack([table.property_ids, table.periods], axis=1)
    doc_types = table.document_types.astype(str)
    order = np.lexsort((table.row_order, doc_types, table.periods, table.property_ids))
    keys_sorted = np.column_stack([key[order], np.unique(doc_types, return_inverse=True)[1][order]])
    boundaries = np.flatnonzero(np.any(np.diff(keys_sorted, axis=0) != 0, axis=1)) + 1
    for doc_rows in np.split(order, boundaries):
        findings.extend(_check_document(table, doc_rows))
    return findings


def _check_document(table: LineTable, rows: np.ndarray) -> list[StatementFinding]:
    out: list[StatementFinding] = []
    codes = [str(c) for c in table.account_codes[rows]]
    amounts = table.amounts[rows]
    totals = table.is_total[rows]
    detail = ~totals & np.isfinite(amounts)
    class_totals: dict[str, tuple[int, float]] = {}
    for i in np.flatnonzero(totals):
        prefix = total_prefix(codes[i])
        if not prefix or not np.isfinite(amounts[i]):
            continue
        covered = [j for j in np.flatnonzero(detail) if codes[j].startswith(prefix)]
        if len(prefix) == 1:
            class_totals[prefix] = (int(rows[i]), float(amounts[i]))
        if not covered:
            continue
        expected = float(np.sum(amounts[covered]))
        diff = float(amounts[i]) - expected
        tol = tolerance(float(amounts[i]))
        if abs(diff) > tol:
            out.append(
                StatementFinding(
                    row=int(rows[i]),
                    anomaly_type="footing",
                    amount=float(amounts[i]),
                    expected_value=expected,
                    difference=diff,
                    tolerance=tol,
                    covered_rows=tuple(int(rows[j]) for j in covered),
                    sentence=(
                        f"Total {codes[i]} is {amounts[i]:,.2f} but its {len(covered)} lines "
                        f"starting with '{prefix}' sum to {expected:,.2f} (off by {diff:,.2f})."
                    ),
                )
            )
    if str(table.document_types[rows[0]]) == "balance_sheet":
        out.extend(_check_balance(table, rows, codes, amounts, detail, class_totals))
    return out


def _check_balance(
    table: LineTable,
    rows: np.ndarray,
    codes: list[str],
    amounts: np.ndarray,
    detail: np.ndarray,
    class_totals: dict[str, tuple[int, float]],
) -> list[StatementFinding]:
    del table
    sums: dict[str, float] = {}
    anchor: dict[str, int] = {}
    for cls in ("1", "2", "3"):
        if cls in class_totals:
            anchor[cls], sums[cls] = class_totals[cls]
            continue
        members = [j for j in np.flatnonzero(detail) if codes[j].startswith(cls)]
        if not members:
            return []
        sums[cls] = float(np.sum(amounts[members]))
        anchor[cls] = int(rows[members[0]])
    assets, claims = sums["1"], sums["2"] + sums["3"]
    diff = assets - claims
    tol = tolerance(assets)
    if abs(diff) <= tol:
        return []
    return [
        StatementFinding(
            row=anchor["1"],
            anomaly_type="balance_mismatch",
            amount=assets,
            expected_value=claims,
            difference=diff,
            tolerance=tol,
            covered_rows=(anchor["2"], anchor["3"]),
            sentence=(f"Assets {assets:,.2f} differ from liabilities + equity {claims:,.2f} by {diff:,.2f}."),
        )
    ]
