"""Explanations: root cause, contributing factors, suggested actions and one plain sentence.

Method ``rules+contributions``: the anomaly type comes from the detection rules, the factors
from each feature's robust distance to the series' own history.  SHAP attributions are computed
by anomalies/services/attribution.py when SHAP_ENABLED is on; LIME is not available in this release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXPLANATION_METHOD = "rules+contributions"

ACTIONS: dict[str, list[str]] = {
    "decimal_shift": [
        "Compare the amount with the source invoice or GL entry; a decimal point looks misplaced.",
        "Correct the posting and re-import the statement.",
    ],
    "sign_flip": [
        "Check whether a debit was posted as a credit (or a refund reversed).",
        "Correct the sign and re-import the statement.",
    ],
    "duplicate": ["Look for the same invoice or journal entry posted twice this month.", "Reverse the duplicate posting."],
    "missing": [
        "Ask the property manager whether this month's posting was skipped or accrued elsewhere.",
        "Post the missing amount or document why it is zero.",
    ],
    "misclassification": [
        "Check the coding of this month's entries between the two neighbouring accounts.",
        "Reclassify the amount to the right account.",
    ],
    "level_shift": [
        "Confirm the new level with a lease amendment, contract or rate change.",
        "If it is the new normal, accept it so later months are compared with it.",
    ],
    "spike": [
        "Review the supporting invoices for this month.",
        "Confirm whether it is a one-off (repair, settlement) or an error.",
    ],
    "seasonal": [
        "Check the service period of the invoice: this line is normally empty this month.",
        "Re-accrue the amount to the month it belongs to if needed.",
    ],
    "footing": [
        "Re-add the lines of this section; a line may be missing or mis-keyed.",
        "Re-export the statement from the accounting system.",
    ],
    "balance_mismatch": [
        "Check that the balance sheet was exported complete and for the right period.",
        "Reconcile assets against liabilities plus equity.",
    ],
}


@dataclass
class Explanation:
    root_cause_type: str
    contributing_factors: list[dict[str, Any]]
    suggested_actions: list[str]
    explanation_method: str
    computation_time_ms: float
    sentence: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "root_cause_type": self.root_cause_type,
            "contributing_factors": self.contributing_factors,
            "suggested_actions": self.suggested_actions,
            "explanation_method": self.explanation_method,
            "computation_time_ms": self.computation_time_ms,
            "sentence": self.sentence,
        }


# The factors a keying error multiplies an amount by, as an accountant names them.
SHIFT_FACTORS: tuple[tuple[float, str], ...] = ((10.0, "×10"), (100.0, "×100"), (1000.0, "×1,000"), (0.1, "/10"),
                                                 (0.01, "/100"), (0.001, "/1,000"))  # fmt: skip
# A ratio counts as a factor when it is within this share of it (9.2 is "×10", 7 is not).
FACTOR_TOLERANCE = 0.15
# "Posted twice" is said only of an amount that is about twice the usual one.
DOUBLE_RANGE = (1.8, 2.2)


def _money(x: float) -> str:
    """Rounded as an accountant reads a statement: whole units from 100 up, cents below."""
    if x != x:  # NaN: no amount
        return "no amount"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _times(ratio: float) -> str:
    """'4.1×', '12×', '0.25×': at most two decimals, never a long float."""
    if round(ratio, 1) >= 10:
        return f"{ratio:,.0f}×"
    if round(ratio, 2) >= 1:
        return f"{ratio:.1f}×"
    return f"{ratio:.2f}×" if ratio >= 0.005 else "under 0.01×"


def _ratio(amount: float, expected: float) -> float | None:
    """|amount| / |expected|, or None when there is no usual amount to compare with."""
    if amount != amount or expected != expected or abs(expected) < 0.005:
        return None
    return abs(amount) / abs(expected)


def shift_factor(ratio: float | None) -> str | None:
    """The keying factor (×10, /100...) the ratio is close to, if any."""
    if ratio is None or ratio <= 0:
        return None
    for factor, name in SHIFT_FACTORS:
        if abs(ratio / factor - 1.0) <= FACTOR_TOLERANCE:
            return name
    return None


def _comparison(amount: float, expected: float, basis: str) -> str:
    """'4.1× the median of the six surrounding months (12,300 vs 3,000)', or the difference when a
    ratio would mislead (no usual amount, or the signs differ)."""
    ratio = _ratio(amount, expected)
    if ratio is None or (amount < 0) != (expected < 0):
        return f"{_money(amount)} against {basis} of {_money(expected)}"
    return f"{_times(ratio)} {basis} ({_money(amount)} vs {_money(expected)})"


def _last_year(yoy_ratio: float | None) -> str:
    """'; 3.8× the same month last year' when last year's month says something the first figure does not."""
    if yoy_ratio is None or yoy_ratio != yoy_ratio or yoy_ratio <= 0 or abs(yoy_ratio - 1.0) < FACTOR_TOLERANCE:
        return ""
    return f"; {_times(yoy_ratio)} the same month last year"


@dataclass(frozen=True)
class _Figures:
    """What one sentence is built from."""

    amount: float
    expected: float
    ratio: float | None  # |amount| / |expected|, None without a usual amount
    compared: str  # "4.1× the median of ... (4,100 vs 1,000); 3.8× the same month last year"
    usual_sign: float
    step_ratio: float | None
    partner_account: str | None


def _decimal_shift(f: _Figures) -> str:
    factor = shift_factor(f.ratio)
    if factor:
        return f"{f.compared}; undoing {factor} makes it fit: likely a decimal shift"
    return f"{f.compared}: possibly a keying error in the amount"


