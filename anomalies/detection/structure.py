"""Statement structure learned from the data: which lines each total sums, and identities.

Account codes are identities only (``4010-0000``, ``40100``, ``REV.BASE``): nothing is read from
their digits, prefixes or sort order.  What a total covers is learned per property and document
type from the months in which it foots to the cent, using only the statement's line order:

* a **block**: the non-total lines after an anchor item (the document start, an earlier total, or
  a line) up to the total.  Anchors rather than line lists, so an account added or renamed inside
  the block is still covered;
* failing that, a **signed sum of earlier totals**, optionally with the block of lines since the
  nearest earlier total (net operating income = total revenue - total expenses; net income =
  NOI - the lines below it);
* **identities** between totals that hold in most months and do not follow from the totals'
  definitions (assets = liabilities + equity, any total = total +- total).

A definition must hold in at least ``MIN_MONTHS_HELD`` months and in ``MIN_HOLD_SHARE`` of the
months it can be evaluated in; months where it cannot be evaluated (the chart changed and its
anchor or terms are gone) are learned again on their own.  A total whose lines foot in no month
carries "structure not learned" and is never reported as a footing error.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .table import BoolArray, FloatArray, IntArray, LineTable

MIN_MONTHS_HELD = 3  # fewer months of history: no learned structure yet
MIN_HOLD_SHARE = 0.6  # a definition holds in most of the months it can be evaluated in
LEARN_TOLERANCE = 0.015  # "foots to the cent", with float rounding
MAX_TOTAL_TERMS = 3  # signed sums of at most three totals (plus a block)
MAX_EARLIER_TOTALS = 6  # the nearest earlier totals that may be terms
START = "<document start>"

FOOTS = "foots"
DOES_NOT_FOOT = "does_not_foot"
NOT_LEARNED = "structure_not_learned"


@dataclass(frozen=True)
class TotalDefinition:
    """A total = block_sign * (non-total lines after ``anchor``) + sum(sign * total)."""

    total: str
    anchor: str | None  # START, an item's code, or None when there is no block term
    block_sign: int
    terms: tuple[tuple[str, int], ...]  # (total code, +1/-1)
    months_held: int
    months_seen: int
    periods: frozenset[int]  # the months this definition applies to
    n_lines: int = 0  # lines of the block term in the latest month it held

    def describe(self, label: Callable[[str], str] = str) -> str:
        parts = []
        if self.anchor is not None:
            where = "from the start of the statement" if self.anchor == START else f"after {label(self.anchor)}"
            parts.append(f"{'' if self.block_sign > 0 else '- '}the sum of the {self.n_lines} lines {where}")
        for code, sign in self.terms:
            parts.append(f"{'+' if sign > 0 else '-'} {label(code)}")
        text = " ".join(parts).removeprefix("+ ")
        return f"{label(self.total)} = {text} (foots in {self.months_held} of {self.months_seen} months)"


Definitions = dict[str, list["TotalDefinition"]]  # total -> definitions, each for its months


@dataclass(frozen=True)
class Identity:
    """sum(sign * total) = 0 in most months: ``terms[0]`` = the others."""

    terms: tuple[tuple[str, int], ...]
    months_held: int
    months_seen: int

    def describe(self, label: Callable[[str], str] = str) -> str:
        (left, _), rest = self.terms[0], self.terms[1:]
        right = " ".join(f"{'+' if -s > 0 else '-'} {label(c)}" for c, s in rest).removeprefix("+ ")
        return f"{label(left)} = {right} (holds in {self.months_held} of {self.months_seen} months)"


@dataclass
class StatementStructure:
    """What was learned for one property and document type."""

    property_id: int
    document_type: str
    n_months: int
    definitions: Definitions = field(default_factory=dict)
    identities: list[Identity] = field(default_factory=list)
    not_learned: dict[str, str] = field(default_factory=dict)  # total -> reason

    def definition_for(self, total: str, period: int) -> TotalDefinition | None:
        for d in self.definitions.get(total, ()):
            if period in d.periods:
                return d
        return None


@dataclass(frozen=True)
class ChartGroup:
    """The months of a statement that share one chart: the same items in the same order."""

    codes: tuple[str, ...]
    is_total: BoolArray
    months: IntArray  # indexes into Statement.periods
    columns: IntArray  # (items,) column of each item in Statement.values
    prefix: FloatArray  # (months, items + 1): sum of the non-total amounts of items [0, i)
    n_lines_before: IntArray  # (items + 1,): non-total items among [0, i)
    position: dict[str, int]

    def block_start(self, anchor: str) -> int | None:
        """The first item of the block after ``anchor`` (None: the anchor is not in this chart)."""
        if anchor == START:
            return 0
        i = self.position.get(anchor)
        return None if i is None else i + 1


@dataclass(frozen=True)
class Statement:
    """Every month of one property's document type: a (month, code) matrix in line order."""

    property_id: int
    document_type: str
    periods: IntArray  # (M,)
    codes: tuple[str, ...]  # every code seen, column order
    values: FloatArray  # (M, C), NaN where the code is absent that month
    rows: IntArray  # (M, C) table row, -1 where absent
    groups: list[ChartGroup]
    group_of_month: IntArray  # (M,)

    def column(self, code: str) -> int:
        return self.codes.index(code)

    def month(self, period: int) -> int:
        return int(np.searchsorted(self.periods, period))


