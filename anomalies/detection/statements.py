"""Statement arithmetic: totals that do not foot, identities between totals that break.

What each total sums, and which identities hold (assets = liabilities + equity), is learned from
the data by :mod:`.structure`; account codes are identities only.  Every total line of a checked
document gets an outcome: it foots, it does not foot, or its structure is not learned (with the
reason).  Tolerance of a check: max(1.00, 0.05 % of |total|) -- the structure was learned from
months that foot to the cent, so anything beyond rounding is an error.

A broken identity is reported on its first total (``balance_mismatch``) only when every total it
names foots that month: a total that does not foot already explains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .structure import (
    DOES_NOT_FOOT,
    FOOTS,
    NOT_LEARNED,
    START,
    LearnedStatement,
    Statement,
    StatementStructure,
    block_items,
    learn_statements,
)
from .table import LineTable

ABS_TOLERANCE = 1.0
REL_TOLERANCE = 0.0005


@dataclass(frozen=True)
class StatementFinding:
    row: int  # table row of the total line (the identity's first total for a balance check)
    anomaly_type: str  # 'footing' | 'balance_mismatch'
    amount: float
    expected_value: float
    difference: float
    tolerance: float
    covered_rows: tuple[int, ...]
    sentence: str


@dataclass(frozen=True)
class TotalOutcome:
    """The footing result of one total line of a checked document."""

    row: int
    status: str  # FOOTS | DOES_NOT_FOOT | NOT_LEARNED
    reason: str
    expected_value: float  # NaN when not learned


@dataclass
class StatementCheck:
    findings: list[StatementFinding]
    outcomes: list[TotalOutcome]
    structures: dict[tuple[int, str], StatementStructure]


def tolerance(total: float) -> float:
    return max(ABS_TOLERANCE, REL_TOLERANCE * abs(total))


def check_statements(
    table: LineTable,
    score_mask: np.ndarray | None = None,
    learned: dict[tuple[int, str], LearnedStatement] | None = None,
) -> StatementCheck:
    """Check the documents with a row in ``score_mask`` (all documents when omitted) against the
    structure learned from every month of ``table`` (``learned``, computed when omitted)."""
    check = StatementCheck([], [], {})
    mask = np.ones(table.n_rows, dtype=bool) if score_mask is None else np.asarray(score_mask, dtype=bool)
    for key, item in (learn_statements(table) if learned is None else learned).items():
        statement, structure = item.statement, item.structure
        check.structures[key] = structure
        scored = np.flatnonzero(((statement.rows >= 0) & mask[np.maximum(statement.rows, 0)]).any(axis=1))
        if not len(scored):
            continue
        sentences: dict[int, str] = {}
        for m in scored:
            _check_month(statement, structure, int(m), check, sentences)
    return check


def _check_month(
    statement: Statement, structure: StatementStructure, m: int, check: StatementCheck, sentences: dict[int, str]
) -> None:
    group = statement.groups[statement.group_of_month[m]]
    period = int(statement.periods[m])
    values = statement.values[m]
    rows = statement.rows[m]
    row_in_group = int(np.searchsorted(group.months, m))
    footing: dict[str, bool] = {}
    corrected: dict[str, float] = {}
    for k in np.flatnonzero(group.is_total):
        code = group.codes[k]
        row, amount = int(rows[group.columns[k]]), float(values[group.columns[k]])
        definition = structure.definition_for(code, period)
        if definition is None:
            reason = structure.not_learned.get(code, "structure not learned for this month's chart of accounts")
            check.outcomes.append(TotalOutcome(row, NOT_LEARNED, reason, float("nan")))
            continue
        lines = block_items(definition, group)
        missing = [c for c, _ in definition.terms if c not in group.position]
        if lines is None or missing or (definition.anchor is not None and not lines):
            reason = f"not checked: {', '.join(missing) or 'its block of lines'} absent this month"
            check.outcomes.append(TotalOutcome(row, NOT_LEARNED, reason, float("nan")))
            continue
        expected = 0.0
        if lines:
            start = group.block_start(definition.anchor or START) or 0
            expected = definition.block_sign * float(group.prefix[row_in_group, k] - group.prefix[row_in_group, start])
        # A total that does not foot enters later totals as its lines say it should be: a mistyped
        # subtotal is one error, not one per total computed from it.
        expected += sum(
            sign * corrected.get(c, float(values[group.columns[group.position[c]]])) for c, sign in definition.terms
        )
        diff = amount - expected
        tol = tolerance(amount)
        footing[code] = abs(diff) <= tol
        if id(definition) not in sentences:
            sentences[id(definition)] = definition.describe()
        sentence = sentences[id(definition)]
        check.outcomes.append(TotalOutcome(row, FOOTS if footing[code] else DOES_NOT_FOOT, sentence, expected))
        if footing[code]:
            continue
        corrected[code] = expected
        covered = [int(rows[group.columns[i]]) for i in lines]
        covered += [int(rows[group.columns[group.position[c]]]) for c, _ in definition.terms]
        verb = "sum" if lines or len(definition.terms) > 1 else "comes"
        check.findings.append(
            StatementFinding(
                row=row,
                anomaly_type="footing",
                amount=amount,
                expected_value=expected,
                difference=diff,
                tolerance=tol,
                covered_rows=tuple(covered),
                sentence=(
                    f"{code} is {amount:,.2f} but {_sum_phrase(definition.terms, len(lines))} {verb} "
                    f"to {expected:,.2f} (off by {diff:,.2f})."
                ),
            )
        )
    for ident in structure.identities:
        codes = [c for c, _ in ident.terms]
        if any(c not in group.position for c in codes) or not all(footing.get(c, True) for c in codes):
            continue
        amounts = [float(values[group.columns[group.position[c]]]) for c in codes]
        left = amounts[0]
        right = -sum(sign * a for (_, sign), a in zip(ident.terms[1:], amounts[1:], strict=True))
        diff = left - right
        tol = tolerance(left)
        if abs(diff) <= tol:
            continue
        check.findings.append(
            StatementFinding(
                row=int(rows[group.columns[group.position[codes[0]]]]),
                anomaly_type="balance_mismatch",
                amount=left,
                expected_value=right,
                difference=diff,
                tolerance=tol,
                covered_rows=tuple(int(rows[group.columns[group.position[c]]]) for c in codes[1:]),
                sentence=(
                    f"{ident.describe().split(' (')[0]} does not hold: "
                    f"{left:,.2f} against {right:,.2f} (off by {diff:,.2f})."
                ),
            )
        )


def _sum_phrase(terms: tuple[tuple[str, int], ...], n_lines: int) -> str:
    parts = [f"its {n_lines} lines"] if n_lines else []
    parts += [f"{'+' if sign > 0 else '-'} {code}" for code, sign in terms]
    return " ".join(parts).removeprefix("+ ")