def _sign_flip(f: _Figures) -> str:
    usual = "positive" if f.usual_sign > 0 else "negative" if f.usual_sign < 0 else ""
    if not (usual and f.amount == f.amount and f.amount != 0 and (f.amount < 0) == (f.usual_sign > 0)):
        return f"{f.compared}: the sign looks wrong for this account"
    said = f"{_money(f.amount)} where this account is always {usual} (about {_money(f.expected)} expected)"
    if f.ratio is not None and abs(f.ratio - 1.0) <= 0.25:
        return f"{said}; reversing the sign makes it fit: likely a sign flip"
    return f"{said}: the sign is wrong, and the size differs too"


def _duplicate(f: _Figures) -> str:
    if f.ratio is not None and DOUBLE_RANGE[0] <= f.ratio <= DOUBLE_RANGE[1]:
        return f"{f.compared}; halving it makes it fit: likely posted twice"
    extra = f.amount - f.expected
    more = "more" if extra >= 0 else "less"
    return f"{f.compared}: {_money(abs(extra))} {more} than usual, possibly one entry posted twice"


def _missing(f: _Figures) -> str:
    what = "no line" if f.amount != f.amount else _money(f.amount)
    return f"Missing posting: {what} where about {_money(f.expected)} is expected"


def _misclassification(f: _Figures) -> str:
    partner = f" ({f.partner_account})" if f.partner_account else ""
    moved = f.amount - f.expected
    direction = "up" if moved >= 0 else "down"
    return (
        f"{_money(f.amount)} against {_money(f.expected)} expected, {direction} {_money(abs(moved))}, while a "
        f"neighbouring account{partner} moved by about as much the other way: likely posted to the wrong account"
    )


def _level_shift(f: _Figures) -> str:
    step = f.step_ratio if f.step_ratio is not None and f.step_ratio == f.step_ratio and f.step_ratio > 0 else f.ratio
    if step is None:
        return f"New level from this month ({_money(f.amount)}), kept by the following months"
    change = (step - 1.0) * 100
    return (
        f"New level from this month: {_money(f.amount)}, {abs(change):.0f} % "
        f"{'above' if change >= 0 else 'below'} the months before, and the following months stay there"
    )


def _seasonal(f: _Figures) -> str:
    if abs(f.expected) < 0.005:
        return f"{_money(f.amount)} in a month where this line is always empty: seasonal amount in the wrong month"
    return f"{f.compared}: out of season for this line"


def _peer_outlier(f: _Figures) -> str:
    return f"{f.compared}: unlike the same account at the other properties this month"


def _one_off(f: _Figures) -> str:
    if f.ratio is None:
        return f"{f.compared}: one-off"
    if (f.amount < 0) != (f.expected < 0):
        return f"{f.compared}: one-off, of the opposite sign to its usual level"
    direction = "above" if abs(f.amount) >= abs(f.expected) else "below"
    return f"{f.compared}: one-off {direction} its usual level"


# One sentence builder per anomaly type; spikes, drops and plain outliers read as one-offs.
SENTENCES = {
    "decimal_shift": _decimal_shift,
    "sign_flip": _sign_flip,
    "duplicate": _duplicate,
    "missing": _missing,
    "misclassification": _misclassification,
    "level_shift": _level_shift,
    "seasonal": _seasonal,
    "peer_outlier": _peer_outlier,
}


def plain_sentence(
    anomaly_type: str,
    *,
    amount: float,
    expected: float,
    usual_sign: float = 0.0,
    step_ratio: float | None = None,
    partner_account: str | None = None,
    seasonal_family: bool = False,
    yoy_ratio: float | None = None,
) -> str:
    """One sentence a property accountant can read, that never contradicts its own figures.

    Each claim is made only when the figures bear it out: "posted twice" only of an amount about
    twice the usual one, "undoing ×10 makes it fit" only of a ratio close to a power of ten, a sign
    flip only of an amount whose sign differs from the line's usual sign; otherwise the sentence
    states the figures and the kind of error without the claim. Amounts are rounded as on a
    statement and ratios to two figures.
    """
    basis = "the same month in other years" if seasonal_family else "the median of the six surrounding months"
    figures = _Figures(
        amount=amount,
        expected=expected,
        ratio=_ratio(amount, expected),
        compared=_comparison(amount, expected, basis) + _last_year(yoy_ratio),
        usual_sign=usual_sign,
        step_ratio=step_ratio,
        partner_account=partner_account,
    )
    return SENTENCES.get(anomaly_type, _one_off)(figures)


def _feature_value(contributions: list[dict[str, Any]], feature: str) -> float | None:
    for item in contributions:
        if item.get("feature") == feature and isinstance(item.get("value"), int | float):
            return float(item["value"])
    return None


def explain(
    anomaly_type: str,
    contributions: list[dict[str, Any]],
    *,
    amount: float,
    expected: float,
    computation_time_ms: float,
    **sentence_args: Any,
) -> Explanation:
    return Explanation(
        root_cause_type=anomaly_type,
        contributing_factors=contributions,
        suggested_actions=list(ACTIONS.get(anomaly_type, ACTIONS["spike"])),
        explanation_method=EXPLANATION_METHOD,
        computation_time_ms=round(float(computation_time_ms), 3),
        sentence=plain_sentence(
            anomaly_type,
            amount=amount,
            expected=expected,
            yoy_ratio=_feature_value(contributions, "yoy_ratio"),
            **sentence_args,
        ),
    )
