"""Explanations: root cause, contributing factors, suggested actions and one plain sentence.

Method ``rules+contributions``: the anomaly type comes from the detection rules, the factors
from each feature's robust distance to the series' own history.  SHAP and LIME are not computed
here, so they are not reported (no placeholder values).
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


def _money(x: float) -> str:
    return f"{x:,.2f}"


def plain_sentence(
    anomaly_type: str,
    *,
    amount: float,
    expected: float,
    usual_sign: float = 0.0,
    step_ratio: float | None = None,
    partner_account: str | None = None,
    seasonal_family: bool = False,
) -> str:
    """One sentence a property accountant can read without the numbers behind it."""
    basis = "the same month in other years" if seasonal_family else "its 12-month median"
    ratio = abs(amount) / abs(expected) if expected else float("inf")
    if anomaly_type == "decimal_shift":
        return f"{ratio:.1f}x {basis} ({_money(amount)} vs {_money(expected)}): likely decimal shift"
    if anomaly_type == "sign_flip":
        usual = "positive" if usual_sign > 0 else "negative" if usual_sign < 0 else "of the other sign"
        return f"Sign flipped: {_money(amount)} where this account is always {usual}"
    if anomaly_type == "duplicate":
        return f"{ratio:.1f}x {basis} ({_money(amount)} vs {_money(expected)}): likely posted twice"
    if anomaly_type == "missing":
        what = "no line" if amount != amount else _money(amount)  # NaN: the line is absent
        return f"Missing posting: {what} where about {_money(expected)} is expected"
    if anomaly_type == "misclassification":
        partner = f" and {partner_account}" if partner_account else ""
        return (
            f"Amount moved between neighbouring accounts{partner}: {_money(amount)} vs "
            f"{_money(expected)} expected, offset by the neighbour: likely misclassification"
        )
    if anomaly_type == "level_shift":
        pct = ((step_ratio or ratio) - 1.0) * 100
        return f"New level from this month: {pct:+.0f}% against the previous months ({_money(amount)})"
    if anomaly_type == "seasonal":
        return f"{_money(amount)} in a month where this line is always empty: seasonal amount in the wrong month"
    direction = "above" if abs(amount) >= abs(expected) else "below"
    return f"{ratio:.1f}x {basis} ({_money(amount)} vs {_money(expected)}): one-off {direction} its usual level"


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
        sentence=plain_sentence(anomaly_type, amount=amount, expected=expected, **sentence_args),
    )