def statements_of(table: LineTable, score_mask: BoolArray | None = None) -> list[Statement]:
    """The table's statements with a total line (and a row in ``score_mask`` when given)."""
    if not table.is_total.any():
        return []
    doc_types = table.document_types.astype(str)
    type_index = np.unique(doc_types, return_inverse=True)[1]
    order = np.lexsort((table.row_order, table.periods, type_index, table.property_ids))
    keys = np.column_stack([table.property_ids[order], type_index[order]])
    bounds = np.flatnonzero(np.any(np.diff(keys, axis=0) != 0, axis=1)) + 1
    out = []
    for rows in np.split(order, bounds):
        if not table.is_total[rows].any() or (score_mask is not None and not score_mask[rows].any()):
            continue
        out.append(_statement(table, rows))
    return out


def _statement(table: LineTable, rows: IntArray) -> Statement:
    codes_all = table.account_codes[rows]
    codes, column = np.unique(codes_all.astype(str), return_inverse=True)
    periods, month = np.unique(table.periods[rows], return_inverse=True)
    values = np.full((len(periods), len(codes)), np.nan)
    values[month, column] = np.nan_to_num(table.amounts[rows].astype(np.float64))
    row_matrix = np.full((len(periods), len(codes)), -1, dtype=np.int64)
    row_matrix[month, column] = rows
    starts = np.flatnonzero(np.diff(month, prepend=-1))
    ends = np.append(starts[1:], len(rows))
    by_chart: dict[tuple[tuple[str, ...], bytes], list[int]] = defaultdict(list)
    for m, (a, b) in enumerate(zip(starts, ends, strict=True)):
        by_chart[(tuple(codes_all[a:b]), table.is_total[rows[a:b]].tobytes())].append(m)
    groups = []
    group_of_month = np.zeros(len(periods), dtype=np.int64)
    for g, ((chart, _), months) in enumerate(by_chart.items()):
        a, b = starts[months[0]], ends[months[0]]
        is_total = table.is_total[rows[a:b]]
        cols = column[a:b]
        amounts = values[np.ix_(months, cols)]
        detail = np.where(is_total[None, :], 0.0, amounts)
        groups.append(
            ChartGroup(
                codes=chart,
                is_total=is_total,
                months=np.asarray(months, dtype=np.int64),
                columns=cols,
                prefix=np.concatenate([np.zeros((len(months), 1)), np.cumsum(detail, axis=1)], axis=1),
                n_lines_before=np.concatenate([[0], np.cumsum(~is_total)]).astype(np.int64),
                position={c: i for i, c in enumerate(chart)},
            )
        )
        group_of_month[months] = g
    return Statement(
        property_id=int(table.property_ids[rows[0]]),
        document_type=str(table.document_types[rows[0]]),
        periods=periods.astype(np.int64),
        codes=tuple(str(c) for c in codes),
        values=values,
        rows=row_matrix,
        groups=groups,
        group_of_month=group_of_month,
    )


def learn_structure(statement: Statement) -> StatementStructure:
    """Definitions of every total and the identities between totals, from all months given."""
    structure = StatementStructure(statement.property_id, statement.document_type, len(statement.periods))
    totals: list[str] = []
    for g in statement.groups:
        totals.extend(c for c, t in zip(g.codes, g.is_total, strict=True) if t and c not in totals)
    for total in totals:
        present = np.isfinite(statement.values[:, statement.column(total)])
        if present.sum() < MIN_MONTHS_HELD:
            structure.not_learned[total] = (
                f"structure not learned: {int(present.sum())} month(s) of history, at least {MIN_MONTHS_HELD} needed"
            )
            continue
        learned = _learn_total(statement, total, present, structure.definitions)
        if learned:
            structure.definitions[total] = learned
        else:
            structure.not_learned[total] = (
                "structure not learned: no block of lines or sum of other totals foots in most months"
            )
    if len(statement.periods) >= MIN_MONTHS_HELD:
        structure.identities = _learn_identities(statement, totals, structure.definitions)
    return structure


