"""What a cited resource can prove (values with units, dates, concepts, retraction); how text says them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

# A number followed by a unit ("5.9 mmol/L", "120/80 mmHg", "38.5 °C", "10 MG", "72 years").
QUANTITY = re.compile(
    r"(?<![\w.])(?P<value>\d+(?:\.\d+)?)(?:\s*/\s*(?P<second>\d+(?:\.\d+)?))?\s*"
    r"(?P<unit>%|°\s?[CF]|10\*\d+/[A-Za-z]+|[A-Za-z\u00b5\[{/][\w\u00b5\[\]*{}^./#]*)"
)
DATE = re.compile(r"\b(?P<y>(?:19|20)\d{2})-(?P<m>0[1-9]|1[0-2])(?:-(?P<d>0[1-9]|[12]\d|3[01]))?\b")
# A word after a number is read as a unit only when it looks like one: a symbol (/, %, °, [, {, *, ^) or a
# unit name. Prose ("type 2 diabetes", "stage 3 kidney disease", "12 more") is left alone.
UNIT_SYMBOLS = re.compile(r"[/%°\[{*^]")
UNIT_NAMES = frozenset(
    [
        "mg",
        "g",
        "kg",
        "lb",
        "lbs",
        "mcg",
        "ug",
        "µg",
        "ng",
        "pg",
        "mmol",
        "umol",
        "µmol",
        "mol",
        "meq",
        "iu",
        "u",
        "units",
        "ml",
        "l",
        "dl",
        "cm",
        "mm",
        "m",
        "ft",
        "mmhg",
        "s",
        "sec",
        "bpm",
        "cel",
        "kpa",
        "fl",
        "pmol",
        "nmol",
        "years",
        "year",
        "yr",
        "yrs",
        "y",
        "degc",
        "degf",
    ]
)

# Spellings of one unit, folded to one key (UCUM codes and what people write).
_UNIT_ALIASES = {
    "mm[hg]": "mmhg",
    "mmhg": "mmhg",
    "/min": "/min",
    "bpm": "/min",
    "beats/min": "/min",
    "{beats}/min": "/min",
    "breaths/min": "/min",
    "{breaths}/min": "/min",
    "cel": "cel",
    "°c": "cel",
    "° c": "cel",
    "degc": "cel",
    "[degf]": "degf",
    "°f": "degf",
    "kg/m2": "kg/m2",
    "kg/m^2": "kg/m2",
    "a": "years",
    "yr": "years",
    "years": "years",
    "year": "years",
    "y": "years",
    "10*3/ul": "10*3/ul",
    "k/ul": "10*3/ul",
    "10*6/ul": "10*6/ul",
    "m/ul": "10*6/ul",
    "meq/l": "mmol/l",
}


def unit_key(unit: str) -> str:
    """A canonical, case-folded spelling of a unit."""
    folded = unit.strip().lower().replace("µ", "u").replace("\u00b5", "u")
    return _UNIT_ALIASES.get(folded, folded)


@dataclass(frozen=True)
class Quantity:
    """A value with a unit, as found in a resource or a statement."""

    value: float
    unit: str
    decimals: int = 0

    def matches(self, recorded: Quantity) -> bool:
        """Same unit, and the recorded value rounds to this one at this one's precision ("5.9" for 5.912,
        not "3.8" for a recorded 4: a statement may round the record, never invent digits)."""
        if unit_key(self.unit) != unit_key(recorded.unit):
            return False
        tolerance: float = 0.5 * 10.0**-self.decimals + 1e-9
        return abs(self.value - recorded.value) <= tolerance


@dataclass
class Evidence:
    """The checkable facts of one resource: values, dates, the concepts it names, whether it was retracted."""

    ref: str
    quantities: list[Quantity] = field(default_factory=list)
    intervals: list[tuple[date, date]] = field(default_factory=list)
    terms: set[str] = field(default_factory=set)
    retracted: str | None = None

    def has_quantity(self, quantity: Quantity) -> bool:
        """Whether the resource holds this value in this unit."""
        return any(quantity.matches(q) for q in self.quantities)

    def covers(self, day: date, month_only: bool = False) -> bool:
        """Whether a date (or its month) falls within one of the resource's dates or periods."""
        for start, end in self.intervals:
            if month_only and (start.year, start.month) <= (day.year, day.month) <= (end.year, end.month):
                return True
            if not month_only and start <= day <= end:
                return True
        return False


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def quantities_in(text: str) -> list[Quantity]:
    """Every number-with-unit in free text (a "120/80 mmHg" pair gives two); a date's digits are none."""
    found = []
    for match in QUANTITY.finditer(DATE.sub(lambda m: " " * len(m[0]), text)):
        unit = match["unit"].rstrip(".,;:")
        if not unit or not (UNIT_SYMBOLS.search(unit) or unit.lower().replace("µ", "u") in UNIT_NAMES):
            continue
        for part in (match["value"], match["second"]):
            if part is not None:
                found.append(Quantity(float(part), unit, _decimals(part)))
    return found


def dates_in(text: str) -> list[tuple[date, bool]]:
    """Every ISO date (or year-month) in free text, with whether only the month was given."""
    return [(date(int(m["y"]), int(m["m"]), int(m["d"] or 1)), m["d"] is None) for m in DATE.finditer(text)]


def parse_day(value: Any) -> date | None:
    """A date from a date, datetime, or an ISO date/year string; None when there is none."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        found = dates_in(value[:10])
        if found:
            return found[0][0]
        year = re.match(r"^(19|20)\d{2}$", value)
        return date(int(value), 1, 1) if year else None
    return None


class EvidenceSource(Protocol):
    """The fetched record as the verifier sees it: a reference's evidence, None when not in the record."""

    def evidence(self, ref: str) -> Evidence | None:
        """What the resource behind ref can prove."""
        ...
