"""Statement structure learned from the data: footing and identities without reading account codes."""

from __future__ import annotations

from typing import Any

import numpy as np

from anomalies.detection.engine import detect_anomalies
from anomalies.detection.statements import check_statements
from anomalies.detection.structure import DOES_NOT_FOOT, FOOTS, NOT_LEARNED, describe, learn_all
from anomalies.detection.table import line_table_from_rows

MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]


def statement_rows(
    layout: list[tuple[str, Any]], months: list[str] = MONTHS, document_type: str = "income_statement"
) -> list[dict[str, Any]]:
    """One statement per month; ``layout`` is [(code, amount per month index | 'total:<codes>')]."""
    rows = []
    for t, period in enumerate(months):
        amounts: dict[str, float] = {}
        for code, spec in layout:
            if isinstance(spec, str):
                amount = sum(amounts[c] for c in spec.split(":")[1].split(","))
                total = True
            else:
                amount = float(spec(t)) if callable(spec) else float(spec)
                total = False
            amounts[code] = amount
            rows.append(
                {
                    "property_code": "P1",
                    "document_type": document_type,
                    "period": period,
                    "account_code": code,
                    "amount": round(amount, 2),
                    "is_total": total,
                }
            )
    return rows


# Opaque codes in no sort order; sections in the statement's own order (expenses first).
INCOME = [
    ("ZK.UTIL", lambda t: 900 + 37 * t),
    ("AA-TAX", lambda t: 1200 + (t % 3) * 11),
    ("QQ", "total:ZK.UTIL,AA-TAX"),
    ("REV.BASE", lambda t: 10_000 + 50 * t),
    ("m-park", lambda t: 400 + 13 * (t % 5)),
    ("REV.OTHER", lambda t: 75.25 * (t % 2)),
    ("99", "total:REV.BASE,m-park,REV.OTHER"),
]


