"""A realistic demo portfolio with injected, labelled anomalies. Django-free; deterministic by seed.

Entry point: ``generate_portfolio(*, properties, months, seed, start="2021-01") -> Portfolio``.
``Portfolio.rows`` are canonical rows (DESIGN.md §4) as dicts, ``Portfolio.labels`` the injected
anomalies, ``Portfolio.write(dir)`` writes ``dir/statements/<property>.csv`` (canonical CSV, one per
property), ``dir/labels.csv`` and ``dir/properties.csv``.

Accounts (every ledger account is ``NNNN-NNNN``)
-------------------------------------------------
* income_statement: revenue 4xxx (base rent or hotel room revenue, recoveries, parking, other
  income...), expenses 5xxx utilities, 6xxx operating, 7xxx fixed charges (property tax,
  insurance, mortgage interest, depreciation), 8xxx administrative (management fee, payroll...).
  Expenses are positive amounts.
* balance_sheet: assets 1xxx (11xx current, 15xx real estate; accumulated depreciation is
  negative), liabilities 2xxx, equity 3xxx.
* cash_flow: 9xxx (91xx operating, 92xx investing, 93xx financing); 1110-0000 cash on the balance
  sheet moves by exactly the net change in cash.
* rent_roll and mortgage_statement: the metric codes of DESIGN.md §4 (RR-*, MS-*), no totals.

TOTALS RULE (the detection engine relies on it)
------------------------------------------------
A total line has ``is_total=True`` and an account code ``NNNN-NNNN`` whose first four digits end
in 9s. Stripping those trailing 9s gives its prefix: ``4999-0000`` -> ``'4'`` covers every
non-total line whose code starts with ``'4'``; ``1199-0000`` -> ``'11'``. A total equals the sum
of the non-total lines of the same document under its prefix (nested totals are not summed
twice because only non-total lines count). On the balance sheet, total ``'1'`` (assets) equals
total ``'2'`` (liabilities) plus total ``'3'`` (equity). ``total_prefix()`` implements the rule.

Realism
-------
Property types with their own sizes (area lognormal around a type median), rents per sqft and
cost structure. Base rent = rate x leased area / 12 with an annual escalation (2-4 %) as a step
in each property's escalation month; occupancy moves in whole units now and then (hotels:
seasonal occupancy x seasonal ADR). Utilities are seasonal (electricity peaks in July, gas in
January), snow removal is non-zero only in December-March, landscaping only in April-October,
repairs are lognormal (heavy right tail), property tax is paid in 2 or 4 instalments a year out
of the mortgage escrow, insurance once a year in the renewal month, the management fee is a fixed
share of the month's revenue, payroll and contracts step up each January.
The mortgage amortises: interest = balance x rate / 12 (to the cent), principal = fixed payment -
interest, ``MS-TOTAL-PAYMENT`` = principal + interest (escrow deposits are reported through
``MS-ESCROW-BALANCE``, not in the payment). The balance sheet's mortgage payable equals
``MS-PRINCIPAL-BALANCE``, escrow deposits equal ``MS-ESCROW-BALANCE``, the income statement's
mortgage interest equals ``MS-INTEREST-PAID``, and the rent roll's ``RR-MONTHLY-RENT`` equals the
base rent (room revenue for hotels); ``RR-OCCUPANCY-PCT`` = 100 x occupied / total units and
``RR-RENT-PER-SQFT`` is annual rent per leased sqft. Retained earnings roll forward by net income
less quarterly distributions, so assets = liabilities + equity holds in every clean document.
All amounts are computed in integer cents so totals foot exactly.

Injected anomalies (``labels``)
-------------------------------
Kinds: decimal_shift (x10, x100 or /100), sign_flip, duplicate (x2), missing (amount 0, or the row
absent from the document - such labels point at no row), misclassification (a line's whole amount
moved to the adjacent line of the same section: BOTH accounts are labelled), level_shift (a
permanent step, x1.35-1.8 or x0.45-0.7, on a steady line: ONLY the first period of the new level
is labelled), spike (a one-off x3-8 on a steady line), seasonal (snow removal in May-September or
landscaping in December-February, where the clean value is 0) and footing (a total that does not
foot). Choices:
* at most one anomaly per document, none in the first 13 months of a series (no history to
  judge), none in a series that has a level shift (its labels would be ambiguous);
* each kind is injected ``ceil(0.0023 x documents)`` times (about 22 per kind, 2 % of documents,
  at 40 properties x 48 months), into non-total lines only, except ``footing``;
* after injecting, the document's totals are recomputed so they still foot (real systems compute
  totals), except for ``footing``, which is applied afterwards. An anomaly on a balance sheet line
  therefore shows as assets != liabilities + equity, as it would in real books;
* decimal shifts and spikes may hit rent-roll and mortgage metrics too; the other kinds hit
  ledger lines (income statement mostly, balance sheet and cash flow for decimal_shift and
  sign_flip).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from documents.parsing.common import CANONICAL_COLUMNS
from kernel.vocabulary import DOCUMENT_TYPES

ANOMALY_KINDS: tuple[str, ...] = (
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
ROW_COLUMNS = CANONICAL_COLUMNS  # the import format of DESIGN.md §4
LABEL_COLUMNS: tuple[str, ...] = ("property_code", "document_type", "period", "account_code", "anomaly_kind")
HISTORY_MONTHS = 13  # no anomaly in the first 13 months of a series
ANOMALY_RATE_PER_KIND = 0.0023  # of all documents, per kind
WINTER_MONTHS = (12, 1, 2, 3)
LANDSCAPING_MONTHS = (4, 5, 6, 7, 8, 9, 10)
SNOW_OFF_SEASON = (5, 6, 7, 8, 9)
LANDSCAPING_OFF_SEASON = (12, 1, 2)

# Lines steady enough for a level shift or a spike to stand out from the clean series.
STEADY_LINES = ("4040-0000", "4050-0000", "5030-0000", "6040-0000", "6050-0000", "8020-0000", "8030-0000")


def total_prefix(account_code: str) -> str | None:
    """'4999-0000' -> '4', '1199-0000' -> '11'; None for a code that is not a total code."""
    head = account_code[:4]
    if len(account_code) != 9 or account_code[4] != "-" or not head.isdigit() or not head.endswith("9"):
        return None
    return head.rstrip("9")


# --- Property types ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TypeProfile:
    weight: float
    median_area: float  # sqft
    sqft_per_unit: float  # suites, apartments or rooms
    rent_psf: float  # annual base rent per leased sqft (hotels: ADR in dollars)
    value_psf: float
    tax_psf: float
    electricity_psf: float
    payroll_psf: float
    occupancy: tuple[float, float]
    recoveries: bool
    opex_factor: float  # janitorial, security, repairs, gas, water, G&A relative to an office


TYPES: dict[str, TypeProfile] = {
    "retail": TypeProfile(0.20, 90_000, 4_500, 24.0, 210, 3.0, 1.8, 0.6, (0.86, 0.97), True, 0.8),
    "office": TypeProfile(0.22, 150_000, 8_000, 32.0, 260, 3.5, 2.2, 0.9, (0.82, 0.95), True, 1.0),
    "multifamily": TypeProfile(0.25, 220_000, 900, 22.0, 230, 2.0, 0.8, 1.1, (0.92, 0.98), False, 0.8),
    "industrial": TypeProfile(0.15, 300_000, 40_000, 9.0, 70, 1.0, 0.5, 0.2, (0.90, 1.00), True, 0.3),
    "mixed_use": TypeProfile(0.10, 120_000, 3_000, 28.0, 240, 3.0, 1.6, 0.9, (0.86, 0.96), True, 0.9),
    "hotel": TypeProfile(0.08, 150_000, 550, 150.0, 190, 2.5, 3.0, 4.5, (0.62, 0.80), False, 1.3),
}
_NAME_FIRST = (
    "Harbor", "Maple", "Cedar", "Summit", "Riverside", "Oak", "Granite", "Lakeview", "Pine", "Union",
    "Willow", "Beacon", "Ashford", "Crescent", "Meridian", "Sterling", "Northgate", "Westfield",
)  # fmt: skip
_NAME_SECOND = {
    "retail": ("Plaza", "Marketplace", "Shopping Center", "Commons"),
    "office": ("Tower", "Corporate Center", "Office Park", "Place"),
    "multifamily": ("Apartments", "Residences", "Lofts", "Gardens"),
    "industrial": ("Logistics Center", "Distribution Park", "Industrial Park", "Business Park"),
    "mixed_use": ("Square", "Station", "Village", "Yards"),
    "hotel": ("Hotel", "Inn & Suites", "Grand Hotel", "Lodge"),
}


@dataclass(frozen=True)
class Line:
    code: str
    name: str

    @property
    def is_total(self) -> bool:
        return total_prefix(self.code) is not None


def _income_lines(property_type: str) -> list[Line]:
    hotel = property_type == "hotel"
    lines = [Line("4010-0000", "Room Revenue" if hotel else "Base Rent")]
    if hotel:
        lines.append(Line("4020-0000", "Food & Beverage Revenue"))
    elif property_type == "retail":
        lines.append(Line("4020-0000", "Percentage Rent"))
    if not hotel:
        name = "Utility Reimbursements" if property_type == "multifamily" else "CAM & Tax Recoveries"
        lines.append(Line("4030-0000", name))
    if property_type != "industrial":
        lines.append(Line("4040-0000", "Parking Income"))
    lines += [
        Line("4050-0000", "Other Income"),
        Line("4999-0000", "Total Revenue"),
        Line("5010-0000", "Electricity"),
        Line("5020-0000", "Natural Gas"),
        Line("5030-0000", "Water & Sewer"),
        Line("5999-0000", "Total Utilities"),
        Line("6010-0000", "Repairs & Maintenance"),
        Line("6020-0000", "Snow Removal"),
        Line("6030-0000", "Landscaping"),
        Line("6040-0000", "Janitorial"),
        Line("6050-0000", "Security"),
        Line("6999-0000", "Total Operating Expenses"),
        Line("7010-0000", "Property Tax"),
        Line("7020-0000", "Insurance"),
        Line("7030-0000", "Mortgage Interest"),
        Line("7040-0000", "Depreciation"),
        Line("7999-0000", "Total Fixed Charges"),
        Line("8010-0000", "Management Fee"),
        Line("8020-0000", "Payroll"),
        Line("8030-0000", "General & Administrative"),
    ]
    if property_type in ("multifamily", "retail", "hotel"):
        lines.append(Line("8040-0000", "Marketing & Leasing"))
    lines.append(Line("8999-0000", "Total Administrative Expenses"))
    return lines


BALANCE_LINES: tuple[Line, ...] = (
    Line("1110-0000", "Cash - Operating"),
    Line("1120-0000", "Escrow Deposits"),
    Line("1130-0000", "Tenant Receivables"),
    Line("1140-0000", "Prepaid Expenses"),
    Line("1199-0000", "Total Current Assets"),
    Line("1510-0000", "Land"),
    Line("1520-0000", "Buildings"),
    Line("1530-0000", "Accumulated Depreciation"),
    Line("1540-0000", "Tenant Improvements"),
    Line("1599-0000", "Total Real Estate"),
    Line("1999-0000", "Total Assets"),
    Line("2110-0000", "Accounts Payable & Accrued"),
    Line("2120-0000", "Tenant Security Deposits"),
    Line("2130-0000", "Prepaid Rent"),
    Line("2199-0000", "Total Current Liabilities"),
    Line("2510-0000", "Mortgage Payable"),
    Line("2999-0000", "Total Liabilities"),
    Line("3010-0000", "Contributed Capital"),
    Line("3020-0000", "Retained Earnings"),
    Line("3999-0000", "Total Equity"),
)
CASH_FLOW_LINES: tuple[Line, ...] = (
    Line("9110-0000", "Net Income"),
    Line("9120-0000", "Depreciation"),
    Line("9130-0000", "Change in Tenant Receivables"),
    Line("9140-0000", "Change in Prepaid Expenses"),
    Line("9150-0000", "Change in Payables, Accruals & Prepaid Rent"),
    Line("9160-0000", "Change in Escrow Deposits"),
    Line("9170-0000", "Change in Security Deposits"),
    Line("9199-0000", "Net Cash from Operating Activities"),
    Line("9210-0000", "Capital Expenditures"),
    Line("9299-0000", "Net Cash from Investing Activities"),
    Line("9310-0000", "Mortgage Principal Payments"),
    Line("9320-0000", "Owner Distributions"),
    Line("9330-0000", "Owner Contributions"),
    Line("9399-0000", "Net Cash from Financing Activities"),
    Line("9999-0000", "Net Change in Cash"),
)
RENT_ROLL_LINES: tuple[Line, ...] = (
    Line("RR-UNITS-TOTAL", "Total Units"),
    Line("RR-UNITS-OCCUPIED", "Occupied Units"),
    Line("RR-OCCUPANCY-PCT", "Occupancy (%)"),
    Line("RR-SQFT-LEASED", "Leased Area (sqft)"),
    Line("RR-MONTHLY-RENT", "Monthly Rent"),
    Line("RR-RENT-PER-SQFT", "Annual Rent per Leased sqft"),
)
MORTGAGE_LINES: tuple[Line, ...] = (
    Line("MS-PRINCIPAL-BALANCE", "Principal Balance"),
    Line("MS-INTEREST-RATE", "Interest Rate (%)"),
    Line("MS-PRINCIPAL-PAID", "Principal Paid"),
    Line("MS-INTEREST-PAID", "Interest Paid"),
    Line("MS-ESCROW-BALANCE", "Escrow Balance"),
    Line("MS-TOTAL-PAYMENT", "Total Payment"),
)


# --- The portfolio ----------------------------------------------------------------------------
@dataclass
class Portfolio:
    rows: list[dict]
    labels: list[dict]
    properties: list[dict] = field(default_factory=list)

    def write(self, output_dir: str | Path) -> dict[str, object]:
        """Write statements/<code>.csv per property, labels.csv and properties.csv; return the paths."""
        root = Path(output_dir)
        statements = root / "statements"
        statements.mkdir(parents=True, exist_ok=True)
        by_property: dict[str, list[dict]] = {}
        for row in self.rows:
            by_property.setdefault(row["property_code"], []).append(row)
        csv_paths: list[Path] = []
        for code, rows in by_property.items():
            path = statements / f"{code}.csv"
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(ROW_COLUMNS)
                for row in rows:
                    writer.writerow(
                        (
                            row["property_code"],
                            row["property_name"],
                            row["property_type"],
                            row["document_type"],
                            row["period"],
                            row["account_code"],
                            row["account_name"],
                            f"{row['amount']:.2f}",
                            "true" if row["is_total"] else "false",
                        )
                    )
            csv_paths.append(path)
        labels_path = root / "labels.csv"
        with labels_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=LABEL_COLUMNS)
            writer.writeheader()
            writer.writerows(self.labels)
        properties_path = root / "properties.csv"
        with properties_path.open("w", newline="", encoding="utf-8") as handle:
            columns = ("property_code", "property_name", "property_type", "area_sqft", "units", "address")
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.properties)
        return {"statements": csv_paths, "labels": labels_path, "properties": properties_path}

    def document_rows(self, property_code: str, document_type: str, period: str) -> list[dict]:
        return [
            row
            for row in self.rows
            if row["property_code"] == property_code and row["document_type"] == document_type and row["period"] == period
        ]


@dataclass
class _Property:
    code: str
    name: str
    property_type: str
    area: int
    units: int
    lines: dict[str, list[Line]]
    values: dict[str, dict[str, np.ndarray]]  # document type -> account code -> cents per month
    removed: set[tuple[str, int, str]] = field(default_factory=set)  # (document type, month, code)


def _period_labels(start: str, months: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    year, month = (int(part) for part in start.split("-"))
    if not 1 <= month <= 12:
        raise ValueError(f"bad start period {start!r}")
    ordinals = year * 12 + month - 1 + np.arange(months)
    years, months0 = np.divmod(ordinals, 12)
    labels = [f"{y:04d}-{m + 1:02d}" for y, m in zip(years.tolist(), months0.tolist(), strict=True)]
    return labels, years, months0 + 1


def _cents(values: np.ndarray | float) -> np.ndarray:
    return np.rint(np.asarray(values, dtype=float) * 100).astype(np.int64)


def _step_index(years: np.ndarray, calendar_months: np.ndarray, step_month: int) -> np.ndarray:
    """How many annual steps (each in ``step_month``) have happened by each month since the first."""
    step_years = years - (calendar_months < step_month)  # the step year each month belongs to
    return (step_years - step_years[0]).astype(int)


class _Draws:
    """One property's random draws over the months; every helper draws from the same ``rng`` in
    the order the property is built, so a seed gives the same portfolio."""

    def __init__(self, rng: np.random.Generator, periods: int, years: np.ndarray, cal: np.ndarray):
        self.rng = rng
        self.periods = periods
        self.years = years
        self.cal = cal

    def noise(self, sd: float) -> np.ndarray:
        return self.rng.normal(1.0, sd, self.periods)

    def yearly_steps(self, rate_low: float, rate_high: float, step_month: int = 1) -> np.ndarray:
        steps = _step_index(self.years, self.cal, step_month)
        rates = self.rng.uniform(rate_low, rate_high, int(steps.max()) + 1)
        factors = np.cumprod(np.concatenate([[1.0], 1.0 + rates[1:]]))
        return factors[steps]


def _occupied_units(
    rng: np.random.Generator, occupancy: tuple[float, float], units: int, cal: np.ndarray, *, hotel: bool
) -> np.ndarray:
    """Occupancy: whole units that move now and then (hotels: seasonal rooms sold)."""
    periods = len(cal)
    low, high = occupancy
    if hotel:
        base_occ = rng.uniform(low, high)
        occ = base_occ + 0.12 * np.sin(2 * np.pi * (cal - 4) / 12) + rng.normal(0, 0.025, periods)
        return np.clip(np.rint(units * occ), 1, units).astype(np.int64)
    occupied = np.empty(periods, dtype=np.int64)
    current = int(round(units * rng.uniform(low, high)))
    floor = max(1, int(units * 0.6))
    for i in range(periods):
        if i and rng.random() < 0.12:
            move = max(1, int(round(units * 0.02)))
            current = int(np.clip(current + rng.choice([-move, move]), floor, units))
        occupied[i] = current
    return occupied


def _base_rent(
    draws: _Draws, profile: TypeProfile, occupied: np.ndarray, leased_sqft: np.ndarray, *, hotel: bool
) -> np.ndarray:
    rng, cal = draws.rng, draws.cal
    if hotel:
        adr = profile.rent_psf * rng.uniform(0.8, 1.3) * draws.yearly_steps(0.02, 0.05)
        adr = adr * (1 + 0.10 * np.sin(2 * np.pi * (cal - 4) / 12))
        days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[cal - 1]
        return _cents(occupied * adr * days)
    escalation_month = int(rng.choice([1, 1, 1, 4, 7, 10]))
    rate = profile.rent_psf * rng.uniform(0.85, 1.2) * draws.yearly_steps(0.02, 0.04, escalation_month)
    return _cents(rate * leased_sqft / 12)


def _recoveries(draws: _Draws, profile: TypeProfile, base_rent: np.ndarray, opex_scale: float) -> np.ndarray:
    """Expense recoveries billed to tenants (a token amount where leases do not recover expenses)."""
    rng, cal = draws.rng, draws.cal
    if not profile.recoveries:
        return _cents(base_rent / 100 * 0.04 * draws.noise(0.04))
    annual_budget = opex_scale * 12 * rng.uniform(1.5, 3.0) * draws.yearly_steps(0.02, 0.05)
    recoveries = annual_budget / 12 * rng.uniform(0.7, 0.95)
    # The annual reconciliation in April bills (or refunds) last year's difference.
    recoveries = recoveries + (cal == 4) * annual_budget * rng.normal(0.03, 0.05, draws.periods)
    return _cents(recoveries)


def _revenue(
    draws: _Draws, property_type: str, occupied: np.ndarray, leased_sqft: np.ndarray, opex_scale: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The revenue lines (4xxx) and the base rent they start from."""
    rng, cal, periods = draws.rng, draws.cal, draws.periods
    profile = TYPES[property_type]
    hotel = property_type == "hotel"
    base_rent = _base_rent(draws, profile, occupied, leased_sqft, hotel=hotel)
    income: dict[str, np.ndarray] = {"4010-0000": base_rent}
    if hotel:
        income["4020-0000"] = _cents(base_rent / 100 * rng.uniform(0.2, 0.3) * draws.noise(0.05))
    elif property_type == "retail":
        percentage = np.zeros(periods)
        percentage[cal == 2] = rng.uniform(0.5, 1.5) * opex_scale * 0.6
        income["4020-0000"] = _cents(percentage * draws.noise(0.15))
    if not hotel:
        income["4030-0000"] = _recoveries(draws, profile, base_rent, opex_scale)
    if property_type != "industrial":
        parking_base = opex_scale * rng.uniform(0.08, 0.35) * (2.0 if property_type in ("office", "mixed_use") else 1.0)
        income["4040-0000"] = _cents(parking_base * draws.yearly_steps(0.0, 0.04) * draws.noise(0.03))
    income["4050-0000"] = _cents(opex_scale * rng.uniform(0.02, 0.06) * rng.lognormal(0.0, 0.3, periods))
    return income, base_rent


