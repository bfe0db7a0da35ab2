"""An independent synthetic portfolio with labelled anomalies, for tests and benchmarks.

Written apart from the demo generator on purpose, with another accounting system's conventions,
so that detection is checked against two generators with different quirks:

* 5-digit general-ledger codes (``40100``, ``60410``); a total's code says nothing about what it
  sums (``45000`` is total revenue, ``19000`` total assets): totals are marked only by
  ``is_total``;
* sections in this system's own order, each total right after its lines: the income statement
  runs revenue, operating expenses, net operating income (a difference of totals), non-operating
  items, net income; the balance sheet lists liabilities and equity *before* assets;
* normal behaviour that must stay quiet: annual rent escalations, a CAM true-up once a year (of
  either sign), tax instalments, annual insurance, seasonal utilities, winter-only snow removal,
  summer landscaping with late invoices in the month after the season, heavy-tailed repairs and
  rare large repairs, free rent on a new lease, partner distributions that are skipped in some
  quarters, a management fee that follows revenue, occupancy moving by a unit, amortising
  mortgages, a balance sheet that balances, mixed-sign cash-flow lines;
* a landscaping contract that starts in the second year on some properties, so its off-season
  postings must be found with a single prior year of history;
* labelled errors: the eight point / level kinds of DESIGN.md §1 plus ``footing`` (a total that
  does not sum its lines, applied after the totals are computed).
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
    "footing",
)
SNOW, LANDSCAPING = "61300", "61400"
WINTER = (11, 0, 1, 2)  # December to March (0 = January)
SUMMER = (3, 4, 5, 6, 7, 8, 9)  # April to October
_STABLE = ("40100", "40500", "62200", "61100", "RR-UNITS-OCCUPIED")
# A statement is a list of sections: (lines, (total code, its formula)); a formula is "lines"
# (the section's own lines) or signed earlier totals.
Formula = str | tuple[tuple[str, int], ...]


@dataclass
class SyntheticPortfolio:
    rows: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)


def _period(start_year: int, m: int) -> str:
    return f"{start_year + m // 12:04d}-{m % 12 + 1:02d}"


def _property_lines(
    rng: np.random.Generator, ptype: str, months: int
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, list[tuple[list[str], tuple[str, Formula] | None]]]]:
    """Clean monthly amounts ({document: {code: series}}, NaN = no line) and each statement's layout."""
    t = np.arange(months)
    cal = t % 12
    scale = float(rng.lognormal(np.log(60_000), 0.6))
    anniversary = int(rng.integers(12))
    years_passed = np.maximum((t + (12 - anniversary)) // 12 - (1 if anniversary else 0), 0)
    rent = scale * (1.0 + rng.uniform(0.02, 0.04)) ** years_passed
    if ptype in ("multifamily", "hotel"):
        rent = rent * (1 + rng.normal(0, 0.015, months))
    if ptype == "hotel":
        rent = rent * (1 + 0.25 * np.sin(2 * np.pi * (cal - 3) / 12))
    rev: dict[str, np.ndarray] = {"40100": rent}
    if ptype in ("retail", "office", "mixed_use"):
        rev["40200"] = scale * 0.18 * (1 + rng.normal(0, 0.03, months))
        # Annual CAM true-up in March, billed or refunded: zero in the other months.
        rev["40300"] = np.where(cal == 2, scale * 0.05 * rng.normal(0, 1.0, months), 0.0)
    rev["40500"] = scale * 0.05 * (1 + rng.normal(0, 0.06, months))
    rev["40700"] = scale * 0.01 * rng.lognormal(0, 0.5, months)
    # Free rent on a new lease: a concession for 1-3 months now and then, zero otherwise.
    free = np.zeros(months)
    for start in np.flatnonzero(rng.random(months) < 0.04):
        free[start : start + int(rng.integers(1, 4))] = -scale * rng.uniform(0.05, 0.2)
    rev["40900"] = free
    revenue = sum(rev.values())

    opx: dict[str, np.ndarray] = {}
    tax_annual = scale * 12 * 0.12 * 1.03 ** (t // 12)
    opx["60410"] = np.where(np.isin(cal, [3, 9]), tax_annual / 2, 0.0) if rng.random() < 0.5 else tax_annual / 12
    insurance = scale * 12 * 0.03 * 1.05 ** (t // 12)
    ins_month = int(rng.integers(12))
    opx["60420"] = np.where(cal == ins_month, insurance, 0.0) if rng.random() < 0.5 else insurance / 12
    season = 1 + 0.35 * np.cos(2 * np.pi * cal / 12) + 0.15 * np.cos(2 * np.pi * (cal - 6) / 6)
    opx["61100"] = scale * 0.08 * season * (1 + rng.normal(0, 0.07, months))
    opx["61200"] = scale * 0.04 * rng.lognormal(0, 0.55, months)
    # Large repairs: rare, lumpy, legitimate.
    opx["61250"] = np.where(rng.random(months) < 0.15, scale * rng.uniform(0.2, 1.5, months), 0.0)
    if rng.random() < 0.7:
        opx[SNOW] = np.where(np.isin(cal, WINTER), scale * 0.03 * rng.lognormal(0, 0.4, months), 0.0)
    if rng.random() < 0.7:
        landscaping = np.where(np.isin(cal, SUMMER), scale * 0.015 * (1 + rng.normal(0, 0.1, months)), 0.0)
        # A late invoice in November (the month after the season) in some years.
        late = (cal == 10) & (rng.random(months) < 0.35)
        landscaping = np.where(late, scale * 0.015 * rng.uniform(0.2, 0.5, months), landscaping)
        if rng.random() < 0.5:
            landscaping[:12] = np.nan  # the contract starts in the second year
        opx[LANDSCAPING] = landscaping
    opx["62100"] = revenue * rng.uniform(0.03, 0.045)  # management fee: a share of revenue
    payroll = scale * 0.1 * 1.03 ** (t // 12)
    opx["62200"] = payroll * np.where(np.isin(cal, rng.choice(12, size=2, replace=False)), 1.5, 1.0)

    loan = scale * 12 * 8
    rate = rng.uniform(0.035, 0.065)
    payment = loan * (rate / 12) / (1 - (1 + rate / 12) ** -300)
    balance, interest, principal = np.empty(months), np.empty(months), np.empty(months)
    b = loan
    for m in range(months):
        interest[m] = b * rate / 12
        principal[m] = payment - interest[m]
        b -= principal[m]
        balance[m] = b
    nonop = {"71100": interest}
    net_income = revenue - sum(np.nan_to_num(v) for v in opx.values()) - interest

    # Partner distributions: quarterly, of varying size, skipped in some quarters.
    distributions = np.where((cal % 3 == 2) & (rng.random(months) < 0.75), -scale * rng.uniform(0.2, 0.6, months), 0.0)
    depreciation = scale * 12 * 10 / 39 / 12
    building = scale * 12 * 10
    receivables = scale * 0.3 * (1 + rng.normal(0, 0.2, months))
    payables = scale * 0.25 * (1 + rng.normal(0, 0.15, months))
    deposits = scale * 0.8 * np.ones(months)
    capital = building * 0.35 * np.ones(months)
    flows = net_income - principal + distributions + rng.normal(0, scale * 0.05, months)
    # The operating account is swept to a reserve: it stays positive around its usual balance.
    cash = scale * 3 + 0.3 * np.cumsum(flows - flows.mean())
    cash += max(0.0, scale * 0.5 - float(cash.min()))
    accumulated = -depreciation * (t + 24)
    assets = cash + receivables + building + accumulated
    cum_distributions = np.cumsum(distributions)
    liabilities = {"20100": balance, "20200": payables, "20300": deposits}
    equity = {
        "30100": capital,
        "30200": assets - balance - payables - deposits - capital - cum_distributions,
        "30300": cum_distributions,
    }
    asset_lines = {"10100": cash, "10200": receivables, "11000": building * np.ones(months), "11100": accumulated}
    operating = {
        "50100": net_income,
        "50200": depreciation * np.ones(months),
        "50300": -np.diff(np.concatenate([[receivables[0]], receivables])),
    }
    financing = {"50700": -principal, "50800": distributions}
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
        "MS-ESCROW-BALANCE": scale * 0.5 + np.cumsum(rng.normal(0, scale * 0.01, months)),
        "MS-TOTAL-PAYMENT": payment * np.ones(months),
    }
    docs = {
        "income_statement": {**rev, **opx, **nonop},
        "balance_sheet": {**liabilities, **equity, **asset_lines},
        "cash_flow": {**operating, **financing},
        "rent_roll": rr,
        "mortgage_statement": ms,
    }
    layouts: dict[str, list[tuple[list[str], tuple[str, Formula] | None]]] = {
        "income_statement": [
            (list(rev), ("45000", "lines")),
            (list(opx), ("69000", "lines")),
            ([], ("70000", (("45000", 1), ("69000", -1)))),  # net operating income
            (list(nonop), ("79000", "lines")),
            ([], ("80000", (("70000", 1), ("79000", -1)))),  # net income
        ],
        "balance_sheet": [
            (list(liabilities), ("29000", "lines")),
            (list(equity), ("39000", "lines")),
            ([], ("39500", (("29000", 1), ("39000", 1)))),  # total liabilities and equity
            (list(asset_lines), ("19000", "lines")),
        ],
        "cash_flow": [
            (list(operating), ("55000", "lines")),
            (list(financing), ("57000", "lines")),
            ([], ("59000", (("55000", 1), ("57000", 1)))),  # net change in cash
        ],
        "rent_roll": [(list(rr), None)],
        "mortgage_statement": [(list(ms), None)],
    }
    return docs, layouts


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
        docs, layouts = _property_lines(rng, ptype, months)
        docs = {d: {a: np.round(v, 2) for a, v in accts.items()} for d, accts in docs.items()}
        injector = _Injector(rng, docs, layouts, months)
        for _ in range(anomalies_per_property):
            injector.inject(KINDS[int(rng.integers(len(KINDS)))])
        for doc, layout in layouts.items():
            for m in range(months):
                period = _period(start_year, m)
                totals: dict[str, float] = {}
                for lines, total in layout:
                    present = [a for a in lines if np.isfinite(docs[doc][a][m]) and (doc, a, m) not in injector.absent]
                    for a in present:
                        out.rows.append(_row(code, ptype, doc, period, a, float(docs[doc][a][m]), False))
                    if total is None:
                        continue
                    total_code, formula = total
                    if formula == "lines":
                        amount = sum(float(docs[doc][a][m]) for a in present)
                    else:
                        amount = sum(sign * totals[c] for c, sign in formula)
                    totals[total_code] = round(amount, 2)
                    reported = totals[total_code] + injector.footing.get((doc, total_code, m), 0.0)
                    out.rows.append(_row(code, ptype, doc, period, total_code, reported, True))
        out.labels += [_label(code, d, _period(start_year, m), a, k) for d, a, m, k in injector.labels]
    return out


class _Injector:
    """Labelled errors into one property's clean series (totals are computed afterwards)."""

    def __init__(
        self,
        rng: np.random.Generator,
        docs: dict[str, dict[str, np.ndarray]],
        layouts: dict[str, list[tuple[list[str], tuple[str, Formula] | None]]],
        months: int,
    ) -> None:
        self.rng, self.docs, self.layouts, self.months = rng, docs, layouts, months
        self.absent: set[tuple[str, str, int]] = set()
        self.used: set[tuple[str, str, int]] = set()
        self.footing: dict[tuple[str, str, int], float] = {}
        self.labels: list[tuple[str, str, int, str]] = []

    def label(self, doc: str, acct: str, m: int, kind: str) -> None:
        self.used.add((doc, acct, m))
        self.labels.append((doc, acct, m, kind))

    def inject(self, kind: str) -> None:
        rng, m = self.rng, int(self.rng.integers(2, self.months))
        if kind == "seasonal":
            self._seasonal()
            return
        if kind == "footing":
            doc = str(rng.choice(["income_statement", "balance_sheet", "cash_flow"], p=[0.5, 0.3, 0.2]))
            totals = [t[0] for _, t in self.layouts[doc] if t is not None]
            total = totals[int(rng.integers(len(totals)))]
            if any((doc, a, m) in self.used for a in self.docs[doc]) or (doc, total, m) in self.used:
                return
            size = abs(sum(float(np.nan_to_num(v[m])) for v in self.docs[doc].values())) or 1.0
            delta = max(100.0, size * rng.uniform(0.02, 0.15))
            self.footing[(doc, total, m)] = round(delta if rng.random() < 0.5 else -delta, 2)
            self.label(doc, total, m, kind)
            return
        doc = (
            "income_statement"
            if rng.random() < 0.7
            else str(rng.choice(["balance_sheet", "mortgage_statement", "rent_roll", "cash_flow"]))
        )
        if kind == "misclassification":
            doc = "income_statement" if rng.random() < 0.8 else "balance_sheet"
        accts = list(self.docs[doc])
        if kind in ("level_shift", "spike"):
            accts = [a for a in accts if a in _STABLE]
            if not accts:
                return
        acct = accts[int(rng.integers(len(accts)))]
        series = self.docs[doc][acct]
        if not np.isfinite(series[m]) or series[m] == 0 or (doc, acct, m) in self.used:
            return
        if kind == "decimal_shift":
            series[m] *= float(rng.choice([10.0, 100.0, 0.01]))
        elif kind == "sign_flip":
            series[m] = -series[m]
        elif kind == "duplicate":
            series[m] *= 2
        elif kind == "missing":
            # Only a line posted in this month of every earlier year can be missed.
            if not np.all(np.nan_to_num(series[m % 12 : m : 12]) != 0):
                return
            if rng.random() < 0.5:
                series[m] = 0.0
            else:
                self.absent.add((doc, acct, m))
        elif kind == "spike":
            series[m] *= rng.uniform(2.5, 6.0)
        elif kind == "level_shift":
            if m > self.months - 3:
                return
            before = series.copy()
            series[m:] *= rng.choice([rng.uniform(1.3, 1.7), rng.uniform(0.45, 0.7)])
            if doc == "income_statement":
                # A lasting change is business, not a keying error: net income on the cash flow
                # statement, prepared from the same ledger, follows it.
                revenue = any(acct in lines for lines, total in self.layouts[doc] if total and total[0] == "45000")
                change = np.nan_to_num(series - before)
                self.docs["cash_flow"]["50100"] += change if revenue else -change
                if revenue:  # the management fee is a share of the revenue it follows
                    rev_lines = next(lines for lines, total in self.layouts[doc] if total and total[0] == "45000")
                    first = sum(float(np.nan_to_num(self.docs[doc][a][0])) for a in rev_lines)
                    fee = self.docs[doc]["62100"]
                    fee_change = np.round(float(fee[0]) / first * change, 2)
                    fee += fee_change
                    self.docs["cash_flow"]["50100"] -= fee_change
        elif kind == "misclassification":
            section = next(lines for lines, _ in self.layouts[doc] if acct in lines)
            i = section.index(acct)
            if len(section) < 2:
                return
            other = section[i + 1] if i + 1 < len(section) else section[i - 1]
            if not np.isfinite(self.docs[doc][other][m]) or self.docs[doc][other][m] == 0 or (doc, other, m) in self.used:
                return
            moved = round(float(series[m]) * rng.uniform(0.5, 1.0), 2)
            series[m] -= moved
            self.docs[doc][other][m] += moved
            # Both lines are misstated (one short by the amount, the other over by it) and an
            # accountant corrects both: both are labelled, as in the demo generator.
            self.label(doc, acct, m, kind)
            acct = other
        self.label(doc, acct, m, kind)

    def _seasonal(self) -> None:
        """A posting in a month empty in every earlier year of the line, once it has a year of
        history; never in the month just before or after the season (late or early invoices)."""
        rng, doc = self.rng, "income_statement"
        cands = [a for a in (SNOW, LANDSCAPING) if a in self.docs[doc]]
        if not cands:
            return
        acct = cands[int(rng.integers(len(cands)))]
        series = self.docs[doc][acct]
        first = int(np.flatnonzero(np.isfinite(series))[0])
        season = WINTER if acct == SNOW else SUMMER
        edge = {(min(season) - 1) % 12, (max(season) + 1) % 12} if acct == LANDSCAPING else {10, 3}
        off = [
            m
            for m in range(first + 12, self.months)
            if m % 12 not in season
            and m % 12 not in edge
            and np.all(np.nan_to_num(series[first:m][(np.arange(first, m) % 12) == m % 12]) == 0)
        ]
        if not off:
            return
        m = int(rng.choice(off))
        if (doc, acct, m) in self.used:
            return
        on = series[np.isfinite(series) & (series != 0)]
        series[m] = round(float(np.median(on)) * rng.uniform(0.8, 1.2), 2)
        self.label(doc, acct, m, "seasonal")


def _row(code: str, ptype: str, doc: str, period: str, acct: str, amount: float, total: bool) -> dict[str, Any]:
    return {
        "property_code": code,
        "property_name": code,
        "property_type": ptype,
        "document_type": doc,
        "period": period,
        "account_code": acct,
        "account_name": acct,
        "amount": round(amount, 2),
        "is_total": total,
    }


def _label(code: str, doc: str, period: str, acct: str, kind: str) -> dict[str, Any]:
    return {"property_code": code, "document_type": doc, "period": period, "account_code": acct, "anomaly_kind": kind}