def _learn_total(statement: Statement, total: str, months: BoolArray, known: Definitions) -> list[TotalDefinition]:
    """Definitions for the months of one total; months the first cannot evaluate are relearned."""
    out: list[TotalDefinition] = []
    remaining = months.copy()
    while remaining.sum() >= MIN_MONTHS_HELD:
        best = _best_block(statement, total, remaining) or _best_sum_of_totals(statement, total, remaining, known)
        if best is None:
            break
        out.append(best)
        remaining &= ~np.fromiter((int(p) in best.periods for p in statement.periods), bool, len(statement.periods))
    return out


def _accept(held: int, seen: int) -> bool:
    return held >= MIN_MONTHS_HELD and held >= MIN_HOLD_SHARE * seen


@dataclass
class _AnchorTally:
    held: int = 0
    seen: int = 0
    months: list[IntArray] = field(default_factory=list)
    n_lines: int = 0
    latest: int = -1
    boundary: bool = False
    rank: int = 0


def _best_block(statement: Statement, total: str, remaining: BoolArray) -> TotalDefinition | None:
    """The anchor whose block of lines up to ``total`` foots in the most months (vectorised per chart)."""
    tally: dict[str, _AnchorTally] = {}
    target_col = statement.column(total)
    for g in statement.groups:
        k = g.position.get(total)
        use = remaining[g.months]
        if k is None or not use.any():
            continue
        months = g.months[use]
        starts = np.arange(k + 1)  # block [start, k): start 0 is the document start
        n_lines = g.n_lines_before[k] - g.n_lines_before[starts]
        prefix = g.prefix[use]
        sums = prefix[:, [k]] - prefix[:, starts]
        held = (np.abs(sums - statement.values[months, target_col][:, None]) <= LEARN_TOLERANCE).sum(axis=0)
        latest = int(months.max())
        for start in np.flatnonzero(n_lines > 0):
            anchor = START if start == 0 else g.codes[start - 1]
            t = tally.setdefault(anchor, _AnchorTally(rank=int(start)))
            t.held += int(held[start])
            t.seen += len(months)
            t.months.append(months)
            if latest >= t.latest:  # the size of the block in the latest month
                t.latest, t.n_lines = latest, int(n_lines[start])
            t.boundary = start == 0 or bool(g.is_total[start - 1])
    best: tuple[tuple[int, int, int], str] | None = None
    for anchor, t in tally.items():
        # Most months held; then a natural boundary (the start, a total); then the shortest block.
        key = (t.held, int(t.boundary), t.rank)
        if _accept(t.held, t.seen) and (best is None or key > best[0]):
            best = (key, anchor)
    if best is None:
        return None
    t = tally[best[1]]
    periods = frozenset(int(p) for p in statement.periods[np.concatenate(t.months)])
    return TotalDefinition(total, best[1], 1, (), t.held, t.seen, periods, t.n_lines)


def _best_sum_of_totals(
    statement: Statement, total: str, remaining: BoolArray, known: Definitions
) -> TotalDefinition | None:
    """A signed sum of at most MAX_TOTAL_TERMS earlier totals, with or without the block of lines
    since the nearest earlier total."""
    earlier: list[str] = []
    for g in statement.groups:
        k = g.position.get(total)
        if k is None or not remaining[g.months].any():
            continue
        earlier.extend(c for c in reversed(g.codes[:k]) if c in known and c not in earlier)
    earlier = earlier[:MAX_EARLIER_TOTALS]
    if not earlier:
        return None
    months = np.flatnonzero(remaining)
    values = statement.values[np.ix_(months, [statement.column(c) for c in earlier])]
    target = statement.values[months, statement.column(total)]
    block = np.full(len(months), np.nan)
    for i, m in enumerate(months):
        g = statement.groups[statement.group_of_month[m]]
        start, k = g.block_start(earlier[0]), g.position.get(total)
        if start is not None and k is not None and start <= k and g.n_lines_before[k] > g.n_lines_before[start]:
            row = int(np.searchsorted(g.months, m))
            block[i] = g.prefix[row, k] - g.prefix[row, start]
    best: tuple[tuple[int, int], TotalDefinition] | None = None
    for n_terms in range(1, min(MAX_TOTAL_TERMS, len(earlier)) + 1):
        for combo in itertools.combinations(range(len(earlier)), n_terms):
            for signs in itertools.product((1, -1), repeat=n_terms):
                base = values[:, combo] @ np.array(signs, dtype=np.float64)
                for block_sign in (0, 1, -1):
                    expected = base + block_sign * block if block_sign else base
                    ok = np.isfinite(expected) & np.isfinite(target)
                    held = int((ok & (np.abs(target - expected) <= LEARN_TOLERANCE)).sum())
                    seen = int(ok.sum())
                    key = (held, -(n_terms + abs(block_sign)))  # most months, then the fewest terms
                    if not _accept(held, seen) or (best is not None and key <= best[0]):
                        continue
                    periods = frozenset(int(p) for p in statement.periods[months[ok]])
                    terms = tuple((earlier[i], s) for i, s in zip(combo, signs, strict=True))
                    anchor = earlier[0] if block_sign else None
                    n_lines = int(np.isfinite(block).any() and block_sign != 0)
                    best = (key, TotalDefinition(total, anchor, block_sign, terms, held, seen, periods, n_lines))
    return best[1] if best else None