def with_net(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append a net total = revenue total - expense total (expenses stored positive)."""
    out = []
    for period in MONTHS:
        doc = [r for r in rows if r["period"] == period]
        value = {r["account_code"]: r["amount"] for r in doc}
        out += doc + [{**doc[0], "account_code": "NET", "amount": round(value["99"] - value["QQ"], 2), "is_total": True}]
    return out


def outcome_of(check, table, code: str, period: str) -> str:  # noqa: ANN001
    for o in check.outcomes:
        if table.account_codes[o.row] == code and table.periods[o.row] == table.periods[_row(table, code, period)]:
            return o.status
    raise AssertionError(f"no outcome for {code} {period}")


def _row(table, code: str, period: str) -> int:  # noqa: ANN001
    from anomalies.detection.table import period_from_string

    return int(np.flatnonzero((table.account_codes == code) & (table.periods == period_from_string(period)))[0])


def test_blocks_and_differences_of_totals_are_learned_and_a_broken_total_is_named() -> None:
    rows = with_net(statement_rows(INCOME))
    broken = next(r for r in rows if r["period"] == "2024-07" and r["account_code"] == "99")
    broken["amount"] += 2_500.0
    table = line_table_from_rows(rows).table
    check = check_statements(table)
    text = "\n".join(describe(learn_all(table)[(0, "income_statement")]))
    assert "QQ = the sum of the 2 lines from the start of the statement" in text
    assert "99 = the sum of the 3 lines after QQ" in text
    assert "NET = 99 - QQ" in text
    [finding] = check.findings
    assert (table.account_codes[finding.row], finding.anomaly_type) == ("99", "footing")
    assert finding.sentence.startswith(f"99 is {broken['amount']:,.2f} but its 3 lines sum to")
    assert outcome_of(check, table, "99", "2024-07") == DOES_NOT_FOOT
    assert outcome_of(check, table, "99", "2024-06") == FOOTS
    # NET itself is consistent with the (wrong) total it is computed from: one event, one finding.
    assert outcome_of(check, table, "NET", "2024-07") == FOOTS


def test_assets_equal_liabilities_plus_equity_is_learned_and_checked() -> None:
    layout = [
        ("cash", lambda t: 5_000 + 100 * t),
        ("bldg", 90_000),
        ("TA", "total:cash,bldg"),
        ("ap", lambda t: 2_000 + 40 * t),
        ("loan", lambda t: 60_000 - 10 * t),
        ("TL", "total:ap,loan"),
        ("capital", lambda t: 33_000 + 70 * t),
        ("TE", "total:capital"),
    ]
    rows = statement_rows(layout, document_type="balance_sheet")
    # Month 5: every total foots, but the sheet does not balance.
    for r in rows:
        if r["period"] == "2024-05" and r["account_code"] in ("capital", "TE"):
            r["amount"] += 4_000.0
    table = line_table_from_rows(rows).table
    check = check_statements(table)
    structure = learn_all(table)[(0, "balance_sheet")]
    assert [i.describe().split(" (")[0] for i in structure.identities] == ["TA = TL + TE"]
    assert [(table.account_codes[f.row], f.anomaly_type) for f in check.findings] == [("TA", "balance_mismatch")]


def test_totals_that_foot_in_no_month_get_no_findings_and_say_so() -> None:
    # Each "total" also takes in a line of another section with a varying share: nothing foots.
    layout = [
        ("a", lambda t: 100 + t),
        ("b", lambda t: 200 + 3 * t),
        ("T1", "total:a,b"),
        ("c", lambda t: 50 + 7 * t),
        ("T2", "total:c"),
    ]
    rows = statement_rows(layout)
    for r in rows:
        if r["is_total"]:
            r["amount"] += 17.0 * (int(r["period"][-2:]) % 4 + 1)
    table = line_table_from_rows(rows).table
    check = check_statements(table)
    assert check.findings == []
    assert {o.status for o in check.outcomes} == {NOT_LEARNED}
    assert all("structure not learned" in o.reason for o in check.outcomes)
    result = detect_anomalies(table, use_pyod=False)
    assert not result.is_anomaly[table.is_total].any()


def test_fewer_than_three_months_learn_nothing_yet() -> None:
    rows = statement_rows(INCOME, months=MONTHS[:2])
    rows[2]["amount"] += 500.0  # would not foot
    check = check_statements(line_table_from_rows(rows).table)
    assert check.findings == []
    assert {o.status for o in check.outcomes} == {NOT_LEARNED}
    assert all("2 month(s) of history" in o.reason for o in check.outcomes)


def test_a_chart_change_is_learned_again_and_later_months_are_not_flagged() -> None:
    rows = statement_rows(INCOME)
    # From September an account is added to the revenue block and one is renamed.
    later = []
    for r in rows:
        if r["period"] >= "2024-09":
            renamed = {"m-park": "PARKING-NEW", "QQ": "QQ-2", "ZK.UTIL": "UT-2", "AA-TAX": "TX-2"}
            r = {**r, "account_code": renamed.get(r["account_code"], r["account_code"])}
            if r["account_code"] == "99":
                later.append({**r, "account_code": "new-line", "amount": 333.0, "is_total": False})
                r = {**r, "amount": r["amount"] + 333.0}
        later.append(r)
    table = line_table_from_rows(later).table
    check = check_statements(table)
    assert check.findings == []
    assert all(o.status == FOOTS for o in check.outcomes)
    text = describe(learn_all(table)[(0, "income_statement")])
    assert "99 = the sum of the 3 lines after QQ (foots in 8 of 8 months)" in text
    assert "99 = the sum of the 4 lines after QQ-2 (foots in 4 of 4 months)" in text


def test_detection_reports_footing_only_from_the_learned_structure() -> None:
    rows = with_net(statement_rows(INCOME))
    broken = next(r for r in rows if r["period"] == "2024-10" and r["account_code"] == "QQ")
    broken["amount"] -= 1_000.0
    table = line_table_from_rows(rows).table
    result = detect_anomalies(table, use_pyod=False)
    flagged_totals = {
        (table.account_codes[r], int(table.periods[r])) for r in np.flatnonzero(result.is_anomaly & table.is_total)
    }
    assert flagged_totals == {("QQ", _period("2024-10"))}
    statuses = {o.status for o in result.total_outcomes}
    assert statuses == {FOOTS, DOES_NOT_FOOT}


def _period(label: str) -> int:
    from anomalies.detection.table import period_from_string

    return period_from_string(label)
