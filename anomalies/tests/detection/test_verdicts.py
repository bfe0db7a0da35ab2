"""What verdicts teach (anomalies.detection.verdicts), on hand-made arrays."""

from __future__ import annotations

import numpy as np

from anomalies.detection.scoring import FLAG_SCORE
from anomalies.detection.verdicts import Candidates, VerdictArrays, applicable, learn

ZERO_MONTHS = [
    # id, property, doc, account, period, amount, confirmed, kind, score, age_days
    (1, 7, "income_statement", "52200", 3, 0.0, False, "missing", 70.0, 5.0),
    (2, 7, "income_statement", "52200", 9, 0.0, False, "missing", 72.0, 4.0),
]


def candidate(*, prop: int = 7, account: str = "52200", kind: str = "missing", score: float = 71.0) -> Candidates:
    return Candidates(
        property_ids=np.array([prop]),
        document_types=np.array(["income_statement"], dtype=object),
        account_codes=np.array([account], dtype=object),
        kinds=np.array([kind], dtype=object),
        scores=np.array([score]),
    )


def test_two_dismissed_zero_months_stop_the_account_alarming_on_zero_months():
    learned = learn(VerdictArrays.from_rows(ZERO_MONTHS), candidate())
    assert not learned.flagged[0]
    assert learned.scores[0] < FLAG_SCORE
    assert learned.reasons[0].startswith("like 2 dismissed false positives on 52200 at this property")
    assert set(learned.verdict_ids[0]) == {1, 2}


def test_other_kinds_other_accounts_and_far_stronger_evidence_still_alarm():
    verdicts = VerdictArrays.from_rows(ZERO_MONTHS)
    assert learn(verdicts, candidate(kind="decimal_shift")).flagged[0]
    assert learn(verdicts, candidate(account="52300")).flagged[0]
    assert learn(verdicts, candidate(score=99.0)).flagged[0]  # z 50 against dismissed z ~8


def test_a_kind_confirmed_again_and_again_keeps_alarming():
    confirmed = [(10 + i, 7, "income_statement", "52200", 12 + i, 0.0, True, "missing", 70.0, 1.0) for i in range(3)]
    learned = learn(VerdictArrays.from_rows(ZERO_MONTHS + confirmed), candidate())
    assert learned.flagged[0]
    assert learned.confidence[0] < 0.5


def test_auto_suppression_keeps_the_line_visible_with_its_reason():
    many = [(i, 7, "income_statement", "52200", i, 0.0, False, "missing", 70.0, 1.0) for i in range(1, 5)]
    learned = learn(VerdictArrays.from_rows(many), candidate(), suppression_threshold=0.8)
    assert learned.confidence[0] >= 0.8
    assert learned.suppressed[0] and learned.flagged[0]
    assert "like 4 dismissed false positives on 52200 at this property" in learned.reasons[0]
    # Below the threshold nothing is suppressed (the score is lowered instead).
    few = learn(VerdictArrays.from_rows(many[:2]), candidate(), suppression_threshold=0.8)
    assert not few.suppressed[0]


def test_arithmetic_findings_are_never_learned_away():
    rows = [(i, 7, "balance_sheet", "TOTAL", i, 5.0, False, "footing", 70.0, 1.0) for i in range(1, 6)]
    cands = Candidates(
        np.array([7]),
        np.array(["balance_sheet"], dtype=object),
        np.array(["TOTAL"], dtype=object),
        np.array(["footing"], dtype=object),
        np.array([70.0]),
    )
    learned = learn(VerdictArrays.from_rows(rows), cands, suppression_threshold=0.8)
    assert learned.flagged[0] and not learned.suppressed[0] and learned.confidence[0] == 0.0


def test_peer_properties_teach_at_half_weight():
    peers = [(i, 100 + i, "rent_roll", "RR-OCC", 3, 93.0, False, "level_shift", 75.0, 1.0) for i in range(3)]
    cands = Candidates(
        np.array([7]),
        np.array(["rent_roll"], dtype=object),
        np.array(["RR-OCC"], dtype=object),
        np.array(["level_shift"], dtype=object),
        np.array([75.0]),
    )
    learned = learn(VerdictArrays.from_rows(peers), cands)
    assert np.isclose(learned.confidence[0], 1.5 / 2.5)
    assert "at 3 other properties" in learned.reasons[0]


def test_only_recent_latest_verdicts_on_lines_still_as_seen_count():
    rows = [
        (1, 7, "income_statement", "52200", 3, 0.0, False, "missing", 70.0, 200.0),  # too old
        (2, 7, "income_statement", "52200", 4, 0.0, False, "missing", 70.0, 1.0),  # line removed
        (3, 7, "income_statement", "52200", 5, 0.0, False, "missing", 70.0, 1.0),  # amount changed since
        (4, 7, "income_statement", "52200", 6, 0.0, True, "missing", 70.0, 2.0),  # analyst A: error
        (5, 7, "income_statement", "52200", 6, 0.0, False, "missing", 70.0, 1.0),  # analyst B, later: normal
    ]
    present = {(7, "income_statement", "52200", 3): 0.0, (7, "income_statement", "52200", 5): 120.0}
    present[(7, "income_statement", "52200", 6)] = 0.0
    mask = applicable(VerdictArrays.from_rows(rows), present, lookback_days=90)
    assert mask.tolist() == [False, False, False, False, True]