def block_items(definition: TotalDefinition, group: ChartGroup) -> list[int] | None:
    """Items (positions in ``group``) of a definition's block term; None when it cannot be
    evaluated in this chart (the anchor or the total is missing)."""
    if definition.anchor is None:
        return []
    k = group.position.get(definition.total)
    start = group.block_start(definition.anchor)
    if k is None or start is None or start > k:
        return None
    return [i for i in range(start, k) if not group.is_total[i]]


def _expansion(statement: Statement, total: str, definitions: Definitions, depth: int = 0) -> dict[str, float]:
    """A total as signed line coefficients in the latest month (a total without definition is its own)."""
    period = int(statement.periods[-1])
    definition = next((d for d in definitions.get(total, ()) if period in d.periods), None)
    if definition is None or depth > 8:
        return {total: 1.0}
    group = statement.groups[statement.group_of_month[-1]]
    out: dict[str, float] = defaultdict(float)
    for i in block_items(definition, group) or []:
        out[group.codes[i]] += definition.block_sign
    for code, sign in definition.terms:
        for k, v in _expansion(statement, code, definitions, depth + 1).items():
            out[k] += sign * v
    return out


@functools.lru_cache(maxsize=32)
def _identity_candidates(n_totals: int) -> tuple[list[tuple[tuple[int, ...], FloatArray]], FloatArray]:
    """Every total = +-total (+-total) over n totals, and their (totals, candidates) coefficients."""
    candidates = [
        (combo, np.array((1, *signs), dtype=np.float64))
        for size in (2, 3)
        for combo in itertools.combinations(range(n_totals), size)
        for signs in itertools.product((1, -1), repeat=size - 1)
    ]
    coefficients = np.zeros((n_totals, len(candidates)))
    for j, (combo, coef) in enumerate(candidates):
        coefficients[list(combo), j] = coef
    coefficients.setflags(write=False)
    return candidates, coefficients


def _learn_identities(statement: Statement, totals: list[str], definitions: Definitions) -> list[Identity]:
    """Identities between totals (pairs first, then triples) that the definitions do not imply."""
    values = statement.values[:, [statement.column(c) for c in totals]]  # (months, totals)
    coordinates: list[str] = []
    kept_vectors: list[FloatArray] = []
    expansions = {c: _expansion(statement, c, definitions) for c in totals}
    out: list[Identity] = []
    candidates, coefficients = _identity_candidates(len(totals))
    if not candidates:
        return out
    filled = np.nan_to_num(values)
    residual = filled @ coefficients  # (months, candidates): all candidates in one product
    involved = coefficients != 0
    present = np.isfinite(values).astype(np.float64) @ involved == involved.sum(axis=0)
    nonzero = (np.abs(filled) > 0).astype(np.float64) @ involved > 0
    ok_all = present & nonzero
    holds_all = ok_all & (np.abs(residual) <= LEARN_TOLERANCE)
    n_held, n_seen = holds_all.sum(axis=0), ok_all.sum(axis=0)
    passing = np.flatnonzero((n_held >= MIN_MONTHS_HELD) & (n_held >= MIN_HOLD_SHARE * n_seen))
    for j in passing:
        combo, coef = candidates[j]
        ok, holds = ok_all[:, j], holds_all[:, j]
        vector: dict[str, float] = defaultdict(float)
        for i, c in zip(combo, coef, strict=True):
            for k, v in expansions[totals[i]].items():
                vector[k] += c * v
        vector = {k: v for k, v in vector.items() if abs(v) > 1e-9}
        if not vector:
            continue  # a total's own definition restated
        # Months where every line the identity does not cancel is empty prove nothing
        # (operating + financing = net change holds whenever investing is zero).
        lines = statement.values[:, [statement.column(k) for k in vector]]
        informative = (np.abs(np.nan_to_num(lines)) > LEARN_TOLERANCE).any(axis=1)
        held, seen = int((holds & informative).sum()), int((ok & informative).sum())
        if not _accept(held, seen):
            continue
        for k in vector:
            if k not in coordinates:
                coordinates.append(k)
        dense = np.array([vector.get(k, 0.0) for k in coordinates])
        stack = [np.pad(v, (0, len(coordinates) - len(v))) for v in kept_vectors]
        if stack and np.linalg.matrix_rank(np.vstack([*stack, dense])) == len(stack):
            continue  # follows from identities already kept
        kept_vectors.append(dense)
        terms = tuple((totals[i], int(c)) for i, c in zip(combo, coef, strict=True))
        out.append(Identity(terms, held, seen))
    return out


