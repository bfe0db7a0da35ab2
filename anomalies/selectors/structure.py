"""The statement structure detection learned for one property and document type (a read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anomalies.detection.structure import describe, learn_statements
from anomalies.detection.table import LineTable
from documents.scoping import properties_visible_to
from documents.selectors import line_items_of_latest_documents


@dataclass(frozen=True)
class LearnedStructure:
    property_code: str
    document_type: str
    months: int
    sentences: list[str]  # "Total Revenue (4999-0000) = the sum of the 5 lines from the start ..."


def statement_structure_get(*, property_id: int, document_type: str, user: Any) -> LearnedStructure | None:
    """What the engine learns from the latest documents of one property and type (None: no such
    property in the user's portfolios).  The same learning as a detection pass, on the same lines."""
    prop = properties_visible_to(user).filter(id=property_id).only("code").first()
    if prop is None:
        return None
    rows = list(
        line_items_of_latest_documents()
        .filter(document__property_id=property_id, document__document_type=document_type)
        .order_by("document__period__ordinal", "row_order")
        .values_list("id", "document__period__ordinal", "account_code", "account_name", "amount", "is_total", "row_order")
    )
    names = {code: name for _, _, code, name, _, _, _ in rows}
    table = LineTable.from_columns(
        line_ids=[r[0] for r in rows],
        property_ids=[property_id] * len(rows),
        property_types=[""] * len(rows),
        document_types=[document_type] * len(rows),
        account_codes=[r[2] for r in rows],
        periods=[r[1] for r in rows],
        amounts=[r[4] for r in rows],
        is_total=[r[5] for r in rows],
        row_order=[r[6] for r in rows],
    )
    learned = learn_statements(table).get((property_id, document_type))
    if learned is None:
        months = len({r[1] for r in rows})
        reason = "no total lines" if rows else "no documents"
        return LearnedStructure(prop.code, document_type, months, [f"Nothing to learn: {reason}."])
    return LearnedStructure(prop.code, document_type, learned.structure.n_months, describe(learned.structure, names))