def _amortise(balance: int, payment: int, monthly_rate: float, periods: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interest, principal and closing balance of each month of a fixed-rate loan."""
    interest = np.empty(periods, dtype=np.int64)
    principal = np.empty(periods, dtype=np.int64)
    balances = np.empty(periods, dtype=np.int64)
    for i in range(periods):
        interest[i] = int(round(balance * monthly_rate))
        principal[i] = min(payment - interest[i], balance)
        balance -= int(principal[i])
        balances[i] = balance
    return interest, principal, balances


def _cash_waterfall(
    cash_in: np.ndarray, capex_wanted: np.ndarray, cal: np.ndarray, *, cash_opening: int, floor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cash, owner contributions, capital expenditure and distributions of each month.

    Capital projects go ahead only up to half the cash above a one-month-of-revenue floor;
    quarter ends distribute 80 % of what is left above that floor; when cash would drop below half
    the floor, the owners contribute capital back up to the floor (in whole $10,000).
    """
    periods = len(cash_in)
    cash = np.empty(periods, dtype=np.int64)
    contributions = np.zeros(periods, dtype=np.int64)
    capex = np.zeros(periods, dtype=np.int64)
    distributions = np.zeros(periods, dtype=np.int64)
    running = cash_opening
    for i in range(periods):
        running += int(cash_in[i])
        if capex_wanted[i] and running > floor:
            capex[i] = min(int(capex_wanted[i]), (running - floor) // 2)
            running -= int(capex[i])
        if cal[i] in (3, 6, 9, 12) and running > floor:
            distributions[i] = int((running - floor) * 0.8)
            running -= int(distributions[i])
        if running < floor // 2:
            contributions[i] = -(-(floor - running) // 1_000_000) * 1_000_000
            running += int(contributions[i])
        cash[i] = running
    return cash, contributions, capex, distributions


def _own_int64_copies(lines: dict[str, list[Line]], values: dict[str, dict[str, np.ndarray]]) -> None:
    """Every non-total line as its own int64 array (injection edits them in place)."""
    for document_type, document_lines in lines.items():
        for line in document_lines:
            if not line.is_total:
                values[document_type][line.code] = np.asarray(values[document_type][line.code], dtype=np.int64).copy()


def _build_property(index: int, rng: np.random.Generator, periods: int, years: np.ndarray, cal: np.ndarray):
    type_names = list(TYPES)
    weights = np.array([TYPES[name].weight for name in type_names])
    property_type = type_names[int(rng.choice(len(type_names), p=weights / weights.sum()))]
    profile = TYPES[property_type]
    area = int(round(profile.median_area * float(rng.lognormal(0.0, 0.45)), -2))
    units = max(1, int(round(area / profile.sqft_per_unit)))
    code = f"P{index + 1:03d}"
    name = f"{_NAME_FIRST[int(rng.integers(len(_NAME_FIRST)))]} {_NAME_SECOND[property_type][int(rng.integers(4))]}"
    hotel = property_type == "hotel"
    draws = _Draws(rng, periods, years, cal)
    noise, yearly_steps = draws.noise, draws.yearly_steps

    occupied = _occupied_units(rng, profile.occupancy, units, cal, hotel=hotel)
    occupancy_ratio = occupied / units
    leased_sqft = np.rint(area * occupancy_ratio).astype(np.int64)

    opex_scale = area / 12.0  # dollars per month for one dollar per sqft per year
    opex = opex_scale * profile.opex_factor
    income, base_rent = _revenue(draws, property_type, occupied, leased_sqft, opex_scale)
    revenue_cents = sum(income.values())

    # Expenses (positive amounts).
    electricity = opex_scale * profile.electricity_psf * rng.uniform(0.8, 1.2)
    income["5010-0000"] = _cents(electricity * (1 + 0.22 * np.cos(2 * np.pi * (cal - 7) / 12)) * noise(0.04))
    gas = opex * 0.5 * rng.uniform(0.7, 1.3)
    income["5020-0000"] = _cents(gas * (1 + 0.75 * np.cos(2 * np.pi * (cal - 1) / 12)) * noise(0.06))
    water = opex * 0.4 * rng.uniform(0.8, 1.2)
    income["5030-0000"] = _cents(water * (1 + 0.15 * np.cos(2 * np.pi * (cal - 7) / 12)) * noise(0.03))
    repairs_median = opex * 0.9 * rng.uniform(0.7, 1.3)
    income["6010-0000"] = _cents(repairs_median * rng.lognormal(0.0, 0.7, periods))
    snow_base = area * rng.uniform(0.03, 0.08)
    snow = np.where(np.isin(cal, WINTER_MONTHS), snow_base * rng.gamma(4.0, 0.25, periods), 0.0)
    snow = snow * np.where(np.isin(cal, (1, 2)), 1.4, 1.0)
    income["6020-0000"] = _cents(snow)
    landscaping_base = area * rng.uniform(0.015, 0.03)
    landscaping_shape = 1 + 0.3 * np.cos(2 * np.pi * (cal - 6) / 12)
    income["6030-0000"] = _cents(
        np.where(np.isin(cal, LANDSCAPING_MONTHS), landscaping_base * landscaping_shape * noise(0.08), 0.0)
    )
    contracts = yearly_steps(0.02, 0.04)
    income["6040-0000"] = _cents(opex * 1.5 * rng.uniform(0.7, 1.3) * contracts * noise(0.02))
    income["6050-0000"] = _cents(opex * 0.8 * rng.uniform(0.6, 1.4) * contracts * noise(0.015))

    annual_tax = area * profile.tax_psf * rng.uniform(0.8, 1.2) * yearly_steps(0.02, 0.05)
    instalments = int(rng.choice([2, 4]))
    tax_months = (6, 12) if instalments == 2 else (3, 6, 9, 12)
    tax = _cents(np.where(np.isin(cal, tax_months), annual_tax / instalments, 0.0))
    income["7010-0000"] = tax
    renewal_month = int(rng.integers(1, 13))
    premium = area * 0.5 * rng.uniform(0.8, 1.2) * yearly_steps(0.04, 0.09, renewal_month)
    income["7020-0000"] = _cents(np.where(cal == renewal_month, premium, 0.0))

    # Mortgage: a seasoned fixed-rate loan.
    value = area * profile.value_psf * rng.uniform(0.85, 1.15)
    rate_pct = round(float(rng.uniform(3.25, 6.5)), 2)
    amortisation_months = int(rng.choice([300, 360]))
    original = value * rng.uniform(0.55, 0.70)
    monthly_rate = rate_pct / 100 / 12
    payment = _cents(original * monthly_rate / (1 - (1 + monthly_rate) ** -amortisation_months)).item()
    balance = _cents(original * rng.uniform(0.75, 0.98)).item()
    opening_balance = balance
    interest, principal, balances = _amortise(balance, payment, monthly_rate, periods)
    income["7030-0000"] = interest
    building = _cents(value * 0.8).item()
    land = _cents(value * 0.2).item()
    depreciation = np.full(periods, building // (39 * 12), dtype=np.int64)
    income["7040-0000"] = depreciation

    management_rate = rng.uniform(0.03, 0.05) if not hotel else 0.03
    income["8010-0000"] = np.rint(revenue_cents * management_rate).astype(np.int64)
    income["8020-0000"] = _cents(
        opex_scale * profile.payroll_psf * rng.uniform(0.8, 1.2) * yearly_steps(0.025, 0.04) * noise(0.01)
    )
    income["8030-0000"] = _cents(opex * 0.35 * rng.uniform(0.7, 1.3) * rng.lognormal(0.0, 0.15, periods))
    if property_type in ("multifamily", "retail", "hotel"):
        income["8040-0000"] = _cents(opex_scale * 0.25 * rng.uniform(0.6, 1.4) * noise(0.12))
    expenses_cents = sum(v for k, v in income.items() if k[0] in "5678")
    net_income = revenue_cents - expenses_cents

    # Escrow: monthly deposits of 1/12 of the year's tax (+2 %), property tax paid out of it.
    deposit = _cents(annual_tax / 12 * 1.02)
    escrow_path = np.cumsum(deposit - tax)
    escrow_opening = int(max(0, -int(escrow_path.min()))) + _cents(annual_tax[0] * 0.05).item()
    escrow = escrow_opening + escrow_path

    # Working capital levels and their opening values (opening = first month's level).
    receivables = np.rint(revenue_cents * np.clip(rng.normal(0.05, 0.01, periods), 0.01, None)).astype(np.int64)
    prepaid = _cents(opex_scale * 0.3 * rng.uniform(0.5, 1.5) * noise(0.08))
    payables = np.rint(expenses_cents * np.clip(rng.normal(0.4, 0.05, periods), 0.1, None)).astype(np.int64)
    deposits_held = np.rint(base_rent * rng.uniform(0.5, 1.0)).astype(np.int64)
    prepaid_rent = np.rint(base_rent * np.clip(rng.normal(0.04, 0.01, periods), 0.0, None)).astype(np.int64)

    def change(levels: np.ndarray, opening: int) -> np.ndarray:
        return np.diff(levels, prepend=opening)

    capex_wanted = np.where(rng.random(periods) < 0.1, _cents(area * rng.uniform(0.1, 0.8, periods)), 0)
    operating_cash = (
        net_income
        + depreciation
        - change(receivables, receivables[0])
        - change(prepaid, prepaid[0])
        + change(payables, payables[0])
        + change(prepaid_rent, prepaid_rent[0])
        - change(escrow, escrow_opening)
        + change(deposits_held, deposits_held[0])
    )
    cash_opening = int(revenue_cents[0] * 2)
    cash, contributions, capex, distributions = _cash_waterfall(
        operating_cash - principal, capex_wanted, cal, cash_opening=cash_opening, floor=int(revenue_cents.mean())
    )

    accumulated = -int(building * rng.uniform(0.05, 0.3)) - np.cumsum(depreciation)
    improvements_opening = _cents(area * rng.uniform(2, 10)).item()
    improvements = improvements_opening + np.cumsum(capex)
    capital = _cents(value * rng.uniform(0.2, 0.35)).item()
    assets_opening = (
        cash_opening + escrow_opening + receivables[0] + prepaid[0] + land + building
        + (accumulated[0] + depreciation[0]) + improvements_opening
    )  # fmt: skip
    liabilities_opening = payables[0] + deposits_held[0] + prepaid_rent[0] + opening_balance
    retained_opening = int(assets_opening - liabilities_opening - capital)
    retained = retained_opening + np.cumsum(net_income - distributions)

    balance_sheet = {
        "1110-0000": cash,
        "1120-0000": escrow,
        "1130-0000": receivables,
        "1140-0000": prepaid,
        "1510-0000": np.full(periods, land, dtype=np.int64),
        "1520-0000": np.full(periods, building, dtype=np.int64),
        "1530-0000": accumulated.astype(np.int64),
        "1540-0000": improvements,
        "2110-0000": payables,
        "2120-0000": deposits_held,
        "2130-0000": prepaid_rent,
        "2510-0000": balances,
        "3010-0000": capital + np.cumsum(contributions),
        "3020-0000": retained,
    }
    cash_flow = {
        "9110-0000": net_income,
        "9120-0000": depreciation,
        "9130-0000": -change(receivables, receivables[0]),
        "9140-0000": -change(prepaid, prepaid[0]),
        "9150-0000": change(payables, payables[0]) + change(prepaid_rent, prepaid_rent[0]),
        "9160-0000": -change(escrow, escrow_opening),
        "9170-0000": change(deposits_held, deposits_held[0]),
        "9210-0000": -capex,
        "9310-0000": -principal,
        "9320-0000": -distributions,
        "9330-0000": contributions,
    }
    rent_roll = {
        "RR-UNITS-TOTAL": np.full(periods, units * 100, dtype=np.int64),
        "RR-UNITS-OCCUPIED": occupied * 100,
        "RR-OCCUPANCY-PCT": _cents(100.0 * occupancy_ratio),
        "RR-SQFT-LEASED": leased_sqft * 100,
        "RR-MONTHLY-RENT": base_rent,
        "RR-RENT-PER-SQFT": _cents(base_rent / 100 * 12 / np.maximum(leased_sqft, 1)),
    }
    mortgage = {
        "MS-PRINCIPAL-BALANCE": balances,
        "MS-INTEREST-RATE": np.full(periods, int(round(rate_pct * 100)), dtype=np.int64),
        "MS-PRINCIPAL-PAID": principal,
        "MS-INTEREST-PAID": interest,
        "MS-ESCROW-BALANCE": escrow,
        "MS-TOTAL-PAYMENT": principal + interest,
    }
    income_lines = _income_lines(property_type)
    lines = {
        "balance_sheet": list(BALANCE_LINES),
        "income_statement": income_lines,
        "cash_flow": list(CASH_FLOW_LINES),
        "rent_roll": list(RENT_ROLL_LINES),
        "mortgage_statement": list(MORTGAGE_LINES),
    }
    values = {
        "balance_sheet": balance_sheet,
        "income_statement": income,
        "cash_flow": cash_flow,
        "rent_roll": rent_roll,
        "mortgage_statement": mortgage,
    }
    _own_int64_copies(lines, values)
    return _Property(code, name, property_type, area, units, lines, values)


# --- Anomaly injection ------------------------------------------------------------------------
class _Injector:
    def __init__(self, portfolio: list[_Property], periods: int, period_labels: list[str], rng: np.random.Generator):
        self.portfolio = portfolio
        self.periods = periods
        self.period_labels = period_labels
        self.rng = rng
        self.used_documents: set[tuple[int, str, int]] = set()
        self.shifted_series: set[tuple[int, str, str]] = set()
        self.labels: list[dict] = []
        # Footing errors are applied after the totals are computed; remembered here until then.
        self.footing: list[tuple[int, str, int, str]] = []

    def label(self, p: int, document_type: str, t: int, code: str, kind: str) -> None:
        self.labels.append(
            {
                "property_code": self.portfolio[p].code,
                "document_type": document_type,
                "period": self.period_labels[t],
                "account_code": code,
                "anomaly_kind": kind,
            }
        )

    def pick(self, document_types: tuple[str, ...], weights: tuple[float, ...], *, first: int = HISTORY_MONTHS):
        p = int(self.rng.integers(len(self.portfolio)))
        t = int(self.rng.integers(first, self.periods))
        document_type = document_types[int(self.rng.choice(len(document_types), p=np.array(weights) / sum(weights)))]
        return p, t, document_type

    def candidates(self, p: int, document_type: str, t: int, *, codes: tuple[str, ...] | None = None) -> list[str]:
        prop = self.portfolio[p]
        result = []
        for line in prop.lines[document_type]:
            if line.is_total or (codes is not None and line.code not in codes):
                continue
            if (p, document_type, line.code) in self.shifted_series:
                continue
            if abs(int(prop.values[document_type][line.code][t])) >= 100:  # at least one dollar
                result.append(line.code)
        return result

    def inject(self, kind: str, count: int) -> None:
        method = getattr(self, f"_{kind}")
        done = attempts = 0
        while done < count and attempts < count * 200:
            attempts += 1
            if method():
                done += 1

    def _point(self, document_types, weights, codes=None):
        p, t, document_type = self.pick(document_types, weights)
        if (p, document_type, t) in self.used_documents:
            return None
        options = self.candidates(p, document_type, t, codes=codes)
        if not options:
            return None
        code = options[int(self.rng.integers(len(options)))]
        self.used_documents.add((p, document_type, t))
        return p, document_type, t, code

    def _decimal_shift(self) -> bool:
        hit = self._point(DOCUMENT_TYPES, (0.15, 0.5, 0.15, 0.1, 0.1))
        if not hit:
            return False
        p, document_type, t, code = hit
        series = self.portfolio[p].values[document_type][code]
        factor = (10.0, 100.0, 0.01)[int(self.rng.integers(3))]
        series[t] = int(round(series[t] * factor))
        self.label(p, document_type, t, code, "decimal_shift")
        return True

    def _sign_flip(self) -> bool:
        hit = self._point(("balance_sheet", "income_statement", "cash_flow"), (0.2, 0.6, 0.2))
        if not hit:
            return False
        p, document_type, t, code = hit
        self.portfolio[p].values[document_type][code][t] *= -1
        self.label(p, document_type, t, code, "sign_flip")
        return True

    def _duplicate(self) -> bool:
        hit = self._point(("income_statement", "cash_flow"), (0.8, 0.2))
        if not hit:
            return False
        p, document_type, t, code = hit
        self.portfolio[p].values[document_type][code][t] *= 2
        self.label(p, document_type, t, code, "duplicate")
        return True

    def _missing(self) -> bool:
        hit = self._point(("income_statement",), (1.0,))
        if not hit:
            return False
        p, document_type, t, code = hit
        prop = self.portfolio[p]
        prop.values[document_type][code][t] = 0
        if self.rng.random() < 0.5:
            prop.removed.add((document_type, t, code))  # the row is absent from the document
        self.label(p, document_type, t, code, "missing")
        return True

    def _misclassification(self) -> bool:
        hit = self._point(("income_statement",), (1.0,))
        if not hit:
            return False
        p, document_type, t, code = hit
        prop = self.portfolio[p]
        ledger = [line.code for line in prop.lines[document_type] if not line.is_total]
        position = ledger.index(code)
        neighbours = [
            ledger[i]
            for i in (position - 1, position + 1)
            if 0 <= i < len(ledger) and ledger[i][0] == code[0] and (p, document_type, ledger[i]) not in self.shifted_series
        ]
        if not neighbours:
            self.used_documents.discard((p, document_type, t))
            return False
        target = neighbours[int(self.rng.integers(len(neighbours)))]
        values = prop.values[document_type]
        values[target][t] += values[code][t]
        values[code][t] = 0
        self.label(p, document_type, t, code, "misclassification")
        self.label(p, document_type, t, target, "misclassification")
        return True

    def _level_shift(self) -> bool:
        last_start = max(HISTORY_MONTHS, self.periods - 4)
        p = int(self.rng.integers(len(self.portfolio)))
        t = int(self.rng.integers(HISTORY_MONTHS, last_start + 1)) if self.periods > HISTORY_MONTHS else self.periods
        if t >= self.periods or (p, "income_statement", t) in self.used_documents:
            return False
        options = self.candidates(p, "income_statement", t, codes=STEADY_LINES)
        if not options:
            return False
        code = options[int(self.rng.integers(len(options)))]
        factor = self.rng.uniform(1.35, 1.8) if self.rng.random() < 0.5 else self.rng.uniform(0.45, 0.7)
        series = self.portfolio[p].values["income_statement"][code]
        series[t:] = np.rint(series[t:] * factor).astype(np.int64)
        self.shifted_series.add((p, "income_statement", code))
        self.used_documents.add((p, "income_statement", t))
        self.label(p, "income_statement", t, code, "level_shift")
        return True

    def _spike(self) -> bool:
        hit = self._point(("income_statement", "rent_roll", "mortgage_statement"), (0.8, 0.1, 0.1))
        if not hit:
            return False
        p, document_type, t, code = hit
        if document_type == "income_statement" and code not in STEADY_LINES:
            self.used_documents.discard((p, document_type, t))
            return False
        series = self.portfolio[p].values[document_type][code]
        series[t] = int(round(series[t] * self.rng.uniform(3.0, 8.0)))
        self.label(p, document_type, t, code, "spike")
        return True

    def _seasonal(self) -> bool:
        p = int(self.rng.integers(len(self.portfolio)))
        t = int(self.rng.integers(HISTORY_MONTHS, self.periods))
        if (p, "income_statement", t) in self.used_documents:
            return False
        month = int(self.period_labels[t][5:7])
        if month in SNOW_OFF_SEASON:
            code, season = "6020-0000", WINTER_MONTHS
        elif month in LANDSCAPING_OFF_SEASON:
            code, season = "6030-0000", LANDSCAPING_MONTHS
        else:
            return False
        series = self.portfolio[p].values["income_statement"][code]
        if series[t] != 0:
            return False
        in_season = [int(v) for i, v in enumerate(series[:t]) if int(self.period_labels[i][5:7]) in season and v > 0]
        if not in_season:
            return False
        series[t] = int(np.median(in_season) * self.rng.uniform(0.7, 1.3))
        self.used_documents.add((p, "income_statement", t))
        self.label(p, "income_statement", t, code, "seasonal")
        return True

    def _footing(self) -> bool:
        p, t, document_type = self.pick(("balance_sheet", "income_statement", "cash_flow"), (0.3, 0.5, 0.2))
        if (p, document_type, t) in self.used_documents:
            return False
        totals = [line.code for line in self.portfolio[p].lines[document_type] if line.is_total]
        code = totals[int(self.rng.integers(len(totals)))]
        self.used_documents.add((p, document_type, t))
        self.footing.append((p, document_type, t, code))
        self.label(p, document_type, t, code, "footing")
        return True


def _compute_totals(prop: _Property) -> None:
    for document_type, lines in prop.lines.items():
        values = prop.values[document_type]
        ledger = [line.code for line in lines if not line.is_total]
        for line in lines:
            prefix = total_prefix(line.code)
            if prefix is None:
                continue
            members = [values[code] for code in ledger if code.startswith(prefix)]
            values[line.code] = np.sum(members, axis=0).astype(np.int64) if members else np.zeros_like(values[ledger[0]])


def generate_portfolio(*, properties: int, months: int, seed: int, start: str = "2021-01") -> Portfolio:
    """A portfolio of ``properties`` properties over ``months`` months from ``start`` (YYYY-MM)."""
    if properties < 1 or months < 1:
        raise ValueError("properties and months must be at least 1")
    period_labels, years, calendar_months = _period_labels(start, months)
    seeds = np.random.SeedSequence(seed).spawn(properties + 1)
    portfolio = [
        _build_property(i, np.random.default_rng(seeds[i]), months, years, calendar_months) for i in range(properties)
    ]

    injector = _Injector(portfolio, months, period_labels, np.random.default_rng(seeds[-1]))
    if months > HISTORY_MONTHS:
        count = max(1, math.ceil(ANOMALY_RATE_PER_KIND * properties * months * len(DOCUMENT_TYPES)))
        # Level shifts first: they rewrite whole series tails, the point anomalies land on top.
        for kind in ("level_shift", *[k for k in ANOMALY_KINDS if k != "level_shift"]):
            injector.inject(kind, count)
    for prop in portfolio:
        _compute_totals(prop)
    for p, document_type, t, code in injector.footing:
        total = portfolio[p].values[document_type][code]
        delta = max(10_000, int(abs(int(total[t])) * injector.rng.uniform(0.02, 0.15)))
        total[t] += delta if injector.rng.random() < 0.5 else -delta

    rows: list[dict] = []
    for prop in portfolio:
        for t, period in enumerate(period_labels):
            for document_type in DOCUMENT_TYPES:
                values = prop.values[document_type]
                for line in prop.lines[document_type]:
                    if (document_type, t, line.code) in prop.removed:
                        continue
                    rows.append(
                        {
                            "property_code": prop.code,
                            "property_name": prop.name,
                            "property_type": prop.property_type,
                            "document_type": document_type,
                            "period": period,
                            "account_code": line.code,
                            "account_name": line.name,
                            "amount": int(values[line.code][t]) / 100,
                            "is_total": line.is_total,
                        }
                    )
    labels = sorted(
        injector.labels,
        key=lambda x: (x["property_code"], x["document_type"], x["period"], x["account_code"]),
    )
    details = [
        {
            "property_code": prop.code,
            "property_name": prop.name,
            "property_type": prop.property_type,
            "area_sqft": prop.area,
            "units": prop.units,
            "address": f"{100 + 7 * i} {prop.name.split()[0]} Street",
        }
        for i, prop in enumerate(portfolio)
    ]
    return Portfolio(rows=rows, labels=labels, properties=details)
