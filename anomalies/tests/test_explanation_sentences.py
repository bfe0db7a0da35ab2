"""The review page's plain sentence (anomalies.detection.explanation.plain_sentence) for every
anomaly type: what an accountant reads, rounded, and never contradicting its own figures."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalies.detection.explanation import plain_sentence
from anomalies.models import AnomalyType

# Footing and balance sentences come from the statement checks, not from plain_sentence.
SERIES_TYPES = sorted(set(AnomalyType.values) - {"footing", "balance_mismatch"})
LONG_FLOAT = re.compile(r"\d\.\d{3,}")


CASES = [
    (
        "decimal_shift",
        {"amount": 12_300.0, "expected": 1_230.4, "yoy_ratio": 9.6},
        "10× the median of the six surrounding months (12,300 vs 1,230); 9.6× the same month last year; "
        "undoing ×10 makes it fit: likely a decimal shift",
    ),
    (
        "decimal_shift",
        {"amount": 4_100.0, "expected": 1_000.0},
        "4.1× the median of the six surrounding months (4,100 vs 1,000): possibly a keying error in the amount",
    ),
    (
        "sign_flip",
        {"amount": -1_250.0, "expected": 1_240.0, "usual_sign": 1.0},
        "-1,250 where this account is always positive (about 1,240 expected); reversing the sign makes it fit: "
        "likely a sign flip",
    ),
    (
        "duplicate",
        {"amount": 2_010.0, "expected": 1_000.0, "seasonal_family": True},
        "2.0× the same month in other years (2,010 vs 1,000); halving it makes it fit: likely posted twice",
    ),
    (
        "duplicate",  # the contradiction: 1.1x must not read "likely posted twice"
        {"amount": 1_100.0, "expected": 1_000.0},
        "1.1× the median of the six surrounding months (1,100 vs 1,000): 100 more than usual, possibly one "
        "entry posted twice",
    ),
    ("missing", {"amount": math.nan, "expected": 850.0}, "Missing posting: no line where about 850 is expected"),
    ("missing", {"amount": 0.0, "expected": 62.5}, "Missing posting: 0.00 where about 62.50 is expected"),
    (
        "misclassification",
        {"amount": 5_400.0, "expected": 1_400.0, "partner_account": "6120-0000"},
        "5,400 against 1,400 expected, up 4,000, while a neighbouring account (6120-0000) moved by about as "
        "much the other way: likely posted to the wrong account",
    ),
    (
        "level_shift",
        {"amount": 1_150.0, "expected": 1_000.0, "step_ratio": 1.15},
        "New level from this month: 1,150, 15 % above the months before, and the following months stay there",
    ),
    (
        "seasonal",
        {"amount": 3_200.0, "expected": 0.0},
        "3,200 in a month where this line is always empty: seasonal amount in the wrong month",
    ),
    (
        "spike",
        {"amount": 4_100.0, "expected": 1_000.0, "yoy_ratio": 3.8},
        "4.1× the median of the six surrounding months (4,100 vs 1,000); 3.8× the same month last year: "
        "one-off above its usual level",
    ),
    (
        "drop",
        {"amount": 250.0, "expected": 1_000.0},
        "0.25× the median of the six surrounding months (250 vs 1,000): one-off below its usual level",
    ),
    (
        "peer_outlier",
        {"amount": 99.84482074384786, "expected": 12.5},
        "8.0× the median of the six surrounding months (99.84 vs 12.50): unlike the same account at the other "
        "properties this month",
    ),
    (
        "outlier",
        {"amount": 500.0, "expected": -500.0},
        "500 against the median of the six surrounding months of -500: one-off, of the opposite sign to its usual level",
    ),
    (
        "none",
        {"amount": 1_000.0, "expected": 900.0},
        "1.1× the median of the six surrounding months (1,000 vs 900): one-off above its usual level",
    ),
]


@pytest.mark.parametrize(("anomaly_type", "args", "sentence"), CASES)
def test_each_type_reads_as_an_accountant_says_it(anomaly_type, args, sentence):
    assert plain_sentence(anomaly_type, **args) == sentence


def test_every_series_type_has_an_example_above():
    covered = {anomaly_type for anomaly_type, _, _ in CASES}
    assert covered == set(SERIES_TYPES)


def _ratio_in(sentence: str) -> float | None:
    match = re.match(r"^([0-9.,]+)×", sentence)
    return float(match.group(1).replace(",", "")) if match else None


amounts = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False) | st.just(0.0) | st.just(math.nan)


@settings(max_examples=400, deadline=None)
@given(
    anomaly_type=st.sampled_from(SERIES_TYPES),
    amount=amounts,
    expected=st.floats(min_value=-1e7, max_value=1e7, allow_nan=False),
    usual_sign=st.sampled_from([-1.0, 0.0, 1.0]),
    step_ratio=st.none() | st.floats(min_value=0.01, max_value=100),
    yoy_ratio=st.none() | st.floats(min_value=-5, max_value=50, allow_nan=False),
    seasonal=st.booleans(),
)
def test_no_sentence_contradicts_its_own_figures(
    anomaly_type, amount, expected, usual_sign, step_ratio, yoy_ratio, seasonal
):
    sentence = plain_sentence(
        anomaly_type,
        amount=amount,
        expected=expected,
        usual_sign=usual_sign,
        step_ratio=step_ratio,
        seasonal_family=seasonal,
        yoy_ratio=yoy_ratio,
    )
    assert not LONG_FLOAT.search(sentence), sentence  # rounded
    assert not re.search(r"\b(None|nan|inf)\b", sentence), sentence
    ratio = abs(amount) / abs(expected) if amount == amount and abs(expected) >= 0.005 else None
    if "likely posted twice" in sentence:
        assert ratio is not None and 1.8 <= ratio <= 2.2, sentence
    if "undoing ×10 " in sentence:
        assert ratio is not None and 8.5 <= ratio <= 11.5, sentence
    if "likely a sign flip" in sentence:
        assert amount * usual_sign < 0, sentence
    if "one-off above" in sentence:
        assert abs(amount) >= abs(expected), sentence
    if "one-off below" in sentence:
        assert abs(amount) < abs(expected), sentence
    if "always empty" in sentence:
        assert abs(expected) < 0.005, sentence
    shown = _ratio_in(sentence)
    if shown is not None and ratio is not None:
        assert shown == pytest.approx(ratio, rel=0.06, abs=0.006), sentence
