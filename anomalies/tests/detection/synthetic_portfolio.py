"""An independent synthetic portfolio with labelled anomalies, for tests and benchmarks.

Written apart from the demo generator on purpose: detection constants are checked against two
generators with different quirks. Normal behaviour follows property accounting: annual rent
escalations, CAM true-ups, tax instalments, annual insurance, seasonal utilities, winter-only
snow removal, summer landscaping, heavy-tailed repairs, payroll months with three pay runs,
amortising mortgages, a balance sheet that balances, mixed-sign cash-flow lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROPERTY_TYPES = ("retail", "office", "multifamily", "industrial", "mixed_use", "hotel")
KINDS = (
    "decimal_shift",
    "sign_flip",
    "duplicate",
    "missing",
    "misclassification",
    "level_shift",
    "spike",
    "seasonal",
)


@dataclass
class SyntheticPortfolio:
    rows: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)


def _period(start_year: int, m: int) -> str:
    return f"{start_year + m // 12:04d}-{m % 12 + 1:02d}"


def _property_lines(rng: np.random.Generator, ptype: str, months: int) -> dict[str, dict[str, np.ndarray]]:
    """Clean monthly amounts for one property: {document_type: {account_code: series}}."""
    t = np.arange(months)
    cal = t % 12  # 0 = January
    scale = float(rng.lognormal(np.log(60_000), 0.6))
    anniversary = int(rng.integers(12))
    esc = 1.0 + rng.uniform(0.02, 0.04)
    years_passed = (t + (12 - anniversary)) // 12 - (1 if anniversary else 0)
    years_passed = np.maximum(years_passed, 0)
    rent = scale * esc**years_passed
    if ptype in ("multifamily", "hotel"):
        rent = rent * (1 + rng.normal(0, 0.015, months))
    if ptype == "hotel":
        rent = rent * (1 + 0.25 * np.sin(2 * np.pi * (cal - 3) / 12))
    inc: dict[str, np.ndarray] = {"4010-0000": rent}
    if ptype in ("retail", "office", "mixed_use"):
        cam = scale * 0.18 * (1 + rng.normal(0, 0.03, months))
        cam[cal == 2] *= 1 + rng.normal(0.1, 0.15, int((cal == 2).sum()))  # annual true-up in March
        inc["4020-0000"] = cam
    inc["4030-0000"] = scale * 0.05 * (1 + rng.normal(0, 0.06, months))
    inc["4040-0000"] = scale * 0.01 * rng.lognormal(0, 0.5, months)
    revenue = sum(inc.values())
    opx: dict[str, np.ndarray] = {}
    tax_annual = scale * 12 * 0.12 * 1.03 ** (t // 12)
    if rng.random() < 0.5:
        opx["5010-0000"] = np.where(np.isin(cal, [3, 9]), tax_annual / 2, 0.0)  # instalments Apr/Oct
    else:
        opx["5010-0000"] = tax_annual / 12
    ins_month = int(rng.integers(12))
    ins = scale * 12 * 0.03 * 1.05 ** (t // 12)
    opx["5020-0000"] = np.where(cal == ins_month, ins, 0.0) if rng.random() < 0.5 else ins / 12
    season = 1 + 0.35 * np.cos(2 * np.pi * cal / 12) + 0.15 * np.cos(2 * np.pi * (cal - 6) / 6)
    opx["5030-0000"] = scale * 0.08 * season * (1 + rng.normal(0, 0.07, months))
    opx["5040-0000"] = scale * 0.04 * rng.lognormal(0, 0.55, months)
    if rng.random() < 0.6:
        winter = np.isin(cal, [11, 0, 1, 2])
        opx["5050-0000"] = np.where(winter, scale * 0.03 * rng.lognormal(0, 0.4, months), 0.0)
    if rng.random() < 0.6:
        summer = np.isin(cal, [3, 4, 5, 6, 7, 8, 9])
        opx["5060-0000"] = np.where(summer, scale * 0.015 * (1 + rng.normal(0, 0.1, months)), 0.0)
    opx["5070-0000"] = revenue * rng.uniform(0.03, 0.045)
    payroll = scale * 0.1 * 1.03 ** (t // 12)
    three_runs = np.isin(cal, rng.choice(12, size=2, replace=False))
    opx["5080-0000"] = payroll * np.where(three_runs, 1.5, 1.0)

    loan = scale * 12 * 8
    rate = rng.uniform(0.035, 0.065)
    payment = loan * (rate / 12) / (1 - (1 + rate / 12) ** -300)
    balance = np.empty(months)
    interest = np.empty(months)
    principal = np.empty(months)
    b = loan
    for m in range(months):
        interest[m] = b * rate / 12
        principal[m] = payment - interest[m]
        b -= principal[m]
        balance[m] = b
    escrow = scale * 0.5 + np.cumsum(rng.normal(0, scale * 0.01, months))
    inc_nonop = {"6010-0000": interest}
    net_income = revenue - sum(opx.values()) - interest

    depreciation = scale * 12 * 10 / 39 / 12
    building = scale * 12 * 10
    bs: dict[str, np.ndarray] = {}
    receivables = scale * 0.3 * (1 + rng.normal(0, 0.2, months))
    payables = scale * 0.25 * (1 + rng.normal(0, 0.15, months))
    deposits = scale * 0.8 * np.ones(months)
    capital = building * 0.35
    cash = scale * 2 + np.cumsum(net_income - principal + rng.normal(0, scale * 0.05, months)) * 0.3
    bs["1010-0000"] = cash
    bs["1020-0000"] = receivables
    bs["1110-0000"] = building * np.ones(months)
    bs["1120-0000"] = -depreciation * (t + 24)
    bs["2010-0000"] = balance
    bs["2020-0000"] = payables
    bs["2030-0000"] = deposits
    bs["3010-0000"] = capital * np.ones(months)
    assets = cash + receivables + building - depreciation * (t + 24)
    bs["3020-0000"] = assets - balance - payables - deposits - capital * np.ones(months)

    cf = {
        "7010-0000": net_income,
        "7020-0000": depreciation * np.ones(months),
        "7030-0000": -np.diff(np.concatenate([[receivables[0]], receivables])),
        "7040-0000": -principal,
    }
    units = int(rng.integers(40, 400))
    occupied = np.clip(np.round(units * (0.93 + rng.normal(0, 0.02, months))), 0, units)
    rr = {
        "RR-UNITS-TOTAL": units * np.ones(months),
        "RR-UNITS-OCCUPIED": occupied,
        "RR-OCCUPANCY-PCT": 100 * occupied / units,
        "RR-MONTHLY-RENT": rent,
        "RR-RENT-PER-SQFT": rent / (units * 800),
    }
    ms = {
        "MS-PRINCIPAL-BALANCE": balance,
        "MS-INTEREST-RATE": rate * 100 * np.ones(months),
        "MS-PRINCIPAL-PAID": principal,
        "MS-INTEREST-PAID": interest,
        "MS-ESCROW-BALANCE": escrow,
        "MS-TOTAL-PAYMENT": payment * np.ones(months),
    }
    return {
        "income_statement": {**inc, **opx, **inc_nonop},
        "balance_sheet": bs,
        "cash_flow": cf,
        "rent_roll": rr,
        "mortgage_statement": ms,
    }


_TOTALS = {
    "income_statement": (("4999-0000", "4"), ("5999-0000", "5")),
    "balance_sheet": (("1199-0000", "11"), ("1999-0000", "1"), ("2999-0000", "2"), ("3999-0000", "3")),
}
_STABLE = ("4010-0000", "4030-0000", "5070-0000", "5080-0000", "5030-0000", "RR-UNITS-OCCUPIED")
_SEASONAL = ("5050-0000", "5060-0000")


def generate_synthetic_portfolio(
    *, properties: int = 10, months: int = 36, seed: int = 0, anomalies_per_property: int = 6
) -> SyntheticPortfolio:
    """A labelled portfolio; totals are recomputed after injection (a ledger system sums)."""
    rng = np.random.default_rng(seed)
    out = SyntheticPortfolio()
    start_year = 2021
    for p in range(properties):
        code = f"SYN{p:03d}"
        ptype = PROPERTY_TYPES[p % len(PROPERTY_TYPES)]
        docs = _property_lines(rng, ptype, months)
        docs = {d: {a: np.round(v, 2) for a, v in accts.items()} for d, accts in docs.items()}
        absent: set[tuple[str, str, int]] = set()
        used: set[tuple[str, str, int]] = set()
        for _ in range(anomalies_per_property):
            kind = KINDS[int(rng.integers(len(KINDS)))]
            m = int(rng.integers(2, months))
            if kind == "seasonal":
                cands = [a for a in _SEASONAL if a in docs["income_statement"]]
                if not cands:
                    continue
                acct = cands[int(rng.integers(len(cands)))]
                series = docs["income_statement"][acct]
                off = np.flatnonzero(series == 0)
                on = series[series != 0]
                if len(off) == 0 or len(on) == 0:
                    continue
                m = int(rng.choice(off))
                if ("income_statement", acct, m) in used:
                    continue
                series[m] = float(np.median(on)) * rng.uniform(0.8, 1.2)
                used.add(("income_statement", acct, m))
                out.labels.append(_label(code, "income_statement", _period(start_year, m), acct, kind))
                continue
            doc = (
                "income_statement"
                if rng.random() < 0.7
                else str(rng.choice(["balance_sheet", "mortgage_statement", "rent_roll", "cash_flow"]))
            )
            accts = list(docs[doc])
            if kind == "misclassification":
                doc = "income_statement" if rng.random() < 0.8 else "balance_sheet"
                accts = list(docs[doc])
            if kind in ("level_shift", "spike"):
                stable = [a for a in accts if a in _STABLE]
                if not stable:
                    continue
                acct = stable[int(rng.integers(len(stable)))]
            else:
                acct = accts[int(rng.integers(len(accts)))]
            series = docs[doc][acct]
            if series[m] == 0 or (doc, acct, m) in used:
                continue
            if kind == "decimal_shift":
                series[m] *= float(rng.choice([10.0, 100.0, 0.01]))
            elif kind == "sign_flip":
                series[m] = -series[m]
            elif kind == "duplicate":
                series[m] *= 2
            elif kind == "missing":
                if rng.random() < 0.5:
                    series[m] = 0.0
                else:
                    absent.add((doc, acct, m))
            elif kind == "spike":
                series[m] *= rng.uniform(2.5, 6.0)
            elif kind == "level_shift":
                if m > months - 3:
                    continue
                factor = rng.choice([rng.uniform(1.3, 1.7), rng.uniform(0.45, 0.7)])
                series[m:] *= factor
            elif kind == "misclassification":
                i = accts.index(acct)
                j = i + 1 if i + 1 < len(accts) else i - 1
                other = accts[j]
                if other[0] != acct[0] or docs[doc][other][m] == 0 or (doc, other, m) in used:
                    continue
                moved = series[m] * rng.uniform(0.5, 1.0)
                series[m] -= moved
                docs[doc][other][m] += moved
                used.add((doc, other, m))
                # Both lines are misstated (one short by the amount, the other over by it) and an
                # accountant corrects both: both are labelled, as in the demo generator.
                used.add((doc, acct, m))
                out.labels.append(_label(code, doc, _period(start_year, m), acct, kind))
                acct = other  # the wrong posting is where the amount landed
            used.add((doc, acct, m))
            out.labels.append(_label(code, doc, _period(start_year, m), acct, kind))
        for doc, accts in docs.items():
            totals = _TOTALS.get(doc, ())
            for m in range(months):
                period = _period(start_year, m)
                for acct, series in accts.items():
                    if (doc, acct, m) in absent:
                        continue
                    out.rows.append(_row(code, ptype, doc, period, acct, float(series[m]), False))
                for total_code, prefix in totals:
                    amount = sum(float(s[m]) for a, s in accts.items() if a.startswith(prefix) and (doc, a, m) not in absent)
                    out.rows.append(_row(code, ptype, doc, period, total_code, round(amount, 2), True))
    return out


def _row(code: str, ptype: str, doc: str, period: str, acct: str, amount: float, total: bool) -> dict[str, Any]:
    return {
        "property_code": code,
        "property_name": code,
        "property_type": ptype,
        "document_type": doc,
        "period": period,
        "account_code": acct,
        "account_name": acct,
        "amount": round(amount, 4),
        "is_total": total,
    }


def _label(code: str, doc: str, period: str, acct: str, kind: str) -> dict[str, Any]:
    return {"property_code": code, "document_type": doc, "period": period, "account_code": acct, "anomaly_kind": kind}