def sections_of_rows(table: LineTable) -> IntArray:
    """Per table row: how many total lines precede it in its document (its section, by line order).

    Two lines with no total between them belong to the same section of the statement.
    """
    if not table.is_total.any():
        return np.zeros(table.n_rows, dtype=np.int64)  # one section per document
    type_index = np.unique(table.document_types.astype(str), return_inverse=True)[1]
    order = np.lexsort((table.row_order, table.periods, type_index, table.property_ids))
    keys = np.column_stack([table.property_ids[order], type_index[order], table.periods[order]])
    new_doc = np.concatenate([[True], np.any(np.diff(keys, axis=0) != 0, axis=1)])
    totals = table.is_total[order].astype(np.int64)
    running = np.cumsum(totals) - totals  # totals strictly before, portfolio-wide
    doc_start = np.maximum.accumulate(np.where(new_doc, np.arange(len(order)), 0))
    out = np.empty(table.n_rows, dtype=np.int64)
    out[order] = running - running[doc_start]
    return out


@dataclass(frozen=True)
class LearnedStatement:
    statement: Statement
    structure: StatementStructure


def learn_statements(table: LineTable) -> dict[tuple[int, str], LearnedStatement]:
    """Every statement of the table with a total line, and what was learned of it."""
    return {(s.property_id, s.document_type): LearnedStatement(s, learn_structure(s)) for s in statements_of(table)}


def learn_all(table: LineTable) -> dict[tuple[int, str], StatementStructure]:
    """The learned structure of every (property, document type) of the table that has totals."""
    return {key: learned.structure for key, learned in learn_statements(table).items()}


@dataclass(frozen=True)
class TotalCoverage:
    """A learned total as signed line weights (in its latest month), with its amounts."""

    total: str
    periods: IntArray
    amounts: FloatArray
    lines: dict[str, float]  # line code -> weight
    is_block: bool  # a plain block of lines (not a sum of other totals)


def coverage(learned: LearnedStatement) -> tuple[list[TotalCoverage], list[tuple[dict[str, float], dict[str, float]]]]:
    """The learned totals as weighted lines, and each identity as (left lines, right lines)."""
    statement, structure = learned.statement, learned.structure
    totals = []
    for total, defs in structure.definitions.items():
        lines = {k: v for k, v in _expansion(statement, total, structure.definitions).items() if k != total}
        if lines:
            column = statement.values[:, statement.column(total)]
            is_block = not defs[-1].terms and defs[-1].block_sign == 1
            totals.append(TotalCoverage(total, statement.periods, column, lines, is_block))
    identities = []
    for ident in structure.identities:
        left = _expansion(statement, ident.terms[0][0], structure.definitions)
        right: dict[str, float] = defaultdict(float)
        for code, sign in ident.terms[1:]:
            for k, v in _expansion(statement, code, structure.definitions).items():
                right[k] -= sign * v
        identities.append((left, dict(right)))
    return totals, identities


def describe(structure: StatementStructure, names: dict[str, str] | None = None) -> list[str]:
    """Sentences of a learned structure, e.g. "Total Revenue = the sum of the 5 lines after ..." ."""

    def label(code: str) -> str:
        return f"{names[code]} ({code})" if names and code in names else code

    lines = [d.describe(label) for defs in structure.definitions.values() for d in defs]
    lines += [ident.describe(label) for ident in structure.identities]
    lines += [f"{label(total)}: {reason}" for total, reason in structure.not_learned.items()]
    return lines
