"""The shared vocabulary, each term defined once: document types, property types, anomaly kinds
and the error signatures of keyed amounts.

No Django import: the parsers, the demo generator and the numeric core (anomalies/detection) use
it as plain strings; the models build their ``TextChoices`` from it with :func:`choices`.
"""

from __future__ import annotations

from collections.abc import Mapping

# --- Documents and properties (DESIGN.md §1) --------------------------------------------------------

BALANCE_SHEET = "balance_sheet"
INCOME_STATEMENT = "income_statement"
CASH_FLOW = "cash_flow"
RENT_ROLL = "rent_roll"
MORTGAGE_STATEMENT = "mortgage_statement"

DOCUMENT_TYPE_LABELS: Mapping[str, str] = {
    BALANCE_SHEET: "Balance sheet",
    INCOME_STATEMENT: "Income statement",
    CASH_FLOW: "Cash flow statement",
    RENT_ROLL: "Rent roll",
    MORTGAGE_STATEMENT: "Mortgage statement",
}
DOCUMENT_TYPES: tuple[str, ...] = tuple(DOCUMENT_TYPE_LABELS)

PROPERTY_TYPE_LABELS: Mapping[str, str] = {
    "retail": "Retail",
    "office": "Office",
    "multifamily": "Multifamily",
    "industrial": "Industrial",
    "mixed_use": "Mixed use",
    "hotel": "Hotel",
}
PROPERTY_TYPES: tuple[str, ...] = tuple(PROPERTY_TYPE_LABELS)

# --- Anomaly kinds ---------------------------------------------------------------------------------

DECIMAL_SHIFT = "decimal_shift"
SIGN_FLIP = "sign_flip"
DUPLICATE = "duplicate"
MISSING = "missing"
SPIKE = "spike"
DROP = "drop"
LEVEL_SHIFT = "level_shift"
SEASONAL = "seasonal"
MISCLASSIFICATION = "misclassification"
FOOTING = "footing"
BALANCE_MISMATCH = "balance_mismatch"
PEER_OUTLIER = "peer_outlier"
OUTLIER = "outlier"
NONE = "none"

ANOMALY_KIND_LABELS: Mapping[str, str] = {
    DECIMAL_SHIFT: "Decimal shift",
    SIGN_FLIP: "Sign flip",
    DUPLICATE: "Duplicated posting",
    MISSING: "Missing posting",
    SPIKE: "Spike",
    DROP: "Drop",
    LEVEL_SHIFT: "Level shift",
    SEASONAL: "Seasonal amount in the wrong month",
    MISCLASSIFICATION: "Misclassification",
    FOOTING: "Total does not foot",
    BALANCE_MISMATCH: "Assets != liabilities + equity",
    PEER_OUTLIER: "Outlier among peers",
    OUTLIER: "Outlier",
    NONE: "None",
}
ANOMALY_KINDS: tuple[str, ...] = tuple(ANOMALY_KIND_LABELS)

# --- Error signatures ----------------------------------------------------------------------------
# What a keying error does to an amount. The numeric core marks each panel cell with one of these
# small integer codes (an int8 array), and names the anomaly kind with PATTERN_NAMES.
PATTERN_NONE, PATTERN_DECIMAL, PATTERN_SIGN, PATTERN_DUPLICATE, PATTERN_MISSING = 0, 1, 2, 3, 4
PATTERN_NAMES: Mapping[int, str] = {
    PATTERN_DECIMAL: DECIMAL_SHIFT,
    PATTERN_SIGN: SIGN_FLIP,
    PATTERN_DUPLICATE: DUPLICATE,
    PATTERN_MISSING: MISSING,
}
# (factor, code): the amount as posted is ``factor`` times the intended one (x10, x100, x1000,
# /10, /100, a sign flip, a duplicated posting).  Undoing the factor makes the amount fit again.
ERROR_SIGNATURES: tuple[tuple[float, int], ...] = (
    (10.0, PATTERN_DECIMAL),
    (100.0, PATTERN_DECIMAL),
    (1000.0, PATTERN_DECIMAL),
    (0.1, PATTERN_DECIMAL),
    (0.01, PATTERN_DECIMAL),
    (-1.0, PATTERN_SIGN),
    (2.0, PATTERN_DUPLICATE),
)


def choices(labels: Mapping[str, str]) -> list[tuple[str, tuple[str, str]]]:
    """Members for Django's functional ``TextChoices`` API: NAME -> (value, label)."""
    return [(value.upper(), (value, label)) for value, label in labels.items()]
