"""What each resource can prove: its numbers with units and its dates (for the deterministic verifier)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.resource import Resource

# A number followed by a unit ("5.9 mmol/L", "120/80 mmHg", "38.5 °C", "10 MG", "72 years").
QUANTITY = re.compile(
    r"(?<![\w.])(?P<value>\d+(?:\.\d+)?)(?:\s*/\s*(?P<second>\d+(?:\.\d+)?))?\s*"
    r"(?P<unit>%|°\s?[CF]|10\*\d+/[A-Za-z]+|[A-Za-z\u00b5\[{/][\w\u00b5\[\]*{}^./#]*)"
)
DATE = re.compile(r"\b(?P<y>(?:19|20)\d{2})-(?P<m>0[1-9]|1[0-2])(?:-(?P<d>0[1-9]|[12]\d|3[01]))?\b")
DATE_KEYS = re.compile(r"(DateTime|Date|date|issued|authoredOn|recorded|start|end|Instant)$")
# Words that follow numbers in prose without being units.
NOT_UNITS = frozenset(
    {
        "and",
        "or",
        "to",
        "of",
        "in",
        "on",
        "at",
        "the",
        "a",
        "an",
        "times",
        "time",
        "x",
        "with",
        "for",
        "per",
        "from",
        "by",
        "since",
        "was",
        "is",
        "were",
        "are",
        "than",
        "days",
        "day",
        "weeks",
        "months",
    }
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

    def matches(self, other: Quantity) -> bool:
        """Same unit, and equal within the rounding of the less precise of the two."""
        if unit_key(self.unit) != unit_key(other.unit):
            return False
        tolerance: float = 0.5 * 10.0 ** -min(self.decimals, other.decimals) + 1e-9
        return abs(self.value - other.value) <= tolerance


@dataclass
class Evidence:
    """The checkable facts of one resource."""

    ref: str
    quantities: list[Quantity] = field(default_factory=list)
    intervals: list[tuple[date, date]] = field(default_factory=list)

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
    """Every number-with-unit in free text (a "120/80 mmHg" pair gives two)."""
    found = []
    for match in QUANTITY.finditer(text):
        unit = match["unit"].rstrip(".,;:")
        if unit.lower() in NOT_UNITS or not unit:
            continue
        for part in (match["value"], match["second"]):
            if part is not None:
                found.append(Quantity(float(part), unit, _decimals(part)))
    return found


def dates_in(text: str) -> list[tuple[date, bool]]:
    """Every ISO date (or year-month) in free text, with whether only the month was given."""
    return [(date(int(m["y"]), int(m["m"]), int(m["d"] or 1)), m["d"] is None) for m in DATE.finditer(text)]


def _as_date(value: Any) -> date | None:
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


def _walk(node: Any, key: str, evidence: Evidence) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("value"), int | float) and isinstance(
            node.get("unit") or node.get("code"), str
        ):
            unit = str(node.get("unit") or node.get("code"))
            evidence.quantities.append(Quantity(float(node["value"]), unit, _decimals(str(node["value"]))))
        start, end = _as_date(node.get("start")), _as_date(node.get("end"))
        if start is not None:
            evidence.intervals.append((start, end or date.max))  # no end: the period is ongoing
        elif end is not None:
            evidence.intervals.append((end, end))
        for child_key, child in node.items():
            if child_key == "data" and isinstance(child, str):
                evidence.quantities.extend(quantities_in(_decoded(child)))
            elif child_key not in ("start", "end"):
                _walk(child, child_key, evidence)
    elif isinstance(node, list):
        for item in node:
            _walk(item, key, evidence)
    elif isinstance(node, str):
        if DATE_KEYS.search(key):
            day = _as_date(node)
            if day:
                evidence.intervals.append((day, day))
        elif key in ("display", "text", "conclusion", "description", "div"):
            evidence.quantities.extend(quantities_in(node))


def _decoded(data: str) -> str:
    try:
        return base64.b64decode(data).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def evidence_of(resource: Resource, today: date | None = None) -> Evidence:
    """The numbers and dates a resource can vouch for."""
    ref = f"{resource.get_resource_type()}/{resource.id}"
    evidence = Evidence(ref)
    _walk(resource.model_dump(mode="json", exclude_none=True), "", evidence)
    birth = getattr(resource, "birthDate", None)
    if resource.get_resource_type() == "Patient" and isinstance(birth, date):
        now = today or date.today()
        age = now.year - birth.year - ((now.month, now.day) < (birth.month, birth.day))
        evidence.quantities.append(Quantity(float(age), "years"))
    return evidence
