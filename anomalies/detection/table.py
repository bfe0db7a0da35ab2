"""The detection input: a columnar table of line items and its series panel.

One row of :class:`LineTable` is one line item of the latest version of a document. Detection
works on *series* (property, document_type, account_code) over periods; :func:`build_panel`
lays the non-total rows out as a dense ``(series, period)`` matrix so that every feature is a
vectorised array operation over the whole portfolio at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.periods import label_from_ordinal, ordinal_from_label

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]


# Periods are months since year 0 (year * 12 + month - 1): kernel.periods, Django-free too,
# is the one place that parses and formats them.
period_from_string = ordinal_from_label
period_to_string = label_from_ordinal


@dataclass(frozen=True)
class LineTable:
    """Columnar line items, one row per line of the latest document versions."""

    line_ids: IntArray
    property_ids: IntArray
    property_types: ObjArray
    document_types: ObjArray
    account_codes: ObjArray
    periods: IntArray
    amounts: FloatArray
    is_total: BoolArray
    row_order: IntArray

    def __post_init__(self) -> None:
        n = len(self.line_ids)
        for name in LINE_TABLE_COLUMNS[1:]:
            if len(getattr(self, name)) != n:
                raise ValueError(f"LineTable column {name} has {len(getattr(self, name))} rows, expected {n}")

    @property
    def n_rows(self) -> int:
        return len(self.line_ids)

    @classmethod
    def from_columns(  # noqa: PLR0913 -- one keyword per LineTable column
        cls,
        *,
        line_ids: Iterable[int],
        property_ids: Iterable[int],
        property_types: Iterable[str],
        document_types: Iterable[str],
        account_codes: Iterable[str],
        periods: Iterable[int],
        amounts: Iterable[float | None],
        is_total: Iterable[bool],
        row_order: Iterable[int],
    ) -> LineTable:
        """Build a table from plain Python iterables, coercing dtypes (None amount -> NaN)."""
        return cls(
            line_ids=np.asarray(list(line_ids), dtype=np.int64),
            property_ids=np.asarray(list(property_ids), dtype=np.int64),
            property_types=_object_array(property_types),
            document_types=_object_array(document_types),
            account_codes=_object_array(account_codes),
            periods=np.asarray(list(periods), dtype=np.int64),
            amounts=np.asarray([np.nan if a is None else float(a) for a in amounts], dtype=np.float64),
            is_total=np.asarray(list(is_total), dtype=np.bool_),
            row_order=np.asarray(list(row_order), dtype=np.int64),
        )

    def take(self, index: npt.ArrayLike) -> LineTable:
        """A new table holding the given rows (boolean mask or integer index)."""
        idx = np.asarray(index)
        return LineTable(
            line_ids=self.line_ids[idx],
            property_ids=self.property_ids[idx],
            property_types=self.property_types[idx],
            document_types=self.document_types[idx],
            account_codes=self.account_codes[idx],
            periods=self.periods[idx],
            amounts=self.amounts[idx],
            is_total=self.is_total[idx],
            row_order=self.row_order[idx],
        )


# The columns in declaration order (line_ids first).
LINE_TABLE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LineTable))


def _object_array(values: Iterable[Any]) -> ObjArray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = [str(v) for v in items]
    return out


def _codes(values: ObjArray) -> tuple[ObjArray, IntArray]:
    """Dictionary-encode an object column: (unique values, integer code per row)."""
    if len(values) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    uniques, inverse = np.unique(values.astype(str), return_inverse=True)
    return uniques.astype(object), inverse.astype(np.int64)


@dataclass(frozen=True)
class SeriesPanel:
    """Non-total rows of a table laid out as a dense (series, period) matrix.

    ``values[s, t]`` is the amount of series ``s`` at period ``period0 + t`` (NaN when the
    series has no line that month), ``rows[s, t]`` the table row index (-1 when absent).
    ``document_present[s, t]`` tells whether the series' document (property, document_type)
    exists that month, which separates an absent posting from a document not yet delivered.
    """

    period0: int
    values: FloatArray
    rows: IntArray
    document_present: BoolArray
    property_ids: IntArray
    property_types: ObjArray
    document_types: ObjArray
    account_codes: ObjArray
    row_order: FloatArray  # median position of the line in its document, for neighbour accounts
    document_ids: IntArray  # one id per (property, document_type)
    series_of_row: IntArray = field(repr=False)  # table row -> series index (-1 for totals)

    @property
    def n_series(self) -> int:
        return self.values.shape[0]

    @property
    def n_periods(self) -> int:
        return self.values.shape[1]

    @property
    def periods(self) -> IntArray:
        return np.arange(self.period0, self.period0 + self.n_periods, dtype=np.int64)

    def observed(self) -> BoolArray:
        return self.rows >= 0


def build_panel(table: LineTable) -> SeriesPanel:
    """Group the non-total rows of ``table`` into series, vectorised with np.unique/lexsort.

    When a series has two lines in one period (should not happen: account codes are unique
    within a document) the one with the highest line id wins, as the latest one.
    """
    n = table.n_rows
    detail = ~table.is_total
    if n == 0 or not detail.any():
        return _empty_panel(n)
    _, doc_type_code = _codes(table.document_types)
    _, account_code = _codes(table.account_codes)
    key = np.stack([table.property_ids, doc_type_code, account_code], axis=1)
    detail_idx = np.flatnonzero(detail)
    series_keys, series_inverse = np.unique(key[detail_idx], axis=0, return_inverse=True)
    series_inverse = series_inverse.reshape(-1)

    period0 = int(table.periods.min())
    n_periods = int(table.periods.max()) - period0 + 1
    n_series = len(series_keys)
    values = np.full((n_series, n_periods), np.nan)
    rows = np.full((n_series, n_periods), -1, dtype=np.int64)
    # Sort by line id so that, on a duplicate cell, the last write (highest id) wins.
    order = np.argsort(table.line_ids[detail_idx], kind="stable")
    ordered_rows = detail_idx[order]
    s_idx = series_inverse[order]
    t_idx = table.periods[ordered_rows] - period0
    values[s_idx, t_idx] = table.amounts[ordered_rows]
    rows[s_idx, t_idx] = ordered_rows

    # Documents (property, document_type) and the months in which each exists.
    doc_keys, doc_inverse = np.unique(key[:, :2], axis=0, return_inverse=True)
    doc_inverse = doc_inverse.reshape(-1)
    doc_present_by_doc = np.zeros((len(doc_keys), n_periods), dtype=bool)
    doc_present_by_doc[doc_inverse, table.periods - period0] = True
    first_row_of_series = np.zeros(n_series, dtype=np.int64)
    first_row_of_series[series_inverse] = detail_idx
    series_doc = doc_inverse[first_row_of_series]

    # Median row order of each series, for "neighbouring account" tests.
    order_sum = np.bincount(series_inverse, weights=table.row_order[detail_idx], minlength=n_series)
    order_cnt = np.bincount(series_inverse, minlength=n_series)
    row_order = order_sum / np.maximum(order_cnt, 1)

    series_of_row = np.full(n, -1, dtype=np.int64)
    series_of_row[detail_idx] = series_inverse
    return SeriesPanel(
        period0=period0,
        values=values,
        rows=rows,
        document_present=doc_present_by_doc[series_doc],
        property_ids=series_keys[:, 0].astype(np.int64),
        property_types=table.property_types[first_row_of_series],
        document_types=table.document_types[first_row_of_series],
        account_codes=table.account_codes[first_row_of_series],
        row_order=row_order.astype(np.float64),
        document_ids=series_doc.astype(np.int64),
        series_of_row=series_of_row,
    )


def _empty_panel(n_rows: int) -> SeriesPanel:
    return SeriesPanel(
        period0=0,
        values=np.empty((0, 0)),
        rows=np.empty((0, 0), dtype=np.int64),
        document_present=np.empty((0, 0), dtype=bool),
        property_ids=np.empty(0, dtype=np.int64),
        property_types=np.empty(0, dtype=object),
        document_types=np.empty(0, dtype=object),
        account_codes=np.empty(0, dtype=object),
        row_order=np.empty(0),
        document_ids=np.empty(0, dtype=np.int64),
        series_of_row=np.full(n_rows, -1, dtype=np.int64),
    )


@dataclass(frozen=True)
class RowsAdapterResult:
    table: LineTable
    property_codes: ObjArray  # property id -> code (ids are 0..n-1)


def line_table_from_rows(rows: Iterable[Mapping[str, Any]]) -> RowsAdapterResult:
    """Adapt DESIGN.md §4 CSV-shaped dicts to a LineTable (Django-free; used by benchmarks).

    Property codes become ints 0..n-1 in order of first appearance; ``row_order`` is the
    position of the line inside its (property, document_type, period) document.
    """
    code_to_id: dict[str, int] = {}
    position: dict[tuple[str, str, str], int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in LINE_TABLE_COLUMNS if k != "line_ids"}
    for row in rows:
        code = str(row["property_code"])
        pid = code_to_id.setdefault(code, len(code_to_id))
        doc = (code, str(row["document_type"]), str(row["period"]))
        pos = position.get(doc, 0)
        position[doc] = pos + 1
        amount = row.get("amount")
        total = row.get("is_total", False)
        if isinstance(total, str):
            total = total.strip().lower() in ("true", "1", "yes")
        cols["property_ids"].append(pid)
        cols["property_types"].append(row.get("property_type") or "")
        cols["document_types"].append(row["document_type"])
        cols["account_codes"].append(row["account_code"])
        cols["periods"].append(period_from_string(str(row["period"])))
        cols["amounts"].append(None if amount in (None, "") else float(amount))
        cols["is_total"].append(bool(total))
        cols["row_order"].append(pos)
    n = len(cols["periods"])
    table = LineTable.from_columns(line_ids=range(n), **cols)
    codes = np.empty(len(code_to_id), dtype=object)
    for code, pid in code_to_id.items():
        codes[pid] = code
    return RowsAdapterResult(table=table, property_codes=codes)
